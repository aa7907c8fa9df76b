"""Incidents: one case per real problem, built from the alerts a scan records.

`open_or_update(con, alert)` is how a scan's alert becomes a case:
- an alert already linked to a case changes nothing (a rescan never doubles a case);
- an alert of the same rule and group key as an open case, whose first event is within
  the dedup window of the case's last event, joins that case (counts, times, links);
- an alert most of whose events an open, at least as severe case already holds (another
  rule fired on the same prompt) joins that case too: one problem, one case;
- otherwise a new case opens; when an earlier case of the same rule and group key exists
  (resolved, false positive, or open but outside the window) the new one links to it as
  `recurrence_of`.

Invariants:
- Every change happens inside one `store.db.transaction` together with its timeline
  entry (`store.audit.append`), so a change without its entry, or the reverse, cannot be
  committed, and concurrent writers never lose an update: counters and times are
  recomputed from the link tables under the write lock, never incremented from a stale
  read.
- Status moves forward only: new → acknowledged → contained → resolved, or to
  false_positive from any open status. A resolved case stays resolved; its recurrence is
  a new case.
- Free text a responder types (notes) is masked before it is stored.
- An incident's events are the `incident_events` view (migration 6 in `store.db`): the
  `alert_events` of its alerts linked by reference (what a scan recorded, never copied)
  plus `incident_event_rows` (alerts given with their events). Write to the table, read
  the view; moving an alert (merge, split) moves its referenced events with it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from sentinel.exceptions import StoreError
from sentinel.store import audit
from sentinel.store.db import transaction

SEVERITIES = ("informational", "low", "medium", "high", "critical")
STATUSES = ("new", "acknowledged", "contained", "resolved", "false_positive")
OPEN_STATUSES = ("new", "acknowledged", "contained")
_NEXT = {
    "new": {"acknowledged", "contained", "resolved", "false_positive"},
    "acknowledged": {"contained", "resolved", "false_positive"},
    "contained": {"resolved", "false_positive"},
    "resolved": set(),
    "false_positive": set(),
}
DEFAULT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class AlertEvent:
    """One event behind an alert, with where it lives in the lake and came from."""

    event_id: str
    ts: str | None = None
    source: str | None = None
    source_file: str | None = None
    source_offset: int | None = None
    lake_file: str | None = None


@dataclass(frozen=True)
class Alert:
    """A scan's alert, as the `alerts` and `alert_events` tables record it."""

    alert_id: str
    rule_id: str
    rule_title: str
    level: str
    group_key: str
    first_ts: str
    last_ts: str
    event_count: int
    tags: tuple[str, ...] = ()
    events: tuple[AlertEvent, ...] = ()
    """Empty for an alert a scan recorded set-based: its events are its `alert_events`
    rows, and its incident refers to them (`_link`, the `incident_events` view)."""
    sources: tuple[str, ...] = ()
    """The sources of its events (also when `events` is left empty)."""


@dataclass(frozen=True)
class Incident:
    incident_id: int
    title: str
    rule_id: str
    rules: list[str]
    severity: str
    tags: list[str]
    status: str
    assignee: str | None
    group_key: str
    first_seen: str
    last_seen: str
    alert_count: int
    event_count: int
    playbook: str | None
    recurrence_of: int | None
    merged_into: int | None
    split_from: int | None
    created_at: str
    updated_at: str

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES and self.merged_into is None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Outcome:
    incident_id: int
    opened: bool
    duplicate: bool = False
    """The alert was already linked: nothing changed."""
    recurrence_of: int | None = None
    shared_events: bool = False
    """Joined an open incident of another rule that already holds some of its events."""


@dataclass
class Change:
    """What a mutating call did, for the caller to report."""

    incident_id: int
    entries: list[int] = field(default_factory=list)


def now() -> str:
    return datetime.now(UTC).isoformat()


