"""The SQL console: the lake views, masked like `sentinel sql`, with an audited reveal.

The result grid is textual-fastdatatable over Arrow (`sentinel.tui.grid`). The first rows
show as soon as the first batch arrives; more are fetched in the background a chunk at a
time while the analyst is within `AHEAD_ROWS` of the end of what is held, so a 10-million
row `SELECT *` costs what is looked at, not its size. Nothing is capped: scrolling on
fetches on, and `ctrl+end` fetches the rest and goes to the last row.

What a row costs is its masking: the views mask every text column of every row DuckDB
produces (a Python UDF holding the GIL), so fetching competes with drawing for the
interpreter. The background fetch therefore starts only after the first rows are drawn,
stays `AHEAD_ROWS` ahead rather than far ahead, and after `ctrl+end` takes larger chunks
(`END_CHUNK_ROWS`: fewer appends and redraws on the way to the last row).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea, Tree
from textual.worker import get_current_worker
from textual_fastdatatable import DataTable as FastTable

from sentinel.exceptions import SentinelError
from sentinel.tui.grid import ResultBackend
from sentinel.tui.safe import plain, title_bar
from sentinel.tui.screens.prompt import AskText
from sentinel.tui.sessions import Result

FIRST_ROWS = 500
"""Rows fetched before the grid first shows."""
CHUNK_ROWS = 10_000
"""Rows added to the grid per background step while scrolling."""
END_CHUNK_ROWS = 100_000
"""Rows added per step on the way to the last row (`ctrl+end`)."""
AHEAD_ROWS = 20_000
"""How far past the cursor (or the bottom of the view) rows are fetched ahead."""
PREFETCH_DELAY = 0.3
"""Seconds between the first rows shown and the fetching ahead (a scroll starts it sooner)."""
EVERYTHING = 1 << 62
DEFAULT_QUERY = "SELECT source, count(*) AS events FROM events GROUP BY 1 ORDER BY 1"
"""What the console opens with."""
OPENING = "opening the lake (listing its files, loading the masking)…"
READY = "ctrl+r runs the query"


class ResultGrid(FastTable):
    """The grid; `ctrl+end` on a result still arriving asks for all of it first."""

    class WantsEnd(Message):
        """The analyst asked for the last row."""

    def action_cursor_table_end(self, select: bool = False) -> None:
        self.post_message(self.WantsEnd())
        super().action_cursor_table_end(select)


class SqlScreen(Screen[None]):
    """Editor, schema sidebar, history and a lazily filled result grid."""

    AUTO_FOCUS = "#editor"
    """Focused as the screen shows (by default the first focusable widget, the schema
    tree, would take the keys typed right after `s`, and pass them to the app's keys)."""
    BINDINGS = [
        Binding("ctrl+r,f5", "run", "Run", priority=True),
        # priority: the editor binds ctrl+e to the end of the line (`end` still does that)
        Binding("ctrl+e", "export", "Export", priority=True),
        Binding("ctrl+o", "reveal", "Reveal (audited)"),
        # ctrl+p is Textual's command palette; the history keys are free in the editor
        Binding("ctrl+up", "history(-1)", "History"),
        Binding("ctrl+down", "history(1)", "Next", show=False),
        Binding("escape", "app.pop_screen", "Back", priority=True),
    ]

    class Ran(Message):
        """A query produced its first rows (or failed)."""

        def __init__(
            self, table: pa.Table | None, error: str | None, seconds: float,
            result: Result | None = None, backend: ResultBackend | None = None,
        ) -> None:
            super().__init__()
            self.table = table
            self.error = error
            self.seconds = seconds
            self.result = result
            self.backend = backend
            """The grid's rows, their first screens already masked and measured."""

    class More(Message):
        """More rows of `result` arrived (`done`: the last of them)."""

        def __init__(self, result: Result, table: pa.Table, done: bool) -> None:
            super().__init__()
            self.result = result
            self.table = table
            self.done = done

    def __init__(self, query: str = DEFAULT_QUERY) -> None:
        super().__init__()
        self.initial = query
        self.history: list[str] = []
        self.history_at = 0
        self.result: Result | None = None
        """The result the grid shows (None before the first query or after an error)."""
        self.shown_rows: int | None = None
        self.wanted_rows = 0
        """Rows the grid should hold: the fetching worker stops there until asked for more."""
        self.to_end = False
        """`ctrl+end` was pressed while rows were still to come."""
        self.complete = False
        """The grid holds every row of the result (the worker's `done` reached the screen)."""
        self.last_query = ""
        self._fetching = threading.Lock()
        self.exporting = ""
        """What an export in progress has written so far (shown in the status line)."""
        self.lake_open = False
        """The console's session is open (its schema read): a query runs at once."""
        self.running = False
        """A query was sent and its first rows (or its error) have not come back yet."""

    def compose(self) -> ComposeResult:
        yield Static(title_bar("SQL console", self.app), classes="titlebar")
        with Horizontal():
            yield Tree("views", id="schema")
            with Vertical(id="console"):
                yield _editor(self.initial)
                yield Static(id="status")
                yield ResultGrid(id="result", render_markup=False, null_rep="NULL")
        yield Footer()

    def on_mount(self) -> None:
        # The editor is usable at once; the session opens meanwhile (seconds over a large
        # lake), and a query run before it is open waits for it in its worker.
        self.query_one(TextArea).focus()
        self.query_one("#status", Static).update(Text(OPENING, style="dim"))
        self.load_schema()

    @work(thread=True, exclusive=True, group="schema")
    def load_schema(self) -> None:
        try:
            views = self.app.sql_console.schema()  # type: ignore[attr-defined]
        except SentinelError as exc:
            self.post_message(self.Ran(None, f"{exc.title}: {exc.message}", 0.0))
            return
        self.app.call_from_thread(self._show_schema, views)

    def _show_schema(self, views: dict[str, list[tuple[str, str]]]) -> None:
        if not self.is_attached:  # the analyst left the console before the schema came
            return
        self.lake_open = True
        if self.running:
            self.query_one("#status", Static).update(Text("running…", style="dim"))
        elif self.result is None:
            self.query_one("#status", Static).update(Text(READY, style="dim"))
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
        self.running = True
        self.query_one("#status", Static).update(Text(
            "running…" if self.lake_open else f"{OPENING[:-1]}, then running…", style="dim"))
        self.run_query(query, None)

    @work(thread=True, exclusive=True, group="query")
    def run_query(self, query: str, reason: str | None) -> None:
        started = time.monotonic()
        try:
            result = self.app.sql_console.run(query, reason)  # type: ignore[attr-defined]
            first = result.fetch(FIRST_ROWS)
            # Here, not on the app's thread: the first block's masking and measuring.
            backend = ResultBackend(first, result.mask)
        except SentinelError as exc:
            self.post_message(self.Ran(None, f"{exc.title}: {exc.message}", 0.0))
            return
        except TypeError as exc:  # a column type the masking cannot walk: nothing shown
            self.post_message(self.Ran(None, f"Masking: {exc}; cast the column to VARCHAR", 0.0))
            return
        self.post_message(self.Ran(first, None, time.monotonic() - started, result, backend))

    @work(thread=True, exclusive=True, group="fetch")
    def fetch_more(self) -> None:
        """Fetch until the grid holds `wanted_rows` (or the result ends or is replaced).

        A newer call cancels this one (`exclusive`), but a thread runs on until it looks:
        each chunk is fetched and posted under `_fetching`, after checking, so two
        workers never interleave and the chunks reach the grid in order.
        """
        worker = get_current_worker()
        result = self.result
        while (result is not None and result is self.result and not result.done
               and result.fetched < self.wanted_rows):
            with self._fetching:
                if worker.is_cancelled:
                    return
                try:
                    more = result.fetch(END_CHUNK_ROWS if self.to_end else CHUNK_ROWS)
                except SentinelError as exc:
                    self.post_message(self.Ran(None, f"{exc.title}: {exc.message}", 0.0))
                    return
                self.post_message(self.More(result, more, result.done))

    async def on_sql_screen_ran(self, message: Ran) -> None:
        self.running = False
        status = self.query_one("#status", Static)
        if message.error is not None:
            status.update(plain(message.error, 2000, "bold red"))
            return
        assert message.table is not None and message.result is not None
        assert message.backend is not None
        await self.query_one("#result", ResultGrid).remove()
        grid = ResultGrid(id="result", backend=message.backend, render_markup=False,
                          null_rep="NULL")
        await self.query_one("#console", Vertical).mount(grid)
        self.result = message.result
        self.shown_rows = message.table.num_rows
        self.wanted_rows = AHEAD_ROWS
        self.to_end = False
        self.complete = message.result.done
        self.watch(grid, "scroll_y", self._near_the_end, init=False)
        self.watch(grid, "cursor_coordinate", self._near_the_end, init=False)
        self._show_status(f" · {message.seconds:.2f} s")
        # Once the first rows are drawn: fetching masks rows and would slow the drawing.
        self.set_timer(PREFETCH_DELAY, self._prefetch)

    def _prefetch(self) -> None:
        if self.is_attached:
            self.fetch_more()

    def on_sql_screen_more(self, message: More) -> None:
        """Append a chunk in place: the cursor and scroll position stay where they are."""
        if message.result is not self.result or self.shown_rows is None:
            return
        grid = self.query_one("#result", ResultGrid)
        backend = grid.backend
        if message.table.num_rows and isinstance(backend, ResultBackend):
            backend.append(message.table)
            self.shown_rows = backend.row_count
            grid._require_update_dimensions = True  # noqa: SLF001
            grid._clear_caches()  # noqa: SLF001
            grid.refresh()
        self.complete = message.done
        self._go_to_end()
        self._show_status()

    def on_result_grid_wants_end(self, _message: ResultGrid.WantsEnd) -> None:
        self.to_end = True
        self._want(EVERYTHING)
        self._go_to_end()

    def _go_to_end(self) -> None:
        """Once every row is held, put the cursor on the last one (after `ctrl+end`)."""
        if self.to_end and self.complete:
            self.to_end = False
            grid = self.query_one("#result", ResultGrid)
            grid.move_cursor(row=grid.row_count - 1)

    def _near_the_end(self) -> None:
        grid = self.query_one("#result", ResultGrid)
        seen = max(grid.cursor_row, int(grid.scroll_y) + grid.size.height)
        self._want(seen + AHEAD_ROWS)

    def _want(self, rows: int) -> None:
        if self.result is None or self.complete or rows <= self.wanted_rows:
            return
        self.wanted_rows = rows
        self.fetch_more()
        self._show_status()

    def _show_status(self, tail: str = "") -> None:
        rows = self.shown_rows or 0
        if self.result is None or self.complete:
            more = ""
        elif self.to_end:
            more = "+ (fetching to the last row)"
        elif self.result.fetched < self.wanted_rows:
            more = "+ (fetching)"
        else:
            more = "+ (more as you scroll)"
        line = Text(f"{_rows(rows)}{more}{tail}")
        if self.exporting:
            line.append(f" · {self.exporting}", style="dim")
        self.query_one("#status", Static).update(line)

    def action_history(self, step: int) -> None:
        """The previous (`step` -1) or next query, skipping what the editor already holds."""
        editor = self.query_one(TextArea)
        at = self.history_at + step
        while 0 <= at < len(self.history) and self.history[at] == editor.text.strip():
            at += step
        if 0 <= at < len(self.history):
            self.history_at = at
            editor.text = self.history[at]

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
        """The query run again on a masked session of its own, streamed to `path`."""
        def progress(rows: int) -> None:
            self.app.call_from_thread(self._show_export, f"exporting to {path}: {_rows(rows)}")

        try:
            rows = self.app.export_result(  # type: ignore[attr-defined]
                self.last_query, path, progress)
        except SentinelError as exc:
            self.app.call_from_thread(self._show_export, "")
            self.app.call_from_thread(self.notify, f"{exc.title}: {exc.message}",
                                      severity="error")
            return
        self.app.call_from_thread(self._show_export, "")
        self.app.call_from_thread(self.notify, f"{rows:,} rows written to {path} (masked)")

    def _show_export(self, line: str) -> None:
        self.exporting = line
        if self.is_attached:
            self._show_status()

    def action_reveal(self) -> None:
        if not self.last_query:
            self.notify("Run a query first.")
            return

        def done(reason: str | None) -> None:
            if reason:
                self.run_query(self.last_query, reason)

        self.app.push_screen(AskText("Why reveal this result? (recorded in the audit trail)"), done)


def _editor(text: str) -> TextArea:
    """The query editor, SQL highlighted by tree-sitter when its grammar is installed.

    Highlighting only colours the line: the characters drawn are the query's, in order
    (`test_tui_console.test_the_editor_draws_the_query_it_runs` pins it). SVG viewers
    built on librsvg drop the no-break space that starts a coloured run, so a snapshot
    rasterised with them looks like "SELECTactor_key ,"; browsers and terminals do not.
    """
    editor = TextArea.code_editor(text, id="editor", soft_wrap=True)
    if "sql" in editor.available_languages:
        editor.language = "sql"
    return editor


def _rows(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"
