"""Turn a batch of raw records into event-schema rows, inside DuckDB.

`normalise()` is the one place where a source's SQL meets the schema: it evaluates the
source's select list over the batch, casts every column to its schema type, derives
missing event ids, and splits the result into good rows and rejected ones (with the
reason). No Python code touches individual records here.

Cost model (a batch is ~64 MB of records of a few KB each): every JSON function parses
its argument again, so a batch is first run without validating its records at all;
only a batch whose query fails is run again with `json_valid` (the same verdict as
`TRY_CAST(record AS JSON)`, which also copied every record), and the source is handed
the text itself, as VARCHAR (so `sha256(record)` is that of the text). Given a
`DuckSession` (what the Runtime hands ingest), each source's query is bound once per
session and kept with it; a bare connection binds it per batch. It never copies the raw
text through DuckDB: rows carry their position in the batch (`_row`), and `raw` is
taken from the input Arrow column at the end, zero-copy for the usual all-good batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sentinel import duck
from sentinel.duck import DuckSession
from sentinel.exceptions import SourceError
from sentinel.schema import EVENT_SCHEMA, SOURCE_COLUMNS, duckdb_type
from sentinel.sources.base import LogSource

REJECTED_SCHEMA = pa.schema(
    [("source_offset", pa.int64()), ("reason", pa.string()), ("raw", pa.string())]
)


def connect() -> DuckSession:
    """A DuckDB session (UTC, every sentinel macro) that keeps its bound queries."""
    return DuckSession(duck.connect())


def prepare(session: DuckSession | duckdb.DuckDBPyConnection, source: LogSource) -> None:
    """Run a source's setup statements: once per session (a batch must not rewrite the
    catalog every time, ~5 ms), every time on a bare connection."""
    statements = tuple(source.setup_sql())
    if isinstance(session, DuckSession):
        session.run_once(statements)
        return
    for statement in statements:
        session.execute(statement)


def normalise(
    session: DuckSession | duckdb.DuckDBPyConnection,
    source: LogSource,
    records: pa.Table,
    source_file: str | None,
    ingested_at: datetime | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Normalise `records(source_offset, record)` (record = JSON text).

    Returns `(events, rejected)`: events have the full event schema with empty PII
    columns (the scanner fills them); rejected rows carry offset, reason and raw text.
    Records that are not valid JSON objects are rejected before the source sees them.
    """
    ingested_at = ingested_at or datetime.now(UTC)
    con = session.con if isinstance(session, DuckSession) else session
    batch = pa.table(
        {
            "_row": pa.array(np.arange(records.num_rows, dtype=np.int64)),
            "source_offset": records.column("source_offset"),
            "record": records.column("record"),
        }
    )
    prepare(session, source)
    con.register("_sentinel_batch", _in_slices(con, batch))
    try:
        try:
            # Optimistic: a batch of valid JSON (nearly every batch) skips `json_valid`,
            # a second parse of every record (~17% of the LiteLLM query's CPU). Invalid
            # JSON makes the query fail, and the batch is run again with the check.
            result = _bound(session, source, validate=False).to_arrow_table()
        except duckdb.Error:
            result = _bound(session, source, validate=True).to_arrow_table()
    except duckdb.Error as exc:
        raise SourceError(
            f"source {source.name!r}: normalisation failed: {_one_line(exc)}"
        ) from exc
    finally:
        con.unregister("_sentinel_batch")
    return _split(result, records, ingested_at, source_file)


def _bound(
    session: DuckSession | duckdb.DuckDBPyConnection, source: LogSource, validate: bool
) -> Any:
    """Each source's query as a relation: bound once per session, run once per batch.

    It reads whatever `_sentinel_batch` names at the time. Creating a relation binds the
    query and running it binds it again: ~40 ms per batch for the LiteLLM query, a
    quarter of its time. The key includes the parameters: two config-defined sources
    can share a query text and differ only in their JSON paths.
    """
    query = _query(source, validate)
    params = [*source.parameters(), source.name]
    if isinstance(session, DuckSession):
        return session.relation(query, params)
    return session.sql(query, params=params)


