"""Run a group of compiled rules over a set of lake files and build their alerts.

Detection rules: one pass per source over that source's files (`detect.engine.pass_sql`),
into a small temporary table of hits, from which every rule's alerts are grouped in one
hash aggregate (`alert_groups_sql`). Each file is read once however many rules read it.

Correlation rules: `sentinel.scan.correlate` (the new files plus the rule's state), whose
bursts' events join LINKS_TABLE the same way, at most `MAX_EVENTS_PER_ALERT` each.

Recording is set-based: Python builds one object per alert, never per event. The events
of every alert (at most `MAX_EVENTS_PER_ALERT` each; `event_count` stays the true count)
go to a DuckDB table, `LINKS_TABLE`, as `alert_events` rows, and `links_of` hands a
rule's rows to `store.alerts.commit_rule` as a `store.links.LinkFeed`: the store's keys
for alerts and lake files are joined in DuckDB, and the compact rows stream in Arrow
batches, in key order. A burst can hold a key's whole month of traffic, and an equality
rule a third of the traffic: memory must not grow with them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from sentinel.detect.compiler import CompiledRule
from sentinel.detect.engine import (
    alert_groups_sql,
    detection_condition,
    links_sql,
    numbered_hits_sql,
    parquet_relation,
    pass_sql,
    rule_hits_sql,
)
from sentinel.detect.pipeline import Taxonomy
from sentinel.exceptions import SentinelError
from sentinel.scan.report import RuleStat
from sentinel.store.alerts import AlertRecord, alert_id_for
from sentinel.store.incidents import Alert
from sentinel.store.links import LINK_COLUMNS, FileKey
from sentinel.workspace import Workspace

MAX_EVENTS_PER_ALERT = 10_000
"""Event links stored per alert; `event_count` stays the true count."""


class ScanError(SentinelError):
    """A rule's query failed while scanning (the lake changed, DuckDB ran out of memory)."""


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _run(
    duck: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | dict[str, Any] | None = None
) -> Any:
    try:
        return duck.execute(sql, params or [])
    except duckdb.Error as exc:
        raise _failed(exc) from exc


def _arrow(duck: duckdb.DuckDBPyConnection, sql: str, order: str | None = None) -> pa.Table:
    """The rows of `sql` (sorted by the expression `order`) as an Arrow table; a failure
    is a `ScanError`, as `_run`'s."""
    try:
        relation = duck.sql(sql)
        return (relation.order(order) if order else relation).to_arrow_table()
    except duckdb.Error as exc:
        raise _failed(exc) from exc


def _failed(exc: duckdb.Error) -> ScanError:
    return ScanError(f"scan query failed: {' '.join(str(exc).split())}", title="Scan failed")


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
    correlate: Callable[[CompiledRule, list[str], list[str]], list[AlertRecord]],
) -> dict[str, list[AlertRecord]]:
    """Every rule's alerts over `files` (source -> Parquet paths); their events are left in
    LINKS_TABLE (`links_of`). `correlate(rule, sources, new files)` runs a correlation
    (`sentinel.scan.correlate`)."""
    start_links(duck)
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
                results[rule.rule_id] = correlate(rule, sources, new)
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
    _run(duck, "CREATE OR REPLACE TEMP TABLE rule_hits AS " + rule_hits_sql("hits", len(rules)))
    _run(duck, "CREATE OR REPLACE TEMP TABLE rule_alerts AS " + alert_groups_sql("rule_hits"))
    matches = [0] * len(rules)
    numbers: list[tuple[int, AlertRecord]] = []
    for alert_no, index, field_name, value, _, first, last, count, first_event in _run(
        duck, "SELECT * FROM rule_alerts ORDER BY alert_no"
    ).fetchall():
        rule = rules[index]
        matches[index] += count
        group_fields = {field_name: value} if field_name else {}
        group_key = f"{field_name}={value}" if field_name else ""
        record = _record(rule, group_key, group_fields, first, last, count, first_event,
                         count, (source,))
        results[rule.rule_id].append(record)
        numbers.append((alert_no, record))
    if numbers:
        _run(duck, "CREATE OR REPLACE TEMP TABLE numbered_hits AS "
             + numbered_hits_sql("rule_hits", "rule_alerts", MAX_EVENTS_PER_ALERT))
        _keep_links(duck, ws, "numbered_hits", numbers)
        _run(duck, "DROP TABLE numbered_hits")
    for table in ("rule_alerts", "rule_hits", "hits"):
        _run(duck, f"DROP TABLE {table}")
    seconds = time.monotonic() - started
    for index, rule in enumerate(rules):
        stat = stats[rule.rule_id]
        stat.seconds += seconds
        stat.rows_read += rows
        stat.files_read += len(paths)
        stat.matches += matches[index]
        stat.mark_memory()
        stat.shared = (
            f"pass over {source} ({len(rules)} rules; the query {queried - started:.2f} s, "
            f"alerts from its hits {seconds - (queried - started):.2f} s)"
        )


LINKS_TABLE = "scan_links"
"""The events of every alert an `evaluate` call built (`rule_id` + `LINK_COLUMNS`), kept in
DuckDB until each rule commits them: `links_of` streams them to the store, and Python
never holds an object per event."""


