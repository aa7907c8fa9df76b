"""Sources and rules: what is being read, how far behind, and what the last scan found.

Every age on this screen ("5m ago") is measured against `data.now()`, the dashboard's one
clock; the recorded moments come from `sentinel.tui.health`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Sparkline, Static

from sentinel.exceptions import SentinelError
from sentinel.store import incidents as store
from sentinel.tui import cells, data, health
from sentinel.tui.safe import plain, title_bar


def lag_text(row: dict[str, Any]) -> Text:
    size = row.get("size_now")
    if row.get("framing") not in (None, "lines"):  # a document's progress counts records
        return Text("—", style="dim")
    if size is None:
        return Text("gone", style="dim")
    lag = max(int(size) - int(row.get("offset") or 0), 0)
    return Text(f"{lag:,} B", style="bold yellow" if lag else "green")


class SourcesScreen(Screen[None]):
    """Per-source volume with an hourly sparkline, watched files and the last scan."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("R", "reload", "Reload")]

    class Loaded(Message):
        def __init__(self, part: str, value: Any) -> None:
            super().__init__()
            self.part = part
            self.value = value

    def compose(self) -> ComposeResult:
        yield Static(title_bar("Sources and rules", self.app), classes="titlebar")
        with VerticalScroll():
            yield Static(Text("Sources (events per hour, last 7 days of data)", style="bold"))
            yield DataTable(id="sources", cursor_type="row")
            yield VerticalScroll(id="sparks")
            yield Static(id="daemon")
            yield Static(id="scan")
            yield DataTable(id="rules", cursor_type="row")
            yield Static(Text("Files read", style="bold"))
            yield DataTable(id="files", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        ws = self.app.workspace  # type: ignore[attr-defined]
        lake = self.app.lake  # type: ignore[attr-defined]
        for part, loader in (
            ("sources", lambda: health.sources_overview(ws, lake)),
            ("hourly", lambda: health.hourly(lake)),
            ("daemon", lambda: health.watcher(ws)),
            ("scan", lambda: health.last_scan(ws)),
            ("files", lambda: health.watched_files(ws)),
        ):
            try:
                self.post_message(self.Loaded(part, loader()))
            except SentinelError as exc:
                self.post_message(self.Loaded("error", exc))

    def on_sources_screen_loaded(self, message: Loaded) -> None:
        try:
            getattr(self, f"_show_{message.part}")(message.value)
        except NoMatches:  # the worker finished after the screen closed: nothing to show
            return

    def _show_error(self, exc: SentinelError) -> None:
        self.notify(f"{exc.title}: {exc.message}", severity="error")

    def _show_sources(self, rows: list[dict[str, Any]]) -> None:
        now = data.now()
        cells.fill(
            self.query_one("#sources", DataTable),
            ("source", "events", "findings", "first event", "last event", "last ingest"),
            [[plain(row["source"]), Text(f"{row['events']:,}", justify="right"),
              Text(f"{row['findings'] or 0:,}", justify="right"),
              cells.stamp(row["first_ts"]), cells.stamp(row["last_ts"]),
              cells.ago(row["last_ingest"], now)] for row in rows],
            fit=True,
        )

    def _show_hourly(self, series: dict[str, list[int]]) -> None:
        box = self.query_one("#sparks", VerticalScroll)
        box.remove_children()
        for source, values in series.items():
            box.mount(Static(Text(f"{source} · max {max(values):,}/h", style="dim")))
            box.mount(Sparkline(values, summary_function=max, classes="spark"))

    def _show_files(self, rows: list[dict[str, Any]]) -> None:
        now = data.now()
        cells.fill(
            self.query_one("#files", DataTable),
            ("path", "source", "lag", "records", "quarantined", "last read"),
            [[tail(row["shown_path"], PATH_WIDTH), plain(row["source"] or "—"), lag_text(row),
              Text(f"{row['records']:,}", justify="right"),
              Text(f"{row['quarantined']:,}", justify="right",
                   style="bold yellow" if row["quarantined"] else ""),
              cells.ago(row["updated_at"], now)] for row in rows],
            fit=True,
        )

    def _show_scan(self, scan: health.ScanSummary | None) -> None:
        widget = self.query_one("#scan", Static)
        rules = self.query_one("#rules", DataTable)
        if scan is None:
            widget.update(Text("No scan recorded yet: run `sentinel scan`.", style="dim"))
            rules.display = False
            return
        widget.update(scan_line(scan, data.now()))
        rules.display = bool(scan.per_rule)
        cells.fill(rules, ("rule", "alerts", "matches", "seconds", "rows read"), [
            [plain(run.title, 60),
             Text(f"{run.alerts:,}", justify="right", style="bold" if run.alerts else "dim"),
             Text(f"{run.matches:,}", justify="right"),
             Text(f"{run.seconds:.2f}", justify="right"),
             Text(f"{run.rows_read:,}", justify="right")]
            for run in scan.per_rule
        ], fit=True)

    def _show_daemon(self, state: health.Watcher) -> None:
        self.query_one("#daemon", Static).update(watcher_line(state, data.now()))


PATH_WIDTH = 60
"""A path longer than this keeps its end (the file's name) and loses its start."""


def tail(path: str, width: int) -> Text:
    """A path cut at its start (`…/2026/11/06/file.json.gz`): the name is what differs."""
    shown = plain(path, len(path) + 1)
    if len(shown.plain) > width:
        shown = Text("…" + shown.plain[-(width - 1):])
    return shown


def scan_line(scan: health.ScanSummary, now: datetime) -> Text:
    text = Text("Last scan", style="bold")
    if scan.finished_at is None:
        text.append(f": started {cells.ago(scan.started_at, now).plain}, not finished",
                    style="yellow")
        return text
    took = store.parse_ts(scan.finished_at) - store.parse_ts(scan.started_at)
    text.append(f": finished {cells.ago(scan.finished_at, now).plain} in "
                f"{took.total_seconds():.1f} s · {scan.rules:,} rules · "
                f"{scan.alerts:,} new alert{'' if scan.alerts == 1 else 's'}")
    return text


def watcher_line(state: health.Watcher, now: datetime) -> Text:
    text = Text("Watcher: ", style="bold")
    if state.running:
        pid = f" (pid {state.pid})" if state.pid else ""
        text.append(f"running{pid}", style="green")
        text.append(f" since {cells.ago(state.since, now).plain} · heartbeat "
                    f"{cells.ago(state.heartbeat, now).plain} · {state.events:,} events read")
    elif state.since:
        text.append(f"stopped {cells.ago(state.since, now).plain}", style="yellow")
    else:
        text.append("not running", style="dim")
        text.append(" (`sentinel watch` reads new lines as they are written)", style="dim")
    return text