def parse_ts(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def severity_rank(level: str) -> int:
    return SEVERITIES.index(level) if level in SEVERITIES else 0


def open_or_update(
    con: sqlite3.Connection,
    alert: Alert,
    *,
    window: timedelta = DEFAULT_WINDOW,
    playbook: str | None = None,
    actor: str | None = None,
    key: bytes | None = None,
) -> Outcome:
    """Link `alert` to its open incident, or open a new one (see the module docstring).

    `key` is the audit chain's key (`audit.chain_key`), read once by a caller linking
    many alerts."""
    key = key if key is not None else audit.chain_key(con)
    with transaction(con):
        row = con.execute(
            "SELECT incident_id FROM incident_alerts WHERE alert_id = ?", (alert.alert_id,)
        ).fetchone()
        if row:
            return Outcome(int(row[0]), opened=False, duplicate=True)
        previous = _latest_case(con, alert.rule_id, alert.group_key)
        start = parse_ts(alert.first_ts)
        if previous and previous.is_open and parse_ts(previous.last_seen) >= start - window:
            held = _holds_events(con, previous.incident_id)
            added = _link(con, previous.incident_id, alert)
            _refresh(con, previous.incident_id, added=added, held=held)
            audit.append(con, "incident.alert_added", _alert_detail(alert), actor=actor,
                         incident_id=previous.incident_id, key=key)
            return Outcome(previous.incident_id, opened=False)
        sharing = _case_sharing_events(con, alert, start - window)
        if sharing is not None:
            # It shares events with the case, so the case holds some.
            _refresh(con, sharing, added=_link(con, sharing, alert), held=True)
            detail = {**_alert_detail(alert), "shared_events": True}
            audit.append(con, "incident.alert_added", detail, actor=actor, incident_id=sharing,
                         key=key)
            return Outcome(sharing, opened=False, shared_events=True)
        recurrence = previous.incident_id if previous else None
        stamp = now()
        cur = con.execute(
            "INSERT INTO incidents (title, rule_id, rules, severity, tags, group_key, "
            "first_seen, last_seen, playbook, recurrence_of, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (alert.rule_title, alert.rule_id, json.dumps([alert.rule_id]), alert.level,
             json.dumps(sorted(alert.tags)), alert.group_key, alert.first_ts, alert.last_ts,
             playbook, recurrence, stamp, stamp),
        )
        incident_id = int(cur.lastrowid or 0)
        _refresh(con, incident_id, added=_link(con, incident_id, alert), held=False)
        detail = {**_alert_detail(alert), "playbook": playbook, "recurrence_of": recurrence}
        audit.append(con, "incident.opened", detail, actor=actor, incident_id=incident_id,
                     key=key)
        return Outcome(incident_id, opened=True, recurrence_of=recurrence)


def _latest_case(con: sqlite3.Connection, rule_id: str, group_key: str) -> Incident | None:
    """The newest case of this rule and group key, followed through merges."""
    row = con.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE rule_id = ? AND group_key = ? "
        "ORDER BY incident_id DESC LIMIT 1",
        (rule_id, group_key),
    ).fetchone()
    case = _incident(row) if row else None
    seen = set()
    while case is not None and case.merged_into is not None and case.incident_id not in seen:
        seen.add(case.incident_id)
        case = get(con, case.merged_into)
    return case


def _case_sharing_events(
    con: sqlite3.Connection, alert: Alert, since: datetime
) -> int | None:
    """An open incident that already holds most of the alert's events (two rules firing on
    one prompt are one problem), at least as severe, with its last event after `since`.

    Both guards keep a broad, low-severity alert (a key used from several addresses, over
    thousands of events) and a precise, severe one (a card in one of those events) apart.
    """
    shared: dict[int, int] = {}
    if alert.events:
        ids = [e.event_id for e in alert.events]
        total = len(ids)
        for start in range(0, len(ids), 500):
            chunk = json.dumps(ids[start:start + 500])
            for incident_id, count in con.execute(_HOLDING_GIVEN, (chunk, chunk)):
                shared[int(incident_id)] = shared.get(int(incident_id), 0) + int(count)
    else:  # the events the scan recorded for it, joined in SQLite
        total = con.execute(
            "SELECT count(*) FROM alert_events WHERE alert_id = ?", (alert.alert_id,)
        ).fetchone()[0]
        shared = dict(con.execute(_HOLDING_RECORDED, (alert.alert_id, alert.alert_id)).fetchall())
    case = first_joinable(shared, total, alert.level, since, lambda i: get(con, i))
    return None if case is None else case.incident_id


class Joinable(Protocol):
    """What deciding to join a case reads of it (an `Incident`, or the intake's state)."""

    @property
    def incident_id(self) -> int: ...
    @property
    def severity(self) -> str: ...
    @property
    def last_seen(self) -> str: ...
    @property
    def is_open(self) -> bool: ...


CaseT = TypeVar("CaseT", bound=Joinable)


