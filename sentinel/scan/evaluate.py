"""Run a group of compiled rules over a set of lake files and build their alerts.

Detection rules: one pass per source over that source's files (`detect.engine.pass_sql`),
into a small temporary table of hits, from which each rule's alerts are grouped. Each
file is read once however many rules read it.

Correlation rules: their own window query over an `events` view restricted to the
rule's sources and to `[min ts of the new events - timespan, max ts]` (date partitions
listed, `ts` pushed down to row groups). Only bursts that reach into the new events'
time range are kept; bursts that lie wholly before it were reported by an earlier scan.
A burst's events are linked in one join over the same view for all bursts, at most
`MAX_EVENTS_PER_ALERT` each (capped in SQL), and brought into Python one burst at a time:
a burst can hold a key's whole month of traffic, and memory must not grow with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from sentinel.detect.compiler import CompiledRule
from sentinel.detect.engine import (
    correlation_group,
    correlation_timespan,
    detection_alerts_sql,
    detection_condition,
    parquet_relation,
    pass_sql,
)
from sentinel.detect.pipeline import Taxonomy
from sentinel.exceptions import SentinelError
from sentinel.scan.lakefiles import lookback_files, relative_lake_file
from sentinel.store.alerts import AlertRecord, alert_id_for
from sentinel.store.incidents import Alert, AlertEvent
from sentinel.workspace import Workspace

if TYPE_CHECKING:
    from sentinel.scan.runner import RuleStat

MAX_EVENTS_PER_ALERT = 10_000
"""Event links stored per alert; `event_count` stays the true count."""


class ScanError(SentinelError):
    """A rule's query failed while scanning (the lake changed, DuckDB ran out of memory)."""


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _run(duck: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    try:
        return duck.execute(sql, params or [])
    except duckdb.Error as exc:
        message = " ".join(str(exc).split())
        raise ScanError(f"scan query failed: {message}", title="Scan failed") from exc


def evaluate(
    ws: Workspace,
    duck: duckdb.DuckDBPyConnection,
    rules: list[CompiledRule],
    taxonomy: Taxonomy,
    files: dict[str, list[str]],
    *,
    since: datetime | None,
    stats: dict[str, RuleStat],
    opened: set[str],
    step: Callable[[int], None],
) -> dict[str, list[AlertRecord]]:
    """Every rule's alerts over `files` (source -> Parquet paths)."""
    results: dict[str, list[AlertRecord]] = {rule.rule_id: [] for rule in rules}
    detections = [r for r in rules if r.kind == "detection"]
    for source, paths in sorted(files.items()):
        reading = [r for r in detections if source in r.loaded.sources_in(taxonomy)]
        if reading and paths:
            _detection_pass(ws, duck, source, paths, reading, since, stats, opened, results)
    step(len(detections))
    for rule in rules:
        if rule.kind != "detection":
            sources = rule.loaded.sources_in(taxonomy)
            new = [p for s in sources for p in files.get(s, [])]
            if new:
                started = time.monotonic()
                results[rule.rule_id] = _correlation(ws, duck, rule, sources, new, since, opened)
                stat = stats[rule.rule_id]
                stat.seconds += time.monotonic() - started
                stat.matches += sum(r.alert.event_count for r in results[rule.rule_id])
                stat.mark_memory()
            step(1)
    return results


def _rows(duck: duckdb.DuckDBPyConnection, paths: list[str]) -> int:
    row = _run(
        duck, f"SELECT sum(num_rows) FROM parquet_file_metadata({_list(paths)})"
    ).fetchone()
    return int(row[0] or 0)


def _list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _detection_pass(
    ws: Workspace,
    duck: duckdb.DuckDBPyConnection,
    source: str,
    paths: list[str],
    rules: list[CompiledRule],
    since: datetime | None,
    stats: dict[str, RuleStat],
    opened: set[str],
    results: dict[str, list[AlertRecord]],
) -> None:
    started = time.monotonic()
    relation = parquet_relation(paths)
    if since is not None:
        relation = f"(SELECT * FROM {relation} WHERE ts >= '{since.isoformat()}'::TIMESTAMPTZ)"
    conditions = [detection_condition(rule) for rule in rules]
    _run(duck, "CREATE OR REPLACE TEMP TABLE hits AS " + pass_sql(conditions, relation))
    queried = time.monotonic()
    rows = _rows(duck, paths)
    opened.update(paths)
    per_rule: list[tuple[CompiledRule, list[AlertRecord], int]] = []
    for index, rule in enumerate(rules):
        records, matches = _detection_alerts(ws, duck, rule, index)
        per_rule.append((rule, records, matches))
    seconds = time.monotonic() - started
    for rule, records, matches in per_rule:
        results[rule.rule_id].extend(records)
        stat = stats[rule.rule_id]
        stat.seconds += seconds
        stat.rows_read += rows
        stat.files_read += len(paths)
        stat.matches += matches
        stat.mark_memory()
        stat.shared = (
            f"pass over {source} ({len(rules)} rules; the query {queried - started:.2f} s, "
            f"alerts from its hits {seconds - (queried - started):.2f} s)"
        )
    _run(duck, "DROP TABLE hits")


def _detection_alerts(
    ws: Workspace, duck: duckdb.DuckDBPyConnection, rule: CompiledRule, index: int
) -> tuple[list[AlertRecord], int]:
    records = []
    matches = 0
    for field_name, value, first, last, count, events in _run(
        duck, detection_alerts_sql("hits", index)
    ).fetchall():
        matches += count
        group_fields = {field_name: value} if field_name else {}
        group_key = f"{field_name}={value}" if field_name else ""
        records.append(
            _record(ws, rule, group_key, group_fields, first, last, count, events)
        )
    return records, matches


def _record(
    ws: Workspace,
    rule: CompiledRule,
    group_key: str,
    group_fields: dict[str, Any],
    first: datetime,
    last: datetime,
    count: int,
    events: list[dict[str, Any]],
    linked_total: int | None = None,
) -> AlertRecord:
    """`events` in (ts, event_id) order; `linked_total` their number before a cap in SQL."""
    relative: dict[str, str] = {}  # an alert's events share a few lake files
    linked = tuple(
        AlertEvent(
            e["event_id"], _iso(e["ts"]), e["source"], e["source_file"], e["source_offset"],
            relative.get(e["lake_file"])
            or relative.setdefault(e["lake_file"], relative_lake_file(e["lake_file"], ws)),
        )
        for e in events[:MAX_EVENTS_PER_ALERT]
    )
    first_ts = _iso(first)
    alert = Alert(
        alert_id=alert_id_for(rule.rule_id, group_key, linked[0].event_id if linked else "",
                              first_ts),
        rule_id=rule.rule_id, rule_title=rule.title, level=rule.level or "medium",
        group_key=group_key, first_ts=first_ts, last_ts=_iso(last), event_count=int(count),
        tags=tuple(rule.loaded.tags), events=linked,
    )
    total = len(events) if linked_total is None else linked_total
    detail = {"events_truncated": True} if total > MAX_EVENTS_PER_ALERT else {}
    return AlertRecord(alert, rule.kind, group_fields, detail)


def _correlation(
    ws: Workspace,
    duck: duckdb.DuckDBPyConnection,
    rule: CompiledRule,
    sources: list[str],
    new_files: list[str],
    since: datetime | None,
    opened: set[str],
) -> list[AlertRecord]:
    low, high = _run(
        duck, f"SELECT min(ts), max(ts) FROM {parquet_relation(new_files)}"
    ).fetchone()
    if low is None:
        return []
    if since is not None:
        low = max(low, since)
    start = low - timedelta(seconds=correlation_timespan(rule))
    paths = lookback_files(ws, sources, start, high)
    opened.update(paths)
    _run(
        duck,
        f"CREATE OR REPLACE TEMP VIEW events AS SELECT * FROM {parquet_relation(paths)} "
        f"WHERE ts BETWEEN '{start.isoformat()}'::TIMESTAMPTZ "
        f"AND '{high.isoformat()}'::TIMESTAMPTZ",
    )
    group = correlation_group(rule)
    # The bursts go to a table and are linked to their events in one join over the lookback
    # (one scan, however many bursts), capped in SQL at MAX_EVENTS_PER_ALERT per burst and
    # fetched one burst at a time (a burst can span a key's whole month of traffic).
    _run(
        duck,
        "CREATE OR REPLACE TEMP TABLE correlation_bursts AS SELECT row_number() OVER "
        f"(ORDER BY window_start) AS burst, * FROM ({rule.sql}) WHERE window_end >= ?::TIMESTAMPTZ",
        [low.isoformat()],
    )
    rows = _run(duck, "SELECT * EXCLUDE (event_ids) FROM correlation_bursts ORDER BY burst")
    columns = [d[0] for d in rows.description]
    bursts = [dict(zip(columns, row, strict=True)) for row in rows.fetchall()]
    if bursts:
        _run(
            duck,
            "CREATE OR REPLACE TEMP TABLE correlation_links AS SELECT * FROM (SELECT *, "
            "row_number() OVER (PARTITION BY burst ORDER BY ts, event_id) AS n, "
            "count(*) OVER (PARTITION BY burst) AS linked "
            "FROM (SELECT burst, unnest(event_ids) AS event_id FROM correlation_bursts) "
            "JOIN (SELECT event_id, ts, source, source_file, source_offset, filename AS lake_file "
            f"FROM events) USING (event_id)) WHERE n <= {MAX_EVENTS_PER_ALERT}",
        )
    records = []
    for item in bursts:
        fields = {name: item.get(name) for name in group}
        found = _run(
            duck,
            "SELECT event_id, ts, source, source_file, source_offset, lake_file, linked "
            "FROM correlation_links WHERE burst = ? ORDER BY n",
            [item["burst"]],
        ).fetchall()
        names = ("event_id", "ts", "source", "source_file", "source_offset", "lake_file")
        events = [dict(zip(names, row[:6], strict=True)) for row in found]
        group_key = ", ".join(f"{k}={v}" for k, v in fields.items())
        records.append(
            _record(ws, rule, group_key, fields, item["window_start"], item["window_end"],
                    item["event_count"], events, found[0][6] if found else 0)
        )
    if bursts:
        _run(duck, "DROP TABLE correlation_links")
    _run(duck, "DROP TABLE correlation_bursts")
    _run(duck, "DROP VIEW events")
    return records
