"""Printing query results: one place that decides what leaves sentinel and how it looks.

Invariants every command inherits by calling `emit`:
- Values are masked (`sentinel.pii.masking.mask_table`) unless the caller passes a
  `Reveal`, and a reveal is written to the hash-chained audit trail *before* anything is
  printed. Without the masking module nothing is printed at all (fail closed), nor
  without a library it loads on first use (a validator's phonenumbers or stdnum).
- Every value is data, never markup: log text is attacker-controlled (a prompt can hold
  `[bold red]`, ANSI escapes or bidi overrides). The `table` format renders rich `Text`
  and escapes control characters; `json` keeps values exact, JSON-escaped; `csv` keeps
  them exact too, except that a text cell starting like a spreadsheet formula (`=`,
  `+`, `-`, `@`, tab, CR) gets a leading `'`.
- stdout carries data; `--output FILE` is created owner-only (0600), like the workspace.

Formats: `table` (rich on a terminal, plain aligned text otherwise, capped with a
"… N more rows" line), `csv`, `json` (one object per line, ISO timestamps) and `parquet`
(to a file only).

What a format does not use is not imported: `sentinel scan --format jsonl` from cron
prints a few alert rows, so table layout (`sentinel.tables`, wcwidth), Parquet and the
masking engine are loaded where they are first needed, never by importing this module.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol, TextIO, cast

import pyarrow as pa

from sentinel.exceptions import SentinelError

FORMATS = ("table", "csv", "json", "parquet")
DEFAULT_TABLE_LIMIT = 100

# C0/C1 controls (ANSI escapes start with \x1b), line/paragraph separators and bidi
# controls ("Trojan Source"): shown as escapes in tables, \u-escaped in JSON.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class OutputError(SentinelError):
    title = "Output error"


class TableMasker(Protocol):
    """Masks every value of a result that may hold a finding (`lake.privacy.Masker`)."""

    def mask_table(self, table: pa.Table) -> pa.Table: ...


@dataclass(frozen=True)
class Reveal:
    """Permission to print unmasked values, and what the audit trail records about it.

    `query` and `reason` are recorded as given: the caller masks them first (the SQL
    session does), so a value typed into a query never lands in `state.db`.
    """

    reason: str
    command: str
    query: str
    state_db: Path


def emit(
    table: pa.Table,
    *,
    fmt: str = "table",
    output: Path | None = None,
    more_rows: int = 0,
    reveal: Reveal | None = None,
    stream: TextIO | None = None,
    masker: TableMasker | None = None,
) -> None:
    """Mask (or audit the reveal of) `table`, then write it in `fmt` to `output` or stdout.

    `masker` is the workspace's (its custom detectors, keyed tags, identity policy);
    without one the built-in detectors mask every text.
    """
    if fmt not in FORMATS:
        raise OutputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and output is None:
        raise OutputError("--format parquet needs --output FILE")
    # (two arguments when there is no masker: tests replace `_protect` with a 2-ary stub)
    table = _protect(table, reveal, masker) if masker else _protect(table, reveal)
    try:
        if fmt == "parquet":
            assert output is not None
            import pyarrow.parquet as pq

            with open_private(output, binary=True) as handle:
                pq.write_table(table, handle)
        elif output is not None:
            with open_private(output) as handle:
                _write_text(table, fmt, cast(TextIO, handle), more_rows)
        else:
            _write_text(table, fmt, stream or sys.stdout, more_rows)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise OutputError(f"cannot write {output or 'output'}: {exc}") from exc


def open_private(path: Path, *, binary: bool = False) -> IO[Any]:
    """Open `path` for writing, created (or reset to) mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    if binary:
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def printable(text: str) -> str:
    """`text` with control and bidi characters shown as escapes (`\\x1b`, `\\n`, `\\u202e`)."""
    return _UNSAFE.sub(_escape, text)


def cell_text(value: Any) -> str:
    """A value as one line of table text."""
    if value is None:
        return "NULL"
    value = plain(value)
    if isinstance(value, list | dict):
        return printable(json.dumps(value, ensure_ascii=False))
    if isinstance(value, bool):
        return "true" if value else "false"
    return printable(str(value))