def first_joinable(
    shared: Mapping[int, int], total: int, level: str, since: datetime,
    case_of: Callable[[int], CaseT],
) -> CaseT | None:
    """The first case, by id, holding at least half of an alert's `total` events
    (`shared`: case id → events it holds) that is open, at least as severe as `level`
    and seen at or after `since` (the rule `_case_sharing_events` documents)."""
    for incident_id, count in sorted(shared.items()):
        if count * 2 < total:
            continue
        case = case_of(incident_id)
        if (
            case.is_open
            and severity_rank(case.severity) >= severity_rank(level)
            and parse_ts(case.last_seen) >= since
        ):
            return case
    return None


# The incidents holding some of an alert's events, with how many: through a link given
# with its events (`incident_event_rows`) or another alert's `alert_events` linked by
# reference; (incident, event) pairs counted once. Bound: the ids as a JSON list, twice.
_HOLDING_GIVEN = """
SELECT incident_id, count(*) FROM (
    SELECT k.incident_id, o.event_id FROM alert_events AS o
    JOIN incident_alerts AS k ON k.alert_id = o.alert_id AND k.by_reference = 1
    WHERE o.event_id IN (SELECT value FROM json_each(?))
    UNION
    SELECT incident_id, event_id FROM incident_event_rows
    WHERE event_id IN (SELECT value FROM json_each(?))
) GROUP BY incident_id
"""
# The same for an alert whose events are its `alert_events` rows (bound: its id, twice).
_HOLDING_RECORDED = """
SELECT incident_id, count(*) FROM (
    SELECT k.incident_id, a.event_id FROM alert_events AS a
    JOIN alert_events AS o ON o.event_id = a.event_id AND o.alert_id <> a.alert_id
    JOIN incident_alerts AS k ON k.alert_id = o.alert_id AND k.by_reference = 1
    WHERE a.alert_id = ?
    UNION
    SELECT r.incident_id, a.event_id FROM alert_events AS a
    JOIN incident_event_rows AS r ON r.event_id = a.event_id
    WHERE a.alert_id = ?
) GROUP BY incident_id
"""
# How many of an alert's recorded events its incident did not hold before it was linked
# (bound: alert id, incident id, incident id, alert id).
_ADDED_BY_REFERENCE = """
SELECT count(*) FROM alert_events AS a WHERE a.alert_id = ?
  AND NOT EXISTS (SELECT 1 FROM incident_event_rows AS r
                  WHERE r.incident_id = ? AND r.event_id = a.event_id)
  AND NOT EXISTS (SELECT 1 FROM alert_events AS o
                  JOIN incident_alerts AS k ON k.alert_id = o.alert_id
                  WHERE o.event_id = a.event_id AND +k.incident_id = ? AND k.by_reference = 1
                    AND o.alert_id <> ?)
"""


def _alert_detail(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id, "rule_id": alert.rule_id, "level": alert.level,
        "group_key": alert.group_key, "first_ts": alert.first_ts, "last_ts": alert.last_ts,
        "event_count": alert.event_count,
    }


def _link(con: sqlite3.Connection, incident_id: int, alert: Alert) -> int:
    """Link the alert and its events; returns how many events the incident did not hold.

    An alert a scan recorded (no `events` in Python) is linked by reference: its
    `alert_events` rows are the incident's (the `incident_events` view), nothing is
    copied. An alert given with its events has them written to `incident_event_rows`."""
    by_reference = not alert.events
    con.execute(
        "INSERT INTO incident_alerts (incident_id, alert_id, rule_id, level, first_ts, last_ts, "
        "event_count, linked_at, by_reference) VALUES (?,?,?,?,?,?,?,?,?)",
        (incident_id, alert.alert_id, alert.rule_id, alert.level, alert.first_ts,
         alert.last_ts, alert.event_count, now(), int(by_reference)),
    )
    if by_reference:
        return int(con.execute(
            _ADDED_BY_REFERENCE, (alert.alert_id, incident_id, incident_id, alert.alert_id)
        ).fetchone()[0])
    ids = list(dict.fromkeys(e.event_id for e in alert.events))
    held = {
        row[0] for start in range(0, len(ids), 500) for row in con.execute(
            "SELECT event_id FROM incident_events WHERE incident_id = ? "
            "AND event_id IN (SELECT value FROM json_each(?))",
            (incident_id, json.dumps(ids[start:start + 500])),
        )
    }
    con.executemany(
        "INSERT OR IGNORE INTO incident_event_rows (incident_id, event_id, alert_id, ts, source, "
        "source_file, source_offset, lake_file) VALUES (?,?,?,?,?,?,?,?)",
        [(incident_id, e.event_id, alert.alert_id, e.ts, e.source, e.source_file,
          e.source_offset, e.lake_file) for e in alert.events],
    )
    return len(ids) - len(held)