def _keep_links(
    duck: duckdb.DuckDBPyConnection,
    ws: Workspace,
    numbered: str,
    numbers: list[tuple[int, AlertRecord]],
) -> None:
    """Append to LINKS_TABLE the events of each alert of `numbered` (by `alert_no`)."""
    if not numbers:
        return
    table = pa.table({
        "alert_no": pa.array([no for no, _ in numbers], pa.int64()),
        "alert_id": [r.alert.alert_id for _, r in numbers],
        "rule_id": [r.alert.rule_id for _, r in numbers],
    })
    duck.register("alert_numbers", table)
    try:
        select = links_sql(numbered, "alert_numbers", MAX_EVENTS_PER_ALERT)
        _run(duck, f"INSERT INTO {LINKS_TABLE} {select}", {"lake": str(ws.lake_dir) + "/"})
    finally:
        duck.unregister("alert_numbers")


def start_links(duck: duckdb.DuckDBPyConnection) -> None:
    """An empty LINKS_TABLE for the next `evaluate` call."""
    columns = ", ".join(
        f"{c} {'BIGINT' if c == 'source_offset' else 'VARCHAR'}"
        for c in ("rule_id", *LINK_COLUMNS)
    )
    _run(duck, f"CREATE OR REPLACE TEMP TABLE {LINKS_TABLE} ({columns})")


def drop_links(duck: duckdb.DuckDBPyConnection) -> None:
    """Forget this scan's links on a connection kept for the next scan (the daemon's)."""
    duck.execute("DROP TABLE IF EXISTS scan_links")  # LINKS_TABLE, a constant


def links_of(duck: duckdb.DuckDBPyConnection, rule_id: str) -> RuleLinks:
    """A rule's links, for `store.alerts.commit_rule` (a `store.links.LinkFeed`)."""
    return RuleLinks(duck, rule_id)


class RuleLinks:
    """A rule's links in LINKS_TABLE, streamed from DuckDB in Arrow batches: compact for
    the store (`compact`: keys joined in DuckDB), or as `alert_events` rows (iterating)."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, rule_id: str) -> None:
        self.duck = duck
        self.rule_id = rule_id

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        yield from _stream(self.duck, (
            f"SELECT {', '.join(LINK_COLUMNS)} FROM {LINKS_TABLE} WHERE rule_id = $rule "
            "ORDER BY alert_id, event_id"), {"rule": self.rule_id})

    def files(self) -> list[FileKey]:
        rows = _run(self.duck, f"SELECT DISTINCT {', '.join(_FILE_COLUMNS)} FROM {LINKS_TABLE} "
                    "WHERE rule_id = ?", [self.rule_id]).fetchall()
        return [tuple(row) for row in rows]  # type: ignore[misc]

    def compact(
        self, alerts: Mapping[str, int], files: Mapping[FileKey, int]
    ) -> Iterator[tuple[Any, ...]]:
        keys = pa.table({"alert_id": list(alerts), "alert_ref": pa.array(alerts.values(),
                                                                          pa.int64())})
        refs = pa.table({
            **{c: [f[i] for f in files] for i, c in enumerate(_FILE_COLUMNS)},
            "file_ref": pa.array(files.values(), pa.int64()),
        })
        same = " AND ".join(f"f.{c} IS NOT DISTINCT FROM l.{c}" for c in _FILE_COLUMNS)
        self.duck.register("link_alert_refs", keys)
        self.duck.register("link_file_refs", refs)
        try:
            yield from _stream(self.duck, (
                "SELECT k.alert_ref, l.event_id, l.ts, l.source_offset, f.file_ref "
                f"FROM {LINKS_TABLE} AS l JOIN link_alert_refs AS k USING (alert_id) "
                f"JOIN link_file_refs AS f ON {same} WHERE l.rule_id = $rule "
                "ORDER BY k.alert_ref, l.event_id"), {"rule": self.rule_id})
        finally:
            self.duck.unregister("link_alert_refs")
            self.duck.unregister("link_file_refs")


_FILE_COLUMNS = ("source", "source_file", "lake_file", "batch_id")


def _stream(
    duck: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any]
) -> Iterator[tuple[Any, ...]]:
    try:  # a relation's reader streams; a DB-API result's would copy the rows first
        reader = duck.sql(query, params=params).to_arrow_reader(50_000)
    except duckdb.Error as exc:
        raise ScanError(f"scan query failed: {' '.join(str(exc).split())}",
                        title="Scan failed") from exc
    for batch in reader:
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def _record(
    rule: CompiledRule,
    group_key: str,
    group_fields: dict[str, Any],
    first: datetime,
    last: datetime,
    count: int,
    first_event: str | None,
    linked: int,
    sources: tuple[str, ...],
) -> AlertRecord:
    """An alert whose events are kept in LINKS_TABLE (`first_event`: the first of them in
    (ts, event_id) order; `linked`: how many there are before the cap)."""
    first_ts = _iso(first)
    alert = Alert(
        alert_id=alert_id_for(rule.rule_id, group_key, first_event or "", first_ts),
        rule_id=rule.rule_id, rule_title=rule.title, level=rule.level or "medium",
        group_key=group_key, first_ts=first_ts, last_ts=_iso(last), event_count=int(count),
        tags=tuple(rule.loaded.tags), sources=sources,
    )
    detail = {"events_truncated": True} if linked > MAX_EVENTS_PER_ALERT else {}
    return AlertRecord(alert, rule.kind, group_fields, detail)