def _in_slices(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> pa.Table:
    """`batch` as zero-copy slices, a few per DuckDB thread.

    DuckDB scans an Arrow table one record batch per thread, and a batch read from one
    buffer is a single record batch: unsliced, the whole query ran on one core.
    """
    rows = con.execute("SELECT current_setting('threads')").fetchall()
    threads = max(1, int(rows[0][0]))
    size = max(1024, min(8192, -(-batch.num_rows // (2 * threads))))
    return pa.Table.from_batches(batch.to_batches(max_chunksize=size), schema=batch.schema)


def _query(source: LogSource, validate: bool) -> str:
    """The whole batch in one query: check, the source's stages and select list, casts.

    A record that is not a JSON object reaches the source as a NULL `record` (every JSON
    function maps NULL to NULL), so one pass serves good and rejected rows alike. Without
    `validate`, text that is not JSON at all is not looked for, and fails the query.
    """
    name = f"${len(source.parameters()) + 1}"
    stages, previous = "", "records"
    # A stage's value (a struct parsed out of the record) is referenced many times below;
    # DuckDB's common-subexpression pass computes it once. Materialising the stages did
    # the same at the price of copying every column (the record text included) per
    # stage and running them in sequence: ~20% more CPU, twice the wall time on 2 cores.
    for number, stage in enumerate(source.stages()):
        stages += f"stage{number} AS NOT MATERIALIZED (SELECT *, {stage} FROM {previous}),\n"
        previous = f"stage{number}"
    casts = ",\n".join(_cast(column) for column in SOURCE_COLUMNS if column != "event_id")
    type_checks = "\n".join(_type_check(column) for column in NUMERIC_COLUMNS)
    return f"""
        WITH records AS (
            SELECT _row, source_offset,
                   CASE WHEN {"json_valid(record) IS NOT TRUE" if validate else "false"}
                            THEN 'invalid JSON'
                        WHEN NOT starts_with(record, '{{')
                             AND json_type(record) <> 'OBJECT'
                            THEN 'record is a JSON ' || lower(json_type(record))
                                 || ', not an object'
                   END AS _reject,
                   CASE WHEN _reject IS NULL THEN record END AS record
            FROM _sentinel_batch
        ),
        {stages}
        projected AS (
            SELECT _row, _reject, record, {source.select_list()} FROM {previous}
        )
        SELECT _row,
               COALESCE(CAST(event_id AS VARCHAR), {name} || ':' || sha256(record))
                   AS event_id,
               {casts},
               {name}::VARCHAR AS source,
               CASE WHEN _reject IS NOT NULL THEN _reject
                    WHEN projected._error IS NOT NULL THEN projected._error
                    WHEN projected.ts IS NULL THEN 'no valid timestamp'
                    {_TS_RANGE_CHECK}
                    {type_checks}
               END AS _error
        FROM projected
    """


NUMERIC_COLUMNS = tuple(
    name for name in SOURCE_COLUMNS
    if duckdb_type(EVENT_SCHEMA.field(name)) in ("INTEGER", "BIGINT", "DOUBLE")
)


# Later queries turn timestamps into Python datetimes (years 1..9999) and sum costs: a
# year-1200-BC or `infinity` timestamp crashed every query returning its row, a NaN cost
# turned every sum into NaN. Such values are rejected here, for every source at once.
TS_MIN, TS_MAX = "1970-01-01 00:00:00+00", "2100-01-01 00:00:00+00"
_TS_RANGE_CHECK = (
    "WHEN NOT (CAST(projected.ts AS TIMESTAMPTZ) >= TIMESTAMPTZ '" + TS_MIN + "' "
    "AND CAST(projected.ts AS TIMESTAMPTZ) < TIMESTAMPTZ '" + TS_MAX + "') "
    "THEN 'timestamp out of range (1970-2100): ' "
    "|| left(CAST(CAST(projected.ts AS TIMESTAMPTZ) AS VARCHAR), 60)"
)


def _type_check(name: str) -> str:
    """CASE branches rejecting a record whose value for a numeric column is not a number,
    or not a finite one (NaN, Infinity)."""
    sql_type = duckdb_type(EVENT_SCHEMA.field(name))
    check = (
        f"WHEN projected.{name} IS NOT NULL AND TRY_CAST(projected.{name} AS {sql_type}) IS NULL "
        f"THEN 'wrong type: {name} must be {sql_type.lower()}, got ' "
        f"|| left(CAST(projected.{name} AS VARCHAR), 60)"
    )
    if sql_type == "DOUBLE":
        check += (
            f"\n                    WHEN NOT isfinite(TRY_CAST(projected.{name} AS DOUBLE)) "
            f"THEN 'not a finite number: {name} is ' "
            f"|| CAST(TRY_CAST(projected.{name} AS DOUBLE) AS VARCHAR)"
        )
    return check


def _cast(name: str) -> str:
    sql_type = duckdb_type(EVENT_SCHEMA.field(name))
    if name == "ts":
        return "CAST(ts AS TIMESTAMPTZ) AS ts"
    return f"TRY_CAST({name} AS {sql_type}) AS {name}"


def _split(
    result: pa.Table, records: pa.Table, ingested_at: datetime, source_file: str | None
) -> tuple[pa.Table, pa.Table]:
    """Good rows become events (with `raw` from the input), the rest rejections."""
    result = _in_order(result, records)
    constants = {"ingested_at": ingested_at, "source_file": source_file}
    failed = result.column("_error").is_valid()
    if not pc.any(failed).as_py():
        return _conform(result, records.column("record"), constants), REJECTED_SCHEMA.empty_table()
    good, bad = result.filter(pc.invert(failed)), result.filter(failed)
    raw = records.column("record")
    bad_rows = bad.column("_row")
    rejected = pa.table(
        {
            "source_offset": records.column("source_offset").take(bad_rows),
            "reason": bad.column("_error"),
            "raw": raw.take(bad_rows),
        }
    )
    return _conform(good, raw.take(good.column("_row")), constants), rejected.cast(REJECTED_SCHEMA)


def _in_order(result: pa.Table, records: pa.Table) -> pa.Table:
    """`result` in source_offset order, ties in input order (usually already so)."""
    rows = result.column("_row").to_numpy()
    if len(rows) > 1 and np.any(rows[1:] < rows[:-1]):
        rows = np.sort(rows)
        result = result.take(np.argsort(result.column("_row").to_numpy(), kind="stable"))
    offsets = records.column("source_offset").to_numpy()[rows]
    if len(offsets) > 1 and np.any(offsets[1:] < offsets[:-1]):
        result = result.take(np.argsort(offsets, kind="stable"))
    return result


def _conform(table: pa.Table, raw: pa.ChunkedArray, constants: dict[str, Any]) -> pa.Table:
    """Cast a query result to exactly the event schema (types, order, metadata)."""
    columns = []
    for field in EVENT_SCHEMA:
        if field.name == "raw":
            column = raw
        elif field.name in constants:
            column = pa.repeat(pa.scalar(constants[field.name], field.type), len(table))
        elif field.name in ("pii_types", "pii_count", "pii_findings"):
            column = pa.nulls(len(table), field.type)
        else:
            column = table.column(field.name)
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
