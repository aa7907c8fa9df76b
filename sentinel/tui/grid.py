"""The SQL console's result grid: Arrow rows as fetched, made showable only where drawn.

textual-fastdatatable draws a row by asking its backend for it (`get_row_at`). This
backend holds the fetched rows as the session returned them, and turns a block of
`BLOCK_ROWS` rows into what a cell shows only when one of them is drawn (or copied):

- **the output-side net** (`Masker.mask_table`, what `sentinel sql` applies to what it
  prints). The session's views mask before the query, which covers every value stored in
  the lake; the net covers what a query *builds*: PII detection depends on context (word
  boundaries, labels), so `regexp_extract`, `replace` or `string_agg` can cut a value
  out of a masked text into a context where it is detected. Applied to the rows drawn,
  the net costs a screenful, not a full scan of every fetched chunk;
- **plain text**: control characters escaped, nested values as one JSON line, cells cut
  at `MAX_CELL` characters (`sentinel.output.cell_text`).

Column widths are measured once, on the first rows shown, so appending a chunk of
100,000 rows costs a concatenation, not a re-measurement of millions of cells.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
from textual_fastdatatable import ArrowBackend
from textual_fastdatatable.backend import DataTableBackend
from textual_fastdatatable.extension_types import canonicalize

from sentinel.output import cell_text

BLOCK_ROWS = 256
"""Rows made showable at once (a screen or two)."""
CACHED_BLOCKS = 64
MAX_CELL = 500
"""Characters a cell keeps (the grid cuts to the column width anyway)."""

Mask = Callable[[pa.Table], pa.Table]


def showable(table: pa.Table) -> pa.Table:
    """Text as shown: control characters escaped, nested values as one JSON line."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_nested(kind):
            values = [None if v is None else cell_text(v)[:MAX_CELL] for v in column.to_pylist()]
            columns.append(pa.array(values, pa.string()))
        else:
            columns.append(column)
    return pa.table(columns, names=table.column_names)


class ResultBackend(ArrowBackend):
    """A growing Arrow result whose rows are masked (`mask`) and escaped as they are drawn."""

    def __init__(self, first: pa.Table, mask: Mask | None) -> None:
        self._mask = mask
        self._blocks: OrderedDict[int, list[list[Any]]] = OrderedDict()
        super().__init__(first)
        self.render_markup = False
        # The first block, made showable once: it gives the widths and is drawn first.
        head = ArrowBackend(self._showable(0, min(first.num_rows, BLOCK_ROWS)))
        self._column_content_widths = head.column_content_widths
        self._blocks[0] = [list(head.get_row_at(i)) for i in range(head.row_count)]

    def append(self, more: pa.Table) -> None:
        """Rows fetched since: appended without copying or re-measuring."""
        if not more.num_rows:
            return
        more = canonicalize(more).rename_columns(self.data.column_names)
        self.data = pa.Table.from_batches(
            [*self.data.to_batches(), *more.cast(self.data.schema).to_batches()]
        )
        self._source_row_count = self.data.num_rows
        tail = (self.data.num_rows - more.num_rows) // BLOCK_ROWS
        self._blocks.pop(tail, None)  # the last block was short; it is complete now

    @property
    def column_content_widths(self) -> list[int]:
        return self._column_content_widths

    def _reset_content_widths(self) -> None:
        """Kept: widths are measured once (see the module docstring)."""

    def _showable(self, start: int, length: int) -> pa.Table:
        rows = self.data.slice(start, length)
        if self._mask is not None:
            rows = self._mask(rows)
        return showable(rows)

    def _block(self, index: int) -> list[list[Any]]:
        block = self._blocks.get(index)
        if block is None:
            shown = ArrowBackend(self._showable(index * BLOCK_ROWS, BLOCK_ROWS))
            block = [list(shown.get_row_at(i)) for i in range(shown.row_count)]
            self._blocks[index] = block
            while len(self._blocks) > CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(index)
        return block

    def get_row_at(self, index: int) -> Sequence[Any]:
        if index < 0:
            index += self.row_count
        if not 0 <= index < self.row_count:
            raise IndexError(f"row {index} of {self.row_count}")
        return self._block(index // BLOCK_ROWS)[index % BLOCK_ROWS]

    def get_cell_at(self, row_index: int, column_index: int) -> Any:
        return self.get_row_at(row_index)[column_index]

    def get_column_at(self, column_index: int) -> list[Any]:
        blocks = range((self.row_count + BLOCK_ROWS - 1) // BLOCK_ROWS)
        return [row[column_index] for index in blocks for row in self._block(index)]

    def sort(self, by: Any) -> None:
        super().sort(by)
        self._blocks.clear()

    def update_cell(self, row_index: int, column_index: int, value: Any) -> None:
        raise TypeError("a query result is read-only")


class RowsBackend(DataTableBackend[list[Any]]):
    """Python rows made into cells only when drawn (the queue's ten thousand incidents).

    Textual's own DataTable builds and measures every cell of every row up front, which
    costs seconds at 10,000 rows; here `cells(row)` runs for the rows on screen, and the
    column widths are the caller's (computed from plain lengths, not rendered cells).
    """

    def __init__(
        self, columns: Sequence[str], cells: Callable[[Any], list[Any]],
        rows: Sequence[Any] = (), widths: Sequence[int] = (),
    ) -> None:
        self._render_markup = False
        self.labels = list(columns)
        self.cells = cells
        self.rows: list[Any] = list(rows)
        self.widths = list(widths) or [len(label) for label in self.labels]

    @classmethod
    def from_pydict(cls, data: Any, max_rows: int | None = None,
                    column_names: Sequence[str] | None = None) -> RowsBackend:
        raise TypeError("RowsBackend is built from rows and a cell function")

    @property
    def source_data(self) -> list[Any]:
        return self.rows

    @property
    def source_row_count(self) -> int:
        return len(self.rows)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def columns(self) -> Sequence[str]:
        return self.labels

    @property
    def column_content_widths(self) -> Sequence[int]:
        return self.widths

    def get_row_at(self, index: int) -> Sequence[Any]:
        return self.cells(self.rows[index])

    def get_column_at(self, index: int) -> Sequence[Any]:
        return [self.cells(row)[index] for row in self.rows]

    def get_cell_at(self, row_index: int, column_index: int) -> Any:
        return self.cells(self.rows[row_index])[column_index]

    def append_column(self, label: str, default: Any | None = None) -> int:
        raise TypeError("the columns are fixed")

    def append_rows(self, records: Any) -> list[int]:
        raise TypeError("rows are replaced, not appended (see `replace`)")

    def drop_row(self, row_index: int) -> None:
        del self.rows[row_index]

    def update_cell(self, row_index: int, column_index: int, value: Any) -> None:
        raise TypeError("cells are computed from their row")

    def sort(self, by: Any) -> None:
        raise TypeError("the screen sorts its rows")


def rows_changed(table: Any, widths_changed: bool = True) -> None:
    """Tell a fastdatatable its backend's rows changed (it has no public call for that)."""
    if widths_changed:
        table._ordered_columns = None  # noqa: SLF001
    table._require_update_dimensions = True  # noqa: SLF001
    table._clear_caches()  # noqa: SLF001
    if table.row_count and table.cursor_row >= table.row_count:
        table.move_cursor(row=table.row_count - 1)
    table.refresh()
