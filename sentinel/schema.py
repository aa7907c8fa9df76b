"""The normalised event schema: the single source of truth for every lake column.

Every source produces rows of exactly this shape; Sigma rules, the PII scanner and the
SQL views all use these names. `SCHEMA_VERSION` is written into each Parquet file's
metadata and into `state.db`, so a later change of columns can be migrated.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

FINDING_TYPE = pa.struct(
    [
        pa.field("type", pa.string()),
        pa.field("field", pa.string()),
        pa.field("start", pa.int32()),
        pa.field("end", pa.int32()),
        pa.field("digest", pa.string()),
    ]
)

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_file", pa.string()),
        pa.field("source_offset", pa.int64()),
        pa.field("kind", pa.string()),
        pa.field("action", pa.string()),
        pa.field("outcome", pa.string()),
        pa.field("status_code", pa.int32()),
        pa.field("actor_user", pa.string()),
        pa.field("actor_key", pa.string()),
        pa.field("actor_team", pa.string()),
        pa.field("actor_type", pa.string()),
        pa.field("client_ip", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("vendor", pa.string()),
        pa.field("model", pa.string()),
        pa.field("endpoint", pa.string()),
        pa.field("region", pa.string()),
        pa.field("prompt_text", pa.string()),
        pa.field("response_text", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("cost_usd", pa.float64()),
        pa.field("latency_ms", pa.float64()),
        pa.field("resource", pa.string()),
        pa.field("pii_types", pa.list_(pa.string())),
        pa.field("pii_count", pa.int32()),
        pa.field("pii_findings", pa.list_(FINDING_TYPE)),
        pa.field("raw", pa.string()),
    ],
    metadata={b"sentinel.schema_version": str(SCHEMA_VERSION).encode()},
)

# Columns a source's normalisation SQL must produce, in this order. The ingest engine adds
# ingested_at, source, source_file, the pii_* columns and `raw`, and fills event_id when
# the source has no request id.
SOURCE_COLUMNS: tuple[str, ...] = tuple(
    name
    for name in EVENT_SCHEMA.names
    if name
    not in {"ingested_at", "source", "source_file", "pii_types", "pii_count", "pii_findings", "raw"}
)

TEXT_COLUMNS: tuple[str, ...] = ("prompt_text", "response_text")


def duckdb_type(field: pa.Field) -> str:
    """The DuckDB SQL type of a schema column, for casts in generated SQL."""
    return _DUCKDB_TYPES[str(field.type)] if str(field.type) in _DUCKDB_TYPES else "VARCHAR"


_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
    "list<item: string>": "VARCHAR[]",
}


def empty_table() -> pa.Table:
    """A zero-row table with the event schema (for views over an empty lake)."""
    return EVENT_SCHEMA.empty_table()
