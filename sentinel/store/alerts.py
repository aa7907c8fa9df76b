"""Alerts: what a scan found, one row per rule hit, with every event's lake provenance.

Tables (migrations 3 and 8 in `sentinel.store.db`):

    scans           one row per `sentinel scan`: when, up to which batch, how many alerts
    alerts          rule id/title/kind/level/tags, group key (+ its fields as JSON), first
                    and last event time, event count, the scan that found it; keyed by
                    `alert_ref`, given in recording order
    alert_events    the events behind an alert: event id, ts, source, source file and
                    offset, the lake file (relative to `lake/events/`) and its batch id; a
                    view of the compact `alert_links` (`sentinel.store.links`)
    rule_watermarks per rule, the newest committed batch (`batches.rowid`) it has run over

Invariants:
- An alert's id is derived from what it is (rule, group key, first event and time), so a
  rescan or a second scan racing this one computes the same id and `INSERT OR IGNORE`
  keeps one row: an alert is never doubled.
- A rule's alerts and its watermark are committed in one `transaction`; a watermark only
  moves forward (a scan that finds it already past its own range records nothing).
- Alert rows are the scan's output and are never updated, but for `pending_intake`
  (migration 7): 1 from the commit until the incident intake has linked the alert, which
  clears it in the transaction that links it. Every scan takes the pending alerts first
  (`pending`), so an intake that failed after the alerts were committed loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sentinel.store.db import transaction
from sentinel.store.incidents import Alert, AlertEvent
from sentinel.store.links import LinkFeed, insert_feed, insert_links

LEVELS = ("informational", "low", "medium", "high", "critical")
LEVEL_ALIASES = {"info": "informational"}


def level_rank(level: str) -> int:
    """Position in LEVELS (unknown or empty levels rank lowest)."""
    level = LEVEL_ALIASES.get(level, level)
    return LEVELS.index(level) if level in LEVELS else -1


@dataclass(frozen=True)
class AlertRecord:
    """An alert as a scan records it: the incident-facing `Alert` plus scan-side detail."""

    alert: Alert
    kind: str = "detection"
    group_fields: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def alert_id_for(rule_id: str, group_key: str, first_event_id: str, first_ts: str) -> str:
    """The stable id of an alert (see the module invariants)."""
    text = "\x1f".join((rule_id, group_key, first_event_id, first_ts))
    return "A" + hashlib.sha256(text.encode()).hexdigest()[:15]


def batch_of(lake_file: str | None) -> str | None:
    """The batch id in a lake file name (`source=s/date=d/<batch>.parquet`)."""
    if not lake_file:
        return None
    return lake_file.rsplit("/", 1)[-1].removesuffix(".parquet")


def now() -> str:
    return datetime.now(UTC).isoformat()


def begin_scan(con: sqlite3.Connection, scan_id: str) -> None:
    with transaction(con):
        con.execute("INSERT INTO scans (scan_id, started_at) VALUES (?, ?)", (scan_id, now()))


def finish_scan(
    con: sqlite3.Connection,
    scan_id: str,
    *,
    batch_seq: int,
    rules: int,
    alerts: int,
    stats: dict[str, Any],
) -> None:
    with transaction(con):
        con.execute(
            "UPDATE scans SET finished_at = ?, batch_seq = ?, rules = ?, alerts = ?, stats = ? "
            "WHERE scan_id = ?",
            (now(), batch_seq, rules, alerts, json.dumps(stats), scan_id),
        )


def watermarks(con: sqlite3.Connection) -> dict[str, tuple[int, str]]:
    """Per rule id: (batch seq it has run up to, hash of the SQL it ran)."""
    rows = con.execute("SELECT rule_id, batch_seq, rule_hash FROM rule_watermarks")
    return {rule_id: (seq, rule_hash) for rule_id, seq, rule_hash in rows}


def commit_rule(
    con: sqlite3.Connection,
    scan_id: str,
    rule_id: str,
    records: Sequence[AlertRecord],
    *,
    batch_seq: int | None,
    rule_hash: str = "",
    links: Iterable[Sequence[Any]] | LinkFeed = (),
) -> list[Alert]:
    """Record one rule's alerts and move its watermark to `batch_seq`, atomically.

    Returns the alerts that are new (not recorded by an earlier or concurrent scan).
    `batch_seq=None` records alerts without touching the watermark (a `--since` rescan).
    An alert's events come from `alert.events`, or, set-based, from `links`: rows in
    `LINK_COLUMNS` order, or a `LinkFeed` (a scan's, kept in DuckDB), of `records`'
    alerts only; links of alerts that are not new are skipped, so a repeat never grows an
    alert recorded earlier.
    """
    created = now()
    with transaction(con):
        if batch_seq is not None:
            row = con.execute(
                "SELECT batch_seq FROM rule_watermarks WHERE rule_id = ?", (rule_id,)
            ).fetchone()
            if row is not None and row[0] >= batch_seq and records:
                return []  # another scan got here first with the same range
        new, refs = _insert_alerts(con, scan_id, records, created)
        given = [
            (alert.alert_id, e.event_id, e.ts, e.source, e.source_file, e.source_offset,
             e.lake_file, batch_of(e.lake_file))
            for alert in new for e in alert.events
        ]
        if given:
            insert_links(con, given, refs)
        if isinstance(links, LinkFeed):
            insert_feed(con, refs, links)
        elif refs:
            insert_links(con, links, refs)
        if batch_seq is not None:
            con.execute(
                "INSERT INTO rule_watermarks (rule_id, batch_seq, rule_hash, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(rule_id) DO UPDATE SET "
                "batch_seq = max(batch_seq, excluded.batch_seq), rule_hash = excluded.rule_hash, "
                "updated_at = excluded.updated_at",
                (rule_id, batch_seq, rule_hash, created),
            )
    return new


# `json.dumps` with an option builds an encoder per call; alerts come by the thousand.
_JSON = json.JSONEncoder(default=str)


def _insert_alerts(
    con: sqlite3.Connection, scan_id: str, records: Sequence[AlertRecord], created: str
) -> tuple[list[Alert], dict[str, int]]:
    """Insert the alerts not stored yet, in order, with new keys (`alert_ref`, after the
    newest: the caller holds the write lock); the new alerts and their keys."""
    if not records:
        return [], {}
    known = {row[0] for row in con.execute(
        "SELECT alert_id FROM alerts WHERE alert_id IN (SELECT value FROM json_each(?))",
        (json.dumps([r.alert.alert_id for r in records]),),
    )}
    ref = int(con.execute("SELECT coalesce(max(alert_ref), 0) FROM alerts").fetchone()[0])
    new: list[Alert] = []
    refs: dict[str, int] = {}
    rows: list[tuple[Any, ...]] = []
    tags: dict[tuple[str, ...], str] = {}  # a rule's alerts share one tag list
    for record in records:
        alert = record.alert
        if alert.alert_id in known or alert.alert_id in refs:
            continue
        ref += 1
        refs[alert.alert_id] = ref
        new.append(alert)
        if alert.tags not in tags:
            tags[alert.tags] = json.dumps(list(alert.tags))
        rows.append((
            ref, alert.alert_id, alert.rule_id, alert.rule_title, record.kind, alert.level,
            tags[alert.tags], alert.group_key, _JSON.encode(record.group_fields),
            alert.first_ts, alert.last_ts, alert.event_count, scan_id, created,
            _JSON.encode(record.detail),
        ))
    con.executemany(
        "INSERT INTO alerts (alert_ref, alert_id, rule_id, rule_title, rule_kind, level, tags, "
        "group_key, group_fields, first_ts, last_ts, event_count, scan_id, created_at, detail, "
        "pending_intake) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        rows,
    )
    return new, refs


_ALERT_COLUMNS = (
    "alert_id", "rule_id", "rule_title", "rule_kind", "level", "tags", "group_key",
    "group_fields", "first_ts", "last_ts", "event_count", "scan_id", "created_at", "detail",
)
_JSON_COLUMNS = {"tags", "group_fields", "detail"}


def _row(row: Iterable[Any]) -> dict[str, Any]:
    item = dict(zip(_ALERT_COLUMNS, row, strict=True))
    for name in _JSON_COLUMNS:
        item[name] = json.loads(item[name])
    return item


def list_alerts(
    con: sqlite3.Connection,
    *,
    scan_id: str | None = None,
    rule_id: str | None = None,
    min_level: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Alerts, newest first, optionally of one scan or rule and at or above a level."""
    where: list[str] = []
    params: list[Any] = []
    if scan_id is not None:
        where.append("scan_id = ?")
        params.append(scan_id)
    if rule_id is not None:
        where.append("rule_id = ?")
        params.append(rule_id)
    if min_level is not None:
        levels = [lvl for lvl in LEVELS if level_rank(lvl) >= level_rank(min_level)]
        where.append(f"level IN ({', '.join('?' * len(levels))})")
        params.extend(levels)
    sql = f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY first_ts DESC, alert_id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [_row(row) for row in con.execute(sql, params)]


def get(con: sqlite3.Connection, alert_id: str) -> dict[str, Any] | None:
    row = con.execute(
        f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts WHERE alert_id = ?", (alert_id,)
    ).fetchone()
    return _row(row) if row else None


def events_of(con: sqlite3.Connection, alert_id: str) -> list[AlertEvent]:
    """The events behind an alert, oldest first, with their lake provenance."""
    rows = con.execute(
        "SELECT event_id, ts, source, source_file, source_offset, lake_file FROM alert_events "
        "WHERE alert_id = ? ORDER BY ts, event_id",
        (alert_id,),
    )
    return [AlertEvent(*row) for row in rows]


def pending(con: sqlite3.Connection) -> list[Alert]:
    """The alerts the incident intake has not taken yet, in the order they were recorded,
    without their events (the intake links a recorded alert's events by reference)."""
    rows = con.execute(
        "SELECT alert_id, rule_id, rule_title, level, group_key, first_ts, last_ts, "
        "event_count, tags FROM alerts WHERE pending_intake = 1 ORDER BY rowid"
    ).fetchall()
    # A rule's alerts share one tag list: each distinct one parsed once.
    tags = {text: tuple(json.loads(text)) for text in {r[8] for r in rows}}
    return [
        Alert(alert_id=r[0], rule_id=r[1], rule_title=r[2], level=r[3], group_key=r[4],
              first_ts=r[5], last_ts=r[6], event_count=r[7], tags=tags[r[8]])
        for r in rows
    ]


def mark_taken(con: sqlite3.Connection, alert_ids: Sequence[str]) -> None:
    """Clear `pending_intake` (inside the transaction that links the alerts)."""
    con.execute(
        "UPDATE alerts SET pending_intake = 0 WHERE pending_intake = 1 "
        "AND alert_id IN (SELECT value FROM json_each(?))", (json.dumps(list(alert_ids)),),
    )


def as_alert(con: sqlite3.Connection, alert_id: str) -> Alert | None:
    """A stored alert as the `Alert` incidents are opened from."""
    item = get(con, alert_id)
    if item is None:
        return None
    return Alert(
        alert_id=item["alert_id"], rule_id=item["rule_id"], rule_title=item["rule_title"],
        level=item["level"], group_key=item["group_key"], first_ts=item["first_ts"],
        last_ts=item["last_ts"], event_count=item["event_count"], tags=tuple(item["tags"]),
        events=tuple(events_of(con, alert_id)),
    )
