"""Turn a batch of raw records into event-schema rows, inside DuckDB.

`normalise()` is the one place where a source's SQL meets the schema: it evaluates the
source's select list over the batch, casts every column to its schema type, derives
missing event ids, and splits the result into good rows and rejected ones (with the
reason). No Python code touches individual records here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from sentinel.exceptions import SourceError
from sentinel.schema import EVENT_SCHEMA, FINDING_TYPE, SOURCE_COLUMNS, duckdb_type
from sentinel.sources import sqlfuncs
from sentinel.sources.base import LogSource

RECORDS_SCHEMA = pa.schema([("source_offset", pa.int64()), ("record", pa.string())])
REJECTED_SCHEMA = pa.schema(
    [("source_offset", pa.int64()), ("reason", pa.string()), ("raw", pa.string())]
)


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with sentinel's SQL macros registered."""
    con = duckdb.connect(":memory:")
    sqlfuncs.register(con)
    return con


def prepare(con: duckdb.DuckDBPyConnection, source: LogSource) -> None:
    """Run a source's setup statements on a connection (idempotent)."""
    for statement in source.setup_sql():
        con.execute(statement)


def normalise(
    con: duckdb.DuckDBPyConnection,
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
    con.register("_sentinel_batch", records)
    try:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _sentinel_checked AS
            SELECT source_offset, record AS raw,
                   CASE WHEN NOT json_valid(record) THEN 'invalid JSON'
                        WHEN json_type(record::JSON) <> 'OBJECT'
                            THEN 'record is a JSON ' || lower(json_type(record::JSON))
                                 || ', not an object'
                   END AS _reject
            FROM _sentinel_batch
            """
        )
        prepare(con, source)
        casts = ",\n".join(_cast(name) for name in SOURCE_COLUMNS)
        type_checks = "\n".join(_type_check(name) for name in NUMERIC_COLUMNS)
        # Each stage is materialised once, so a value parsed out of the record (a struct of
        # its top-level fields, a decoded metadata string) is not re-parsed per reference.
        stages, previous = "", "records"
        for number, stage in enumerate(source.stages()):
            stages += (
                f"stage{number} AS MATERIALIZED (SELECT *, {stage} FROM {previous}),\n"
            )
            previous = f"stage{number}"
        try:
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE _sentinel_norm AS
                WITH records AS (
                    SELECT source_offset AS _offset, raw, raw::JSON AS record,
                           source_offset
                    FROM _sentinel_checked WHERE _reject IS NULL
                ),
                {stages}
                projected AS (
                    SELECT _offset, raw, {source.select_list()} FROM {previous}
                )
                SELECT {casts}, raw, _offset,
                       CASE WHEN projected._error IS NOT NULL THEN projected._error
                            WHEN projected.ts IS NULL THEN 'no valid timestamp'
                            {type_checks}
                       END AS _error
                FROM projected
                """,
                source.parameters(),
            )
        except duckdb.Error as exc:
            raise SourceError(
                f"source {source.name!r}: normalisation failed: {_one_line(exc)}"
            ) from exc
        rejected = con.sql(
            """
            SELECT source_offset, _reject AS reason, raw FROM _sentinel_checked
            WHERE _reject IS NOT NULL
            UNION ALL
            SELECT _offset, _error, raw FROM _sentinel_norm WHERE _error IS NOT NULL
            ORDER BY 1
            """
        ).to_arrow_table()
        events = con.sql(
            f"""
            SELECT COALESCE(event_id, $source || ':' || sha256(raw)) AS event_id,
                   ts, $ingested_at::TIMESTAMPTZ AS ingested_at,
                   $source AS source, $source_file::VARCHAR AS source_file,
                   {", ".join(c for c in SOURCE_COLUMNS if c not in ("event_id", "ts"))},
                   NULL::VARCHAR[] AS pii_types, NULL::INTEGER AS pii_count,
                   NULL AS pii_findings, raw
            FROM _sentinel_norm WHERE _error IS NULL
            ORDER BY _offset
            """,
            params={"ingested_at": ingested_at, "source_file": source_file, "source": source.name},
        ).to_arrow_table()
    finally:
        con.unregister("_sentinel_batch")
    return _conform(events), rejected.cast(REJECTED_SCHEMA)


NUMERIC_COLUMNS = tuple(
    name for name in SOURCE_COLUMNS
    if duckdb_type(EVENT_SCHEMA.field(name)) in ("INTEGER", "BIGINT", "DOUBLE")
)


def _type_check(name: str) -> str:
    """A CASE branch rejecting a record whose value for a numeric column is not a number."""
    sql_type = duckdb_type(EVENT_SCHEMA.field(name))
    return (
        f"WHEN projected.{name} IS NOT NULL AND TRY_CAST(projected.{name} AS {sql_type}) IS NULL "
        f"THEN 'wrong type: {name} must be {sql_type.lower()}, got ' "
        f"|| left(CAST(projected.{name} AS VARCHAR), 60)"
    )


def _cast(name: str) -> str:
    sql_type = duckdb_type(EVENT_SCHEMA.field(name))
    if name == "ts":
        return "CAST(ts AS TIMESTAMPTZ) AS ts"
    return f"TRY_CAST({name} AS {sql_type}) AS {name}"


def _conform(table: pa.Table) -> pa.Table:
    """Cast a query result to exactly the event schema (types, order, metadata)."""
    columns = []
    for field in EVENT_SCHEMA:
        column = table.column(field.name)
        if field.name == "pii_findings":
            column = pa.nulls(len(table), pa.list_(FINDING_TYPE))
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
