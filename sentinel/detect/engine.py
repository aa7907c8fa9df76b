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


def rule_hits_sql(hits: str, rules: int) -> str:
    """Every rule's hits of a pass, one row per (rule, hit).

    Columns: `rule` (the index of its `rN` flag), PROVENANCE, `lake_file`, `group_field`,
    `group_value`, `day` (the hit's UTC day). A rule's alert is its hits of one group key
    and day.
    """
    name, value = principal_sql()
    columns = ", ".join(quote_identifier(c) for c in (*PROVENANCE, "lake_file"))
    return " UNION ALL ".join(
        f"SELECT {i} AS rule, {columns}, {name} AS group_field, {value} AS group_value, "
        f"date_trunc('day', ts) AS day FROM {hits} WHERE r{i}"
        for i in range(rules)
    )


_ALERT_KEY = ("rule", "group_field", "group_value", "day")


def alert_groups_sql(rule_hits: str) -> str:
    """One row per alert of a `rule_hits_sql` table, numbered in (rule, first event time)
    order: alert_no, rule, group_field, group_value, day, first_ts, last_ts, event_count,
    first_event (the first by (ts, event_id)).

    A hash aggregate: numbering every hit with a window over (rule, group, day) sorted the
    whole hit table, a third of a 300,000-hit pass's alert building.
    """
    key = ", ".join(_ALERT_KEY)
    return (
        f"SELECT row_number() OVER (ORDER BY rule, first_ts, group_field, group_value, day) "
        f"AS alert_no, * FROM (SELECT {key}, min(ts) AS first_ts, max(ts) AS last_ts, "
        f"count(*) AS event_count, arg_min(event_id, (ts, event_id)) AS first_event "
        f"FROM {rule_hits} GROUP BY {key})"
    )


def numbered_hits_sql(rule_hits: str, alerts: str, cap: int) -> str:
    """The hits of `rule_hits` with their alert's `alert_no` (from `alerts`, an
    `alert_groups_sql` table) and `n`: the hit's place in its alert in (ts, event_id)
    order for an alert of more than `cap` events, 1 for the others (all of which are
    linked: only the large alerts pay for the window)."""
    match = " AND ".join(f"h.{c} IS NOT DISTINCT FROM a.{c}" for c in _ALERT_KEY)
    joined = f"FROM {rule_hits} AS h JOIN {alerts} AS a ON {match}"
    return (
        f"SELECT h.*, a.alert_no, 1 AS n {joined} WHERE a.event_count <= {int(cap)} "
        f"UNION ALL SELECT h.*, a.alert_no, row_number() OVER (PARTITION BY a.alert_no "
        f"ORDER BY h.ts, h.event_id) AS n {joined} WHERE a.event_count > {int(cap)}"
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
    to it. A file outside it (never written by sentinel) keeps its full path. The relative
    path and the batch id are worked out once per distinct file and joined back (per
    link, the two regexes were ~0.3 of 0.7 s for a side scan's 297,000 links).
    """
    relative = (
        "CASE WHEN starts_with(lake_file, $lake) "
        "THEN lake_file[length($lake) + 1:] ELSE lake_file END"
    )
    batch = "regexp_replace(regexp_extract(lake_file, '[^/]*$'), '\\.parquet$', '')"
    return (
        f"WITH link_files AS (SELECT lake_file AS path, {relative} AS relative, "
        f"{batch} AS batch_id FROM (SELECT DISTINCT lake_file FROM {numbered})) "
        f"SELECT m.rule_id, m.alert_id, h.event_id, {iso_sql('h.ts')} AS ts, h.source, "
        "h.source_file, h.source_offset, f.relative AS lake_file, f.batch_id "
        f"FROM {numbered} AS h JOIN {numbers} AS m USING (alert_no) "
        "LEFT JOIN link_files AS f ON f.path IS NOT DISTINCT FROM h.lake_file "
        f"WHERE h.n <= {int(cap)}"
    )