def _holds_events(con: sqlite3.Connection, incident_id: int) -> bool:
    return con.execute(
        "SELECT EXISTS (SELECT 1 FROM incident_event_rows WHERE incident_id = ?) OR EXISTS "
        "(SELECT 1 FROM incident_alerts AS k JOIN alert_events AS e ON e.alert_id = k.alert_id "
        "WHERE k.incident_id = ? AND k.by_reference = 1)", (incident_id, incident_id),
    ).fetchone()[0] == 1


def _refresh(
    con: sqlite3.Connection, incident_id: int, *, added: int | None = None, held: bool = True
) -> None:
    """Recompute counters, times, rules and severity from the links (under the lock).

    With `added` (the events a link just inserted) and `held` (whether the incident held
    any event before it), the linked events are the stored count plus `added` instead of a
    count over the incident's links: the stored count is that count whenever the incident
    holds events (this function wrote it, under the same lock), and recounting made an
    alert's intake cost grow with its incident (quadratic over a scan)."""
    alerts = con.execute(
        "SELECT rule_id, level, first_ts, last_ts, event_count FROM incident_alerts "
        "WHERE incident_id = ?", (incident_id,),
    ).fetchall()
    current = get(con, incident_id)
    if added is None:
        events = con.execute(
            "SELECT count(*) FROM incident_events WHERE incident_id = ?", (incident_id,)
        ).fetchone()[0]
    else:
        events = (current.event_count if held else 0) + added
    if not alerts:
        con.execute(
            "UPDATE incidents SET alert_count = 0, event_count = 0, updated_at = ? "
            "WHERE incident_id = ?", (now(), incident_id),
        )
        return
    rules = sorted({a[0] for a in alerts} | set(current.rules))
    severity = max([current.severity, *(a[1] for a in alerts)], key=severity_rank)
    first = min((a[2] for a in alerts), key=parse_ts)
    last = max((a[3] for a in alerts), key=parse_ts)
    # Alerts that list no events (a count-only correlation) still count their events.
    count = events or sum(int(a[4]) for a in alerts)
    con.execute(
        "UPDATE incidents SET rules = ?, severity = ?, first_seen = ?, last_seen = ?, "
        "alert_count = ?, event_count = ?, updated_at = ? WHERE incident_id = ?",
        (json.dumps(rules), severity, first, last, len(alerts), count, now(), incident_id),
    )


_COLUMNS = (
    "incident_id, title, rule_id, rules, severity, tags, status, assignee, group_key, "
    "first_seen, last_seen, alert_count, event_count, playbook, recurrence_of, merged_into, "
    "split_from, created_at, updated_at"
)


def _incident(row: tuple[Any, ...]) -> Incident:
    values = list(row)
    values[3] = json.loads(values[3])
    values[5] = json.loads(values[5])
    return Incident(*values)


def get(con: sqlite3.Connection, incident_id: int) -> Incident:
    row = con.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE incident_id = ?", (incident_id,)
    ).fetchone()
    if row is None:
        raise StoreError(f"no incident {incident_id}; `sentinel incidents list` shows them")
    return _incident(row)


def list_incidents(
    con: sqlite3.Connection, *, status: str | None = None, include_closed: bool = True
) -> list[Incident]:
    """Incidents, newest first; merged-away ones are left out."""
    sql = f"SELECT {_COLUMNS} FROM incidents WHERE merged_into IS NULL"
    params: list[Any] = []
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    elif not include_closed:
        sql += " AND status IN ('new', 'acknowledged', 'contained')"
    rows = con.execute(sql + " ORDER BY incident_id DESC", params).fetchall()
    return [_incident(r) for r in rows]


def alerts_of(con: sqlite3.Connection, incident_id: int) -> list[dict[str, Any]]:
    cur = con.execute(
        "SELECT alert_id, rule_id, level, first_ts, last_ts, event_count FROM incident_alerts "
        "WHERE incident_id = ? ORDER BY first_ts, alert_id", (incident_id,),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def events_of(con: sqlite3.Connection, incident_id: int) -> list[dict[str, Any]]:
    """Linked events with their provenance (lake file, source file and offset)."""
    cur = con.execute(
        "SELECT event_id, alert_id, ts, source, source_file, source_offset, lake_file "
        "FROM incident_events WHERE incident_id = ? ORDER BY ts, event_id", (incident_id,),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]
