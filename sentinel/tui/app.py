"""The Textual application: screens, the keys between them, and the calls they share.

The app holds the workspace, two masked DuckDB sessions (`lake` for the screens' own
queries, `sql_console` for the SQL console; see `sentinel.tui.sessions`) and one SQLite
connection to poll `data_version`. None of them holds a lock a daemon or a cron scan
could wait on: DuckDB runs in memory over the Parquet files, and SQLite reads in WAL
mode do not block writers. Triage actions (`triage`) and exports (`export_result`) go
through the same core functions as the CLI.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider

from sentinel.exceptions import SentinelError
from sentinel.store.db import open_db
from sentinel.tui import data
from sentinel.workspace import Workspace

if TYPE_CHECKING:
    from sentinel.tui.sessions import Console, SharedSession

SCREENS = {
    "incidents": "Incident queue",
    "sql": "SQL console",
    "sources": "Sources and rules",
}


class ScreenCommands(Provider):
    """The command palette (ctrl+p): every screen and the open incidents by title."""

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, SentinelApp)
        matcher = self.matcher(query)
        for name, title in SCREENS.items():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(app.action_show, name))


class SentinelApp(App[None]):
    """sentinel's on-call dashboard."""

    CSS_PATH = "app.tcss"
    TITLE = "sentinel"
    COMMANDS = App.COMMANDS | {ScreenCommands}
    BINDINGS = [
        Binding("i", "show('incidents')", "Incidents"),
        Binding("s", "show('sql')", "SQL"),
        Binding("w", "show('sources')", "Sources"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workspace: Workspace, label: str | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.label = label if label is not None else str(workspace.root)
        """What the title bar calls the workspace (its path unless told otherwise)."""
        self._version_con: sqlite3.Connection | None = None
        self._version_lock = threading.Lock()
        self._queue_version: data.QueueVersion | None = None
        self.playbooks = data.Playbooks(workspace)
        """Parsed once, again when a playbook file changes (the queue's deadlines)."""
        self._sessions_lock = threading.Lock()
        self._lake: SharedSession | None = None
        self._sql_console: Console | None = None

    def on_mount(self) -> None:
        from sentinel.tui.screens.incidents import IncidentsScreen

        self.push_screen(IncidentsScreen())

    @property
    def lake(self) -> SharedSession:
        """The screens' own lake queries (masked views; no state tables: they read SQLite).

        Made on first use, so the queue opens without loading DuckDB and the PII engine.
        """
        with self._sessions_lock:
            if self._lake is None:
                from sentinel.tui.sessions import SharedSession

                self._lake = SharedSession(self.workspace, "tui", state_tables=())
            return self._lake

    @property
    def sql_console(self) -> Console:
        """The SQL console's session and open result (made on first use)."""
        with self._sessions_lock:
            if self._sql_console is None:
                from sentinel.tui.sessions import Console

                self._sql_console = Console(self.workspace)
            return self._sql_console

    def on_unmount(self) -> None:
        with self._sessions_lock:
            for session in (self._sql_console, self._lake):
                if session is not None:
                    session.close()
        with self._version_lock:
            if self._version_con is not None:
                self._version_con.close()
                self._version_con = None

    # -- navigation ----------------------------------------------------------------------
    def action_show(self, name: str) -> None:
        from sentinel.tui.screens.incidents import IncidentsScreen
        from sentinel.tui.screens.sources import SourcesScreen
        from sentinel.tui.screens.sql import SqlScreen

        kinds = {"incidents": IncidentsScreen, "sql": SqlScreen, "sources": SourcesScreen}
        if isinstance(self.screen, kinds[name]):
            return
        if name == "incidents":
            while len(self.screen_stack) > 2:
                self.pop_screen()
            return
        self.push_screen(kinds[name]())

    def open_incident(self, incident_id: int) -> None:
        from sentinel.tui.screens.incident import IncidentScreen

        self.push_screen(IncidentScreen(incident_id))

    def open_playbook(self, incident_id: int) -> None:
        try:
            from sentinel.tui.screens.playbook import PlaybookScreen
        except ImportError:
            self.notify("Playbooks are not available in this build.", severity="warning")
            return
        self.push_screen(PlaybookScreen(incident_id))

    # -- shared calls (run from workers) -------------------------------------------------
    def poll_version(self) -> data.QueueVersion:
        """What the queue shows, versioned (see `data.queue_version`), on one connection."""
        with self._version_lock:
            if self._version_con is None:
                self._version_con = open_db(self.workspace.state_db)
            self._queue_version = data.queue_version(self._version_con, self._queue_version)
            return self._queue_version

    @work(thread=True, group="triage")
    def triage(
        self, incident_id: int, action: str, value: str, then: Callable[[], None] | None = None
    ) -> None:
        """Change an incident through the core (status, assign, note): a timeline entry.

        `then` runs on the app's thread once the change committed.
        """
        from sentinel.store import triage

        calls: dict[str, Any] = {
            "status": triage.set_status, "assign": triage.assign, "note": triage.add_note,
        }
        try:
            with data.state(self.workspace) as con:
                calls[action](con, incident_id, value)
        except SentinelError as exc:
            self.call_from_thread(self.notify, f"{exc.title}: {exc.message}", severity="error")
            return
        self.call_from_thread(self.notify, f"Incident {incident_id}: {action} {value}")
        if then is not None:
            self.call_from_thread(then)

    def export_result(
        self, query: str, path: Path, progress: Callable[[int], None] | None = None
    ) -> int:
        """`query`'s rows written to `path`, masked, streamed and audited (`tui.export`)."""
        from sentinel.tui.export import export_result

        return export_result(self.workspace, query, path, progress)


def run(workspace: Workspace) -> None:
    SentinelApp(workspace).run()
