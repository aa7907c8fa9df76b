"""The SQL console's export: the query again, masked, streamed to a file, then audited.

The grid holds only the rows looked at, so an export does not copy them: it runs the
query on a masked session of its own (`SqlSession`, like `sentinel sql`) and writes the
last statement's rows `CHUNK_ROWS` at a time through `output.emit_chunks`, which masks
each chunk as the grid does before any of it reaches the file. A 10-million-row result
costs a chunk of memory, not the result. No Textual here: this is a plain function a
worker calls.

Invariants:
- Masked, always: there is no revealed export (a reveal shows rows on screen, audited).
- The file is complete or absent: rows go to a hidden file renamed into place at the
  end (`emit_chunks`), created owner-only (0600).
- Every export is written to the audit trail (`export`: query masked, file, format,
  rows) once the file is in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from sentinel.exceptions import QueryError, SentinelError
from sentinel.lake.session import QueryResult, SqlSession
from sentinel.output import emit_chunks
from sentinel.store import audit
from sentinel.store.db import open_db
from sentinel.workspace import Workspace

COMMAND = "tui export"
CHUNK_ROWS = 50_000
"""Rows masked and written at a time."""
FORMATS = {".csv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "json"}
"""Export formats by file suffix."""


def export_result(
    ws: Workspace, query: str, path: Path, progress: Callable[[int], None] | None = None
) -> int:
    """Write the rows of `query`'s last statement to `path`, masked; the rows written.

    `progress` is called with the rows read so far after each chunk.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SentinelError("export to a .csv, .parquet, .json or .jsonl file", "Export")
    with SqlSession.open(ws, command=COMMAND) as session:
        last: QueryResult | None = None
        for result in session.execute(query):  # each earlier result is closed in turn
            last = result
        if last is None:
            raise QueryError("the query returned no result")
        rows = emit_chunks(last.schema, _chunks(last, progress), fmt=fmt, output=path,
                           masker=session.masker)
        detail = {"command": COMMAND, "query": session.mask(query), "path": str(path),
                  "format": fmt, "rows": rows, "masked": True}
    con = open_db(ws.state_db)
    try:
        audit.record(con, "export", detail)
    finally:
        con.close()
    return rows


def _chunks(result: QueryResult, progress: Callable[[int], None] | None) -> Iterator[pa.Table]:
    read = 0
    while True:
        table = result.fetch(CHUNK_ROWS)
        read += table.num_rows
        if table.num_rows:
            yield table
        if progress is not None:
            progress(read)
        if table.num_rows < CHUNK_ROWS:
            return
