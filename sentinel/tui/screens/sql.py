"""The SQL console: the lake views, masked like `sentinel sql`, with an audited reveal.

The result grid is textual-fastdatatable over Arrow: the first rows show as soon as the
first batches arrive, and further rows are fetched in the background a chunk at a time
while the analyst scrolls, so no result is capped and none is held twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea, Tree
from textual_fastdatatable import ArrowBackend
from textual_fastdatatable import DataTable as FastTable

from sentinel.exceptions import SentinelError
from sentinel.tui.safe import plain, title_bar
from sentinel.tui.screens.prompt import AskText

FIRST_ROWS = 500
"""Rows fetched before the grid first shows (the rest arrive in the background)."""
CHUNK_ROWS = 100_000
"""Rows added to the grid per background step."""
DEFAULT_QUERY = "SELECT source, count(*) AS events FROM events GROUP BY 1 ORDER BY 1"
"""What the console opens with."""


class ResultCursor:
    """An open query result (`SqlSession.execute`) read chunk by chunk.

    The session's views are masked already; `mask_table` is the second net the CLI's
    output applies too (values a query assembled that no stored finding covers).
    """

    def __init__(self, result: Any, mask: Any | None) -> None:
        self.result = result
        self.mask = mask
        self.done = False

    def fetch(self, rows: int) -> pa.Table:
        table = self.result.fetch(rows)
        if table.num_rows < rows:
            self.done = True
        if self.mask is not None:
            table = self.mask(table)
        return _displayable(table)


def _displayable(table: pa.Table) -> pa.Table:
    """Text as shown: control characters escaped, nested values as one JSON line."""
    from sentinel.output import cell_text

    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_nested(kind):
            values = [None if v is None else cell_text(v)[:500] for v in column.to_pylist()]
            columns.append(pa.array(values, pa.string()))
        else:
            columns.append(column)
    return pa.table(columns, names=table.column_names)


class SqlScreen(Screen[None]):
    """Editor, schema sidebar, history and a lazily filled result grid."""

    BINDINGS = [
        Binding("ctrl+r,f5", "run", "Run", priority=True),
        Binding("ctrl+e", "export", "Export"),
        Binding("ctrl+o", "reveal", "Reveal (audited)"),
        Binding("ctrl+p,ctrl+up", "history(-1)", "History", show=False),
        Binding("ctrl+n,ctrl+down", "history(1)", "Next", show=False),
        Binding("escape", "app.pop_screen", "Back", priority=True),
    ]

    class Ran(Message):
        """A query produced its first rows (or failed)."""

        def __init__(self, table: pa.Table | None, error: str | None, seconds: float) -> None:
            super().__init__()
            self.table = table
            self.error = error
            self.seconds = seconds

    class More(Message):
        """More rows of the current result arrived."""

        def __init__(self, table: pa.Table, done: bool) -> None:
            super().__init__()
            self.table = table
            self.done = done

    def __init__(self, query: str = DEFAULT_QUERY) -> None:
        super().__init__()
        self.initial = query
        self.history: list[str] = []
        self.history_at = 0
        self.cursor: ResultCursor | None = None
        self.shown_rows: int | None = None
        self.last_query = ""

    def compose(self) -> ComposeResult:
        yield Static(title_bar("SQL console", self.app), classes="titlebar")
        with Horizontal():
            yield Tree("views", id="schema")
            with Vertical(id="console"):
                yield _editor(self.initial)
                yield Static(id="status")
                yield FastTable(id="result", render_markup=False, null_rep="NULL")
        yield Footer()

    def on_mount(self) -> None:
        self.load_schema()
        self.query_one(TextArea).focus()

    @work(thread=True, exclusive=True, group="schema")
    def load_schema(self) -> None:
        views = self.app.lake_schema()  # type: ignore[attr-defined]
        self.app.call_from_thread(self._show_schema, views)

    def _show_schema(self, views: dict[str, list[tuple[str, str]]]) -> None:
        if not self.is_attached:  # the analyst left the console before the schema came
            return
        tree = self.query_one("#schema", Tree)
        tree.clear()
        tree.root.expand()
        for view, columns in views.items():
            node = tree.root.add(Text(view), expand=False)
            for name, kind in columns:
                node.add_leaf(Text(f"{name}  {kind}"))

    def action_run(self) -> None:
        query = self.query_one(TextArea).text.strip()
        if not query:
            return
        if not self.history or self.history[-1] != query:
            self.history.append(query)
        self.history_at = len(self.history)
        self.last_query = query
        self.query_one("#status", Static).update(Text("running…", style="dim"))
        self.run_query(query, None)

    @work(thread=True, exclusive=True, group="query")
    def run_query(self, query: str, reason: str | None) -> None:
        import time

        started = time.monotonic()
        try:
            result = self.app.open_result(query, reason)  # type: ignore[attr-defined]
            mask = None if reason is not None else self.app.mask_table  # type: ignore[attr-defined]
            self.cursor = ResultCursor(result, mask)
            first = self.cursor.fetch(FIRST_ROWS)
        except SentinelError as exc:
            self.post_message(self.Ran(None, f"{exc.title}: {exc.message}", 0.0))
            return
        self.post_message(self.Ran(first, None, time.monotonic() - started))
        self.fetch_more()

    @work(thread=True, exclusive=True, group="fetch")
    def fetch_more(self) -> None:
        cursor = self.cursor
        while cursor is not None and not cursor.done and cursor is self.cursor:
            try:
                more = cursor.fetch(CHUNK_ROWS)
            except SentinelError as exc:
                self.post_message(self.Ran(None, f"{exc.title}: {exc.message}", 0.0))
                return
            self.post_message(self.More(more, cursor.done))

    async def on_sql_screen_ran(self, message: Ran) -> None:
        status = self.query_one("#status", Static)
        if message.error is not None:
            status.update(plain(message.error, 2000, "bold red"))
            return
        assert message.table is not None
        self.shown_rows = message.table.num_rows
        await self.query_one("#result", FastTable).remove()
        fresh = FastTable(
            id="result", backend=ArrowBackend(message.table), render_markup=False,
            null_rep="NULL",
        )
        await self.query_one("#console", Vertical).mount(fresh)
        more = "" if self.cursor and self.cursor.done else "+ (fetching)"
        status.update(Text(f"{_rows(message.table.num_rows)}{more} · {message.seconds:.2f} s"))

    def on_sql_screen_more(self, message: More) -> None:
        """Append a chunk in place: the cursor and scroll position stay where they are."""
        table = self.query_one("#result", FastTable)
        backend = table.backend
        if self.shown_rows is None or not isinstance(backend, ArrowBackend):
            return
        if message.table.num_rows:
            self.shown_rows += message.table.num_rows
            more = ArrowBackend(message.table).data.cast(backend.data.schema)
            backend.data = pa.Table.from_batches([*backend.data.to_batches(),
                                                  *more.to_batches()])
            backend._reset_content_widths()  # noqa: SLF001
            table._require_update_dimensions = True  # noqa: SLF001
            table._clear_caches()  # noqa: SLF001
            table.refresh()
        tail = "" if message.done else "+ (fetching)"
        self.query_one("#status", Static).update(Text(f"{_rows(self.shown_rows)}{tail}"))

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self.history_at = max(0, min(len(self.history) - 1, self.history_at + step))
        self.query_one(TextArea).text = self.history[self.history_at]

    def action_export(self) -> None:
        if self.shown_rows is None:
            self.notify("Run a query first.")
            return

        def done(path: str | None) -> None:
            if path:
                self.export(Path(path).expanduser())

        self.app.push_screen(AskText("Export the result (masked) to .csv or .parquet:"), done)

    @work(thread=True, exclusive=True, group="export")
    def export(self, path: Path) -> None:
        try:
            rows = self.app.export_result(self.last_query, path)  # type: ignore[attr-defined]
        except SentinelError as exc:
            self.app.call_from_thread(self.notify, f"{exc.title}: {exc.message}",
                                      severity="error")
            return
        self.app.call_from_thread(self.notify, f"{rows:,} rows written to {path} (masked)")

    def action_reveal(self) -> None:
        if not self.last_query:
            self.notify("Run a query first.")
            return

        def done(reason: str | None) -> None:
            if reason:
                self.run_query(self.last_query, reason)

        self.app.push_screen(AskText("Why reveal this result? (recorded in the audit trail)"), done)


def _editor(text: str) -> TextArea:
    # No tree-sitter highlighting: with textual 8 and tree-sitter-sql 0.3 the highlighted
    # line is drawn with its spaces moved ("SELECTactor_key ,"), and a console that shows
    # a query other than the one it runs is worse than one without colours.
    return TextArea.code_editor(text, id="editor", soft_wrap=True)


def _rows(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"
