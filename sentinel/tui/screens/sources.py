"""Sources and rules: what is being read, how far behind, and what the last scan found."""

from __future__ import annotations

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
from sentinel.tui import data
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
            yield Static(Text("Files read", style="bold"))
            yield DataTable(id="files", cursor_type="row")
            yield Static(id="scan")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        ws = self.app.workspace  # type: ignore[attr-defined]
        for part, loader in (
            ("sources", lambda: data.sources_overview(self.app.lake)),  # type: ignore[attr-defined]
            ("hourly", lambda: data.hourly(self.app.lake)),  # type: ignore[attr-defined]
            ("files", lambda: data.watched_files(ws)),
            ("scan", lambda: data.last_scan(ws)),
            ("daemon", lambda: self.app.daemon_state()),  # type: ignore[attr-defined]
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
        table = self.query_one("#sources", DataTable)
        table.clear(columns=True)
        table.add_columns("source", "events", "findings", "first", "last", "last ingest")
        for row in rows:
            table.add_row(
                plain(row["source"]), Text(f"{row['events']:,}", justify="right"),
                Text(f"{row['findings'] or 0:,}", justify="right"),
                plain(row["first_ts"], 19), plain(row["last_ts"], 19),
                plain(row["last_ingest"], 19),
            )

    def _show_hourly(self, series: dict[str, list[int]]) -> None:
        box = self.query_one("#sparks", VerticalScroll)
        box.remove_children()
        for source, values in series.items():
            box.mount(Static(Text(f"{source} · max {max(values):,}/h", style="dim")))
            box.mount(Sparkline(values, summary_function=max, classes="spark"))

    def _show_files(self, rows: list[dict[str, Any]]) -> None:
        table = self.query_one("#files", DataTable)
        table.clear(columns=True)
        table.add_columns("path", "source", "lag", "records", "quarantined", "last read")
        for row in rows:
            table.add_row(
                plain(row["path"], 70), plain(row["source"] or "—"), lag_text(row),
                Text(f"{row['records']:,}", justify="right"),
                Text(f"{row['quarantined']:,}", justify="right",
                     style="bold yellow" if row["quarantined"] else ""),
                plain(row["updated_at"], 19),
            )

    def _show_scan(self, scan: dict[str, Any] | None) -> None:
        widget = self.query_one("#scan", Static)
        if scan is None:
            widget.update(Text("No scan recorded yet: run `sentinel scan`.", style="dim"))
            return
        text = Text("Last scan\n", style="bold")
        for key, value in scan.items():
            text.append(f"{key:>16}  ", style="dim")
            text.append_text(plain(value, 300))
            text.append("\n")
        widget.update(text)

    def _show_daemon(self, state: str) -> None:
        self.query_one("#daemon", Static).update(plain(f"watcher: {state}", 200))
