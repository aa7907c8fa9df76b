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
The regexes of all the pass's rules on one text column share one RE2 scan of it
(`detect.folding.share_regex_scans`).
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
from sentinel.detect.folding import share_regex_scans

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
    conditions, prefilters = share_regex_scans(conditions)
    if prefilters:  # one RE2 scan per text column (`detect.folding.share_regex_scans`)
        computed = ", ".join(f"{sql} AS {alias}" for alias, sql in prefilters)
        relation = f"(SELECT *, {computed} FROM {relation})"
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


def numbered_hits_sql(hits: str, rules: int) -> str:
    """Every rule's hits of a pass, one row per (rule, hit), numbered by alert.

    Columns: `rule` (the index of its `rN` flag), HIT_COLUMNS, `lake_file`, `group_field`,
    `group_value`, `alert_no` (one number per rule, group key and UTC day: an alert) and `n`
    (the hit's place in its alert, in (ts, event_id) order, from 1).
    """
    name, value = principal_sql()
    columns = ", ".join(quote_identifier(c) for c in (*PROVENANCE, "lake_file"))
    each = " UNION ALL ".join(
        f"SELECT {i} AS rule, {columns}, {name} AS group_field, {value} AS group_value "
        f"FROM {hits} WHERE r{i}"
        for i in range(rules)
    )
    alert = "rule, group_field, group_value, date_trunc('day', ts)"
    return (
        f"SELECT *, dense_rank() OVER (ORDER BY {alert}) AS alert_no, "
        f"row_number() OVER (PARTITION BY {alert} ORDER BY ts, event_id) AS n FROM ({each})"
    )


def alert_groups_sql(numbered: str) -> str:
    """One row per alert of a `numbered_hits_sql` table, by rule and first event time:
    alert_no, rule, group_field, group_value, first_ts, last_ts, event_count, first_event."""
    return (
        "SELECT alert_no, any_value(rule), any_value(group_field), any_value(group_value), "
        "min(ts) AS first_ts, max(ts), count(*), any_value(event_id) FILTER (WHERE n = 1) "
        f"FROM {numbered} GROUP BY alert_no ORDER BY any_value(rule), first_ts, alert_no"
    )


def iso_sql(ts: str) -> str:
    """A UTC timestamp as text exactly as Python's `datetime.isoformat()` writes it (the
    fraction only when there is one), so links written from SQL and from Python agree."""
    return (
        f"CASE WHEN epoch_us({ts}) % 1000000 = 0 "
        f"THEN strftime({ts}, '%Y-%m-%dT%H:%M:%S+00:00') "
        f"ELSE strftime({ts}, '%Y-%m-%dT%H:%M:%S.%f+00:00') END"
    )


def links_sql(numbered: str, numbers: str, cap: int) -> str:
    """`alert_events` rows (`store.alerts.LINK_COLUMNS`, after `rule_id`) of the alerts in
    table `numbers` (alert_no, alert_id, rule_id), the first `cap` events of each.

    `$lake` is the lake directory with a trailing slash: lake files are stored relative
    to it. A file outside it (never written by sentinel) keeps its full path.
    """
    relative = (
        "CASE WHEN starts_with(h.lake_file, $lake) "
        "THEN h.lake_file[length($lake) + 1:] ELSE h.lake_file END"
    )
    return (
        f"SELECT m.rule_id, m.alert_id, h.event_id, {iso_sql('h.ts')} AS ts, h.source, "
        f"h.source_file, h.source_offset, {relative} AS lake_file, "
        "regexp_replace(regexp_extract(h.lake_file, '[^/]*$'), '\\.parquet$', '') AS batch_id "
        f"FROM {numbered} AS h JOIN {numbers} AS m USING (alert_no) WHERE h.n <= {int(cap)}"
    )


def correlation_group(compiled: CompiledRule) -> list[str]:
    """The group-by column names a correlation rule's output carries."""
    return [str(name) for name in getattr(compiled.loaded.rule, "group_by", None) or []]


def correlation_timespan(compiled: CompiledRule) -> int:
    """A correlation's timespan in seconds (how far a scan must look back)."""
    timespan = getattr(compiled.loaded.rule, "timespan", None)
    return int(timespan.seconds) if timespan is not None else 0
