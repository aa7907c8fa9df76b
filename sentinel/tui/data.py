"""What the dashboard shows, read from the workspace without Textual.

SQLite reads open a connection per call (cheap, and never shared across threads). Lake
reads go through the app's one masked session (`sessions.SharedSession`), which a worker
holds under its lock; the screens only lay the results out.

Invariants:
- Reads only. Changes to an incident go through `sentinel.store.triage`, the same
  functions the CLI calls, so every action the TUI takes lands in the timeline.
- Text that came from a log is masked before a widget sees it: the session's views hold
  masked text (`sentinel.lake.privacy`), so no query here can read a clear value.
  Revealing is a separate, audited call (`reveal_event`) on a connection of its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sentinel.exceptions import SentinelError
from sentinel.respond.books import Playbooks as Playbooks  # parsed again only on change
from sentinel.store import audit
from sentinel.store import incidents as store
from sentinel.store.db import open_db
from sentinel.workspace import Workspace

if TYPE_CHECKING:  # DuckDB and the PII engine load when the first screen needs the lake
    import pyarrow as pa

    from sentinel.respond.playbook import Playbook
    from sentinel.tui.sessions import SharedSession


@contextmanager
def state(ws: Workspace) -> Iterator[sqlite3.Connection]:
    con = open_db(ws.state_db)
    try:
        yield con
    finally:
        con.close()


QueueVersion = tuple[int, int, str]


def queue_version(con: sqlite3.Connection, seen: QueueVersion | None) -> QueueVersion:
    """What the queue shows changed when this changes: (data_version, last audit entry,
    last incident update).

    `data_version` moves on any commit by another connection (the daemon commits a
    checkpoint every few seconds); only when it moved are the two cheap maxima read, so
    a busy daemon does not make the queue re-read 10,000 incidents. Every change to an
    incident (opened, alert added, triage, a playbook step) writes the timeline or the
    incident row.
    """
    version = int(con.execute("PRAGMA data_version").fetchone()[0])
    if seen is not None and seen[0] == version:
        return seen
    seq, updated = con.execute(
        "SELECT (SELECT coalesce(max(seq), 0) FROM audit), "
        "(SELECT coalesce(max(updated_at), '') FROM incidents)"
    ).fetchone()
    return version, int(seq), str(updated)


@dataclass(slots=True)
class QueueCase:
    """The columns of an incident the queue shows, sorts and filters on (read without the
    JSON columns of `store.Incident`: a third of the time at 10,000 incidents)."""

    incident_id: int
    title: str
    rule_id: str
    severity: str
    status: str
    assignee: str | None
    group_key: str
    first_seen: str
    alert_count: int
    event_count: int
    playbook: str | None
    created_at: str

    @property
    def is_open(self) -> bool:
        return self.status in store.OPEN_STATUSES


QUEUE_COLUMNS = ", ".join(QueueCase.__dataclass_fields__)


@dataclass(frozen=True)
class QueueRow:
    """One incident as the queue shows it."""

    incident: QueueCase
    deadline: datetime | None
    deadline_label: str

    @property
    def principal(self) -> str:
        return principal(self.incident.group_key)

    def age(self, now: datetime) -> timedelta:
        return now - store.parse_ts(self.incident.first_seen)

    def time_left(self, now: datetime) -> timedelta | None:
        return None if self.deadline is None else self.deadline - now


def principal(group_key: str) -> str:
    """The value part of a group key (`actor_key=laptop` → `laptop`), for a narrow column."""
    parts = [part.partition("=")[2] or part for part in group_key.split(",") if part]
    return ", ".join(parts) if parts else "—"


def queue(ws: Workspace) -> list[QueueRow]:
    """Every incident, newest first (merged-away ones left out), deadlines not looked up yet.

    The same rows as `store.list_incidents`, fewer columns.
    """
    with state(ws) as con:
        cursor = con.execute(
            f"SELECT {QUEUE_COLUMNS} FROM incidents WHERE merged_into IS NULL "
            "ORDER BY incident_id DESC"
        )
        return [QueueRow(QueueCase(*row), None, "") for row in cursor]


def with_deadlines(
    ws: Workspace, rows: list[QueueRow], books: dict[str, Playbook]
) -> list[QueueRow]:
    """`rows` with each open incident's nearest unmet deadline from its playbook."""
    from sentinel.respond import runner

    cases = [row.incident for row in rows if row.incident.is_open and row.incident.playbook]
    with state(ws) as con:
        states = runner.deadlines_of(con, books, cases)
    return [QueueRow(row.incident, *_nearest(states.get(row.incident.incident_id, [])))
            for row in rows]


def _nearest(states: list[Any]) -> tuple[datetime | None, str]:
    open_ones = [(d.due_at, d.label) for d in states if d.due_at is not None and not d.met]
    if not open_ones:
        return None, ""
    return min(open_ones, key=lambda item: item[0])


VENDOR_SLACK = timedelta(days=1)
"""Widens the links' time range: a link's ts is the event's, but a day costs little."""


