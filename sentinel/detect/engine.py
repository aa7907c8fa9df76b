"""The SQL a scan runs: many detection rules per pass, correlations over a lookback.

A detection rule compiles to `SELECT * FROM events WHERE <condition>`. Running 35 of
those one by one re-reads and decompresses the text columns 35 times and drags `raw`
along for every match. A scan instead evaluates every rule that reads a source in one
pass over that source's new files:

    SELECT <alert columns>, coalesce(<cond 0>, false) AS r0, …, coalesce(<cond n>, false) AS rn
    FROM read_parquet([new files of source S], filename = true)
    WHERE r0 OR … OR rn

DuckDB reads only the columns some condition or the alert needs (Parquet projection), the
WHERE keeps the few matching rows, and the projection is computed for those rows only.
The alert columns are the event's identity and provenance plus the principal columns
an alert is grouped by; full rows are never fetched.

Alerts are then built from the (small) hit table, one per rule, group key and UTC day:
the group key of a detection is its principal, the first present of `actor_key`,
`actor_user`, `client_ip` (a rule groups by "who"). Correlations keep their own
`group-by` (see `sentinel.detect.correlation`).

This module only writes SQL; `sentinel.scan` runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sentinel.detect.compiler import CompiledRule
from sentinel.detect.fields import quote_identifier, quote_literal

SELECT_PREFIX = "SELECT * FROM events WHERE "
PROVENANCE = ("event_id", "ts", "source", "source_file", "source_offset")
PRINCIPAL = ("actor_key", "actor_user", "client_ip")
HIT_COLUMNS = (*PROVENANCE, *PRINCIPAL)


def detection_condition(compiled: CompiledRule) -> str:
    """The WHERE condition of a compiled detection rule (source filter included)."""
    if compiled.kind != "detection" or not compiled.sql.startswith(SELECT_PREFIX):
        raise ValueError(f"rule {compiled.rule_id} is not a detection rule")
    return compiled.sql[len(SELECT_PREFIX) :]


def parquet_relation(files: Sequence[str]) -> str:
    """`read_parquet` over an explicit file list, with each row's file name."""
    listed = ", ".join(quote_literal(f) for f in files)
    return (
        f"read_parquet([{listed}], filename = true, hive_partitioning = false, "
        "union_by_name = true)"
    )


def pass_sql(conditions: Sequence[str], relation: str) -> str:
    """One pass evaluating every condition; one row per event that any of them matches.

    Columns: HIT_COLUMNS, `lake_file` (the Parquet file name), `r0` … `rN` (booleans).
    """
    if not conditions:
        raise ValueError("a pass needs at least one rule")
    flags = ",\n    ".join(f"coalesce(({c}), false) AS r{i}" for i, c in enumerate(conditions))
    columns = ", ".join(quote_identifier(c) for c in HIT_COLUMNS)
    matched = " OR ".join(f"r{i}" for i in range(len(conditions)))
    return (
        f"SELECT * FROM (\n  SELECT {columns}, filename AS lake_file,\n    {flags}\n"
        f"  FROM {relation}\n) WHERE {matched}"
    )


def principal_sql() -> tuple[str, str]:
    """SQL for a detection hit's group field name and value (NULL when it has none)."""
    name = "CASE " + " ".join(
        f"WHEN {quote_identifier(c)} IS NOT NULL THEN {quote_literal(c)}" for c in PRINCIPAL
    ) + " END"
    value = "coalesce(" + ", ".join(quote_identifier(c) for c in PRINCIPAL) + ")"
    return name, value


def detection_alerts_sql(hits: str, index: int) -> str:
    """Rule `index`'s hits in table `hits`, as one row per group key and UTC day."""
    name, value = principal_sql()
    return (
        f"SELECT {name} AS group_field, {value} AS group_value, "
        "min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS event_count, "
        "list(struct_pack(event_id, ts, source, source_file, source_offset, lake_file) "
        "ORDER BY ts, event_id) AS events "
        f"FROM {hits} WHERE r{index} "
        "GROUP BY 1, 2, date_trunc('day', ts) ORDER BY first_ts"
    )


def correlation_group(compiled: CompiledRule) -> list[str]:
    """The group-by column names a correlation rule's output carries."""
    return [str(name) for name in getattr(compiled.loaded.rule, "group_by", None) or []]


def correlation_timespan(compiled: CompiledRule) -> int:
    """A correlation's timespan in seconds (how far a scan must look back)."""
    timespan = getattr(compiled.loaded.rule, "timespan", None)
    return int(timespan.seconds) if timespan is not None else 0