def plain(value: Any) -> Any:
    """A Python value from Arrow as JSON-ready data: ISO times, exact decimals, hex bytes."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return {str(k): plain(v) for k, v in value}  # an Arrow map: (key, value) pairs
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dt.timedelta):
        return str(value)
    return value


def json_line(row: dict[str, Any]) -> str:
    """One JSON object on one line; characters that could fool a terminal are \\u-escaped."""
    text = json.dumps(plain(row), ensure_ascii=False, default=str)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _protect(
    table: pa.Table, reveal: Reveal | None, masker: TableMasker | None = None
) -> pa.Table:
    if reveal is not None:
        from sentinel.store import audit
        from sentinel.store.db import open_db

        con = open_db(reveal.state_db)
        try:
            detail = {
                "command": reveal.command,
                "query": reveal.query,
                "reason": reveal.reason,
                "rows": table.num_rows,
            }
            audit.record(con, "reveal", detail)
        finally:
            con.close()
        return table
    try:
        from sentinel.pii.masking import mask_table
    except ImportError as exc:
        raise OutputError(
            "cannot mask the result (sentinel.pii.masking is missing), so nothing is printed"
        ) from exc
    try:
        masked: pa.Table = masker.mask_table(table) if masker else mask_table(table)
    except TypeError as exc:  # a column type the masking cannot walk: fail closed
        raise OutputError(f"{exc}, so nothing is printed; cast the column to VARCHAR") from exc
    except ImportError as exc:  # a library masking loads when a value first needs it
        raise OutputError(
            f"cannot mask the result ({exc.name or exc} is missing), so nothing is printed"
        ) from exc
    return masked


def _rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    for batch in table.to_batches(max_chunksize=1024):
        yield from batch.to_pylist()


def _write_text(table: pa.Table, fmt: str, stream: TextIO, more_rows: int) -> None:
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(table.column_names)
        for row in _rows(table):
            writer.writerow([_csv_value(v) for v in row.values()])
    elif fmt == "json":
        for row in _rows(table):
            stream.write(json_line(row) + "\n")
    else:
        _write_table(table, stream, more_rows)
    stream.flush()


# A text cell a spreadsheet would read as a formula (`=HYPERLINK(…)`, `+cmd|…`, `@SUM(…)`)
# when an analyst opens the export: log text is attacker-controlled.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    value = plain(value)
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # shown as text; json and parquet keep the value exact
    return value


def _more_line(more_rows: int) -> str:
    return f"… {more_rows} more row{'s' if more_rows != 1 else ''} (raise --limit to see them)"


def _write_table(table: pa.Table, stream: TextIO, more_rows: int) -> None:
    """An aligned table fitted to the output width (see `sentinel.tables`)."""
    from sentinel import tables  # wcwidth: only a drawn table pays for it, not json or csv

    headers = [printable(name) for name in table.column_names]
    rows = [[cell_text(v) for v in row.values()] for row in _rows(table)]
    numeric = [_is_numeric(field.type) for field in table.schema]
    lines = tables.render(headers, rows, numeric, tables.output_width(stream))
    if not rows:
        lines.append("(0 rows)")
    if more_rows:
        lines.append(_more_line(more_rows))
    stream.write("".join(line + "\n" for line in lines))


def _is_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def emit_chunks(
    schema: pa.Schema,
    chunks: Iterable[pa.Table],
    *,
    fmt: str,
    output: Path,
    masker: TableMasker,
) -> int:
    """What `emit` writes to a file, for a result too large to hold: a chunk at a time.

    Each chunk is masked before any of it is written; CSV's header comes once, a Parquet
    file gets a row group per chunk. The rows go to a hidden file beside `output`
    renamed into place at the end, so a query failing halfway leaves no half export
    (and an older file of that name as it was). Returns the rows written.
    """
    if fmt not in ("csv", "json", "parquet"):
        raise OutputError(f"cannot stream {fmt!r}; choose csv, json or parquet")
    partial = output.with_name(f".{output.name}.partial")
    rows = 0
    try:
        masked = (_protect(chunk, None, masker) for chunk in chunks if chunk.num_rows)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            shape = _protect(schema.empty_table(), None, masker).schema
            with open_private(partial, binary=True) as handle, pq.ParquetWriter(
                handle, shape
            ) as writer:
                for chunk in masked:
                    writer.write_table(chunk.cast(shape))
                    rows += chunk.num_rows
        else:
            with open_private(partial) as handle:
                stream = cast(TextIO, handle)
                table_rows = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
                if table_rows is not None:
                    table_rows.writerow(schema.names)
                for chunk in masked:
                    for row in _rows(chunk):
                        if table_rows is not None:
                            table_rows.writerow([_csv_value(v) for v in row.values()])
                        else:
                            stream.write(json_line(row) + "\n")
                    rows += chunk.num_rows
        os.replace(partial, output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputError(f"cannot write {output}: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return rows
