"""Documents and envelopes: from a whole-file JSON value, or a line holding an array or
an envelope object, to one row per record.

A *document* file (a pretty-printed LiteLLM payload, a JSON array export, a CloudTrail
`{"Records": [...]}` object) is read whole (up to `max_document_bytes`) and numbers its
records by index: progress is the number of records taken. Envelopes are unwrapped in
DuckDB, so a large document is never parsed in Python; only lines that could be an
array or an envelope leave the zero-copy fast path.
"""

from __future__ import annotations

import re
from typing import IO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sentinel.exceptions import SourceError
from sentinel.ingest.framing import QUARANTINE_SAMPLE_BYTES, RECORDS_TYPE, Chunk, Rejected

_ENVELOPE_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def read_document(stream: IO[bytes], max_document_bytes: int) -> Chunk:
    """The whole file as one record (unwrapped later); too large -> one rejection."""
    data = stream.read(max_document_bytes + 1)
    if len(data) > max_document_bytes:
        return Chunk(
            records=RECORDS_TYPE.empty_table(), start=0, end=0,
            rejected=[Rejected(0, f"document larger than max_document_bytes "
                                  f"({max_document_bytes})",
                               data[:QUARANTINE_SAMPLE_BYTES].decode("utf-8", "backslashreplace"),
                               truncated=True)],
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Chunk(
            records=RECORDS_TYPE.empty_table(), start=0, end=0,
            rejected=[Rejected(0, "invalid UTF-8",
                               data[:QUARANTINE_SAMPLE_BYTES].decode("utf-8", "backslashreplace"),
                               truncated=len(data) > QUARANTINE_SAMPLE_BYTES)],
            bytes_read=len(data),
        )
    table = pa.table({"source_offset": pa.array([0], pa.int64()),
                      "record": pa.array([text], pa.large_string())})
    return Chunk(records=table, start=0, end=0, bytes_read=len(data))


def text_chunk(data: bytes) -> Chunk:
    """A one-record chunk holding `data` (for sampling a single long line)."""
    table = pa.table({"source_offset": pa.array([0], pa.int64()),
                      "record": pa.array([data.decode("utf-8", "replace")], pa.large_string())})
    return Chunk(records=table, start=0, end=len(data), bytes_read=len(data))


def unwrap(
    con: duckdb.DuckDBPyConnection,
    records: pa.Table,
    envelope_paths: tuple[str, ...],
    document: bool,
    skip_records: int = 0,
) -> pa.Table:
    """Expand JSON arrays and envelope objects into one row per record, in DuckDB.

    Documents number their records (source_offset = the document's own offset, 0 when
    read whole, + index) and drop the first `skip_records` (already ingested). Invalid
    JSON passes through for rejection later.
    """
    for path in envelope_paths:
        if not _ENVELOPE_PATH.match(path):
            raise SourceError(f"envelope path {path!r} must look like $.key or $.a.b")
    if not document:
        # Fast path: only lines that could be an array or an envelope go through DuckDB.
        text = records.column("record")
        if pc.any(pc.ends_with(text, "\r")).as_py():  # CRLF lines; trimming copies them all
            text = pc.utf8_rtrim(text, characters="\r\n")
        nonblank, maybe = _line_shapes(text)
        for path in envelope_paths:
            key = path.rsplit(".", 1)[-1]
            maybe = pc.or_(maybe, pc.match_substring(text, f'"{key}"'))
        plain = pa.table(
            {"source_offset": records.column("source_offset"), "record": text},
            schema=RECORDS_TYPE,
        )
        if not pc.any(maybe).as_py():
            return plain if pc.all(nonblank).as_py() else plain.filter(nonblank)
        rest = plain.filter(pc.and_(nonblank, pc.invert(maybe)))
        wrapped = _unwrap_sql(con, records.filter(maybe), envelope_paths, False, 0)
        return pa.concat_tables([rest, wrapped]).sort_by("source_offset")
    return _unwrap_sql(con, records, envelope_paths, document, skip_records)


def _line_shapes(text: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Per line: not blank, and starting with `[` after whitespace.

    A batch whose lines all start with `{` (the usual) is answered without trimming,
    that is without two more copies of every line.
    """
    if pc.all(pc.starts_with(text, "{")).as_py() is not False:
        return pa.array(np.ones(len(text), bool)), pa.array(np.zeros(len(text), bool))
    return (
        pc.not_equal(pc.utf8_trim_whitespace(text), ""),
        pc.starts_with(pc.utf8_ltrim_whitespace(text), "["),
    )


def _unwrap_sql(
    con: duckdb.DuckDBPyConnection,
    records: pa.Table,
    envelope_paths: tuple[str, ...],
    document: bool,
    skip_records: int,
) -> pa.Table:
    branches = ["WHEN json_type(record::JSON) = 'ARRAY' THEN json_extract(record::JSON, '$[*]')"]
    branches += [
        f"WHEN json_type(record::JSON, '{path}') = 'ARRAY' "
        f"THEN json_extract(record::JSON, '{path}[*]')"
        for path in envelope_paths
    ]
    con.register("_sentinel_raw", records)
    try:
        result = con.sql(
            f"""
            WITH valid AS (
                SELECT source_offset, record, json_valid(record) AS ok FROM _sentinel_raw
                WHERE trim(record, ' ' || chr(9) || chr(10) || chr(13)) <> ''
            ),
            classified AS (
                SELECT source_offset, record,
                       CASE WHEN ok THEN CASE {" ".join(branches)} END END AS items
                FROM valid
            ),
            expanded AS (
                SELECT source_offset, unnest(list_transform(
                           items, lambda x, i: {{'i': i - 1, 'r': x::VARCHAR}})) AS e
                FROM classified WHERE items IS NOT NULL
            )
            SELECT source_offset, rtrim(record, chr(10) || chr(13)) AS record, 0 AS i
            FROM classified WHERE items IS NULL
            UNION ALL
            SELECT CASE WHEN $document THEN source_offset + e.i ELSE source_offset END,
                   e.r, e.i
            FROM expanded WHERE NOT $document OR e.i >= $skip
            ORDER BY 1, 3
            """,
            params={"document": document, "skip": skip_records},
        ).select("source_offset", "record").to_arrow_table()
    finally:
        con.unregister("_sentinel_raw")
    return result.cast(RECORDS_TYPE)