def vendors(ws: Workspace, lake: SharedSession, incident_ids: list[int]) -> dict[int, str]:
    """The AI vendors each incident's events went to (`anthropic, openai`), from the lake.

    state.db links events by id, the vendor is in the lake: one DuckDB join of the
    links against the events, narrowed to the links' time range so a few new incidents
    read a few days' partitions, not the whole lake. An incident whose events are not
    in the lake (retention, a deleted file) is given no vendor.
    """
    if not incident_ids:
        return {}
    with state(ws) as con:  # the ids bound as one JSON list (the key's index finds them)
        links = con.execute(
            "SELECT incident_id, event_id, ts FROM incident_events WHERE ts IS NOT NULL "
            "AND incident_id IN (SELECT value FROM json_each(?))", (json.dumps(incident_ids),)
        ).fetchall()
    if not links:
        return {}
    times = [store.parse_ts(row[2]) for row in links]
    table = lake.query(
        "WITH links AS (SELECT unnest($incidents::BIGINT[]) AS incident_id, "
        "unnest($events::VARCHAR[]) AS event_id) "
        "SELECT l.incident_id, string_agg(DISTINCT e.vendor, ', ' ORDER BY e.vendor) AS vendor "
        "FROM links l JOIN events e ON e.event_id = l.event_id "
        "WHERE e.ts BETWEEN $first AND $last AND e.vendor IS NOT NULL GROUP BY 1",
        {"incidents": [row[0] for row in links], "events": [row[1] for row in links],
         "first": min(times) - VENDOR_SLACK, "last": max(times) + VENDOR_SLACK},
    )
    return dict(zip(table.column("incident_id").to_pylist(),
                    table.column("vendor").to_pylist(), strict=True))


def severity_counts(rows: list[QueueRow]) -> dict[str, int]:
    counts = dict.fromkeys(store.SEVERITIES, 0)
    for row in rows:
        if row.incident.is_open:
            counts[row.incident.severity] = counts.get(row.incident.severity, 0) + 1
    return counts


def incident(ws: Workspace, incident_id: int) -> store.Incident:
    with state(ws) as con:
        return store.get(con, incident_id)


def timeline(ws: Workspace, incident_id: int) -> list[audit.Entry]:
    with state(ws) as con:
        return audit.entries(con, [incident_id])


def related(ws: Workspace, case: store.Incident) -> list[store.Incident]:
    """Other incidents of the same principal (group key), newest first."""
    with state(ws) as con:
        return [
            other for other in store.list_incidents(con)
            if other.incident_id != case.incident_id and other.group_key == case.group_key
        ]


def ledger(ws: Workspace, lake: SharedSession, incident_id: int) -> pa.Table:
    from sentinel.store.ledger import exposure

    with state(ws) as con, lake.lock:
        return exposure(ws, con, incident_id, lake=lake.session().con)


EVENT_COLUMNS = (
    "ts", "event_id", "source", "action", "actor_user", "actor_key", "client_ip", "vendor",
    "model", "pii_types", "prompt_text",
)


def linked_events(
    ws: Workspace, lake: SharedSession, incident_id: int, limit: int = 500
) -> pa.Table:
    """The incident's events (masked), oldest first."""
    with state(ws) as con:
        ids = [r[0] for r in con.execute(
            "SELECT event_id FROM incident_events WHERE incident_id = ? ORDER BY ts LIMIT ?",
            (incident_id, limit),
        )]
    columns = ", ".join(EVENT_COLUMNS)
    return lake.query(
        f"SELECT {columns} FROM events WHERE event_id IN (SELECT unnest($ids::VARCHAR[])) "
        "ORDER BY ts", {"ids": ids},
    )


EVENT_TEXT_SQL = (
    "SELECT event_id, ts, source, actor_user, actor_key, client_ip, vendor, model, "
    "pii_types, prompt_text, response_text FROM events WHERE event_id = $id LIMIT 1"
)


def event_text(lake: SharedSession, event_id: str) -> dict[str, Any]:
    """One event's prompt, response and findings, masked."""
    table = lake.query(EVENT_TEXT_SQL, {"id": event_id})
    rows = table.to_pylist()
    if not rows:
        raise SentinelError(f"event {event_id} is not in the lake")
    return rows[0]


def reveal_event(ws: Workspace, incident_id: int, event_id: str, reason: str) -> dict[str, Any]:
    """One event unmasked: the reveal is recorded in the incident's timeline first."""
    if not reason.strip():
        raise SentinelError("a reveal needs a reason (it is written to the timeline)")
    from sentinel.store import triage

    with state(ws) as con:
        triage.record(
            con, incident_id, "evidence.revealed",
            {"event_id": event_id, "reason": triage.mask_free_text(reason.strip())},
        )
    from sentinel.lake.query import open_lake

    clear = open_lake(ws)  # unmasked, for this one event, after the timeline recorded why
    try:
        table = clear.sql(EVENT_TEXT_SQL, params={"id": event_id}).to_arrow_table()
    finally:
        clear.close()
    rows = table.to_pylist()
    return rows[0] if rows else {}


def activity(
    lake: SharedSession, case: store.Incident, hours: int = 48
) -> list[tuple[datetime, int, int]]:
    """Requests and PII findings per hour of the case's principal around the incident."""
    column, _, value = case.group_key.partition(",")[0].partition("=")
    if column not in ("actor_key", "actor_user", "client_ip", "actor_team") or not value:
        return []
    start = store.parse_ts(case.first_seen) - timedelta(hours=hours // 2)
    end = store.parse_ts(case.last_seen) + timedelta(hours=hours // 2)
    rows = lake.query(
        f"SELECT date_trunc('hour', ts) AS hour, count(*) AS n, sum(pii_count) AS pii "
        f"FROM events WHERE {column} = $value AND ts BETWEEN $start AND $end "
        "GROUP BY 1 ORDER BY 1",
        {"value": value, "start": start, "end": end},
    ).to_pylist()
    return [(row["hour"], int(row["n"]), int(row["pii"] or 0)) for row in rows]


def now() -> datetime:
    """The dashboard's one clock: every age and countdown a screen shows is measured
    against it (the snapshot tests freeze it)."""
    return datetime.now(UTC)

