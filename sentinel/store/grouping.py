"""Alerts into incidents a chunk at a time: the set-based form of `incidents.open_or_update`.

`open_many(con, alerts)` decides for each alert, in order, what `open_or_update` called
once per alert decided (the rules are in `store.incidents`' docstring: the dedup by rule
and group key within the window, the shared-events test, recurrences), and lets the
caller move a case that a shared alert joined to a better playbook (`Upgrade`). It reads
what the decisions need with a few statements per call (which alerts are linked already,
the events of every alert and which incidents hold them, the cases it meets), keeps that
state in Python as it links, and writes each table once at the end: the new incidents,
the links in link order, the given events, the touched incidents' counters and times,
and the timeline entries chained in the order the one-at-a-time intake appended them
(`audit.append_many`). One alert at a time was a savepoint, ~15 statements and an audit
append each: 6.5-6.9 s for the side-by-side's 7,570 alerts at load 4-6.

Invariants:
- The same outcomes, incidents, links, event rows and timeline as `open_or_update` once
  per alert in the same order (`tests/unit/store/test_intake_differential.py`).
- Everything is read and written inside one `transaction`, under the write lock, so no
  other writer changes what the decisions were made from. Counters and times are the
  stored ones carried forward exactly as `incidents._refresh` computes them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sentinel.exceptions import StoreError
from sentinel.store import audit
from sentinel.store.alerts import mark_taken
from sentinel.store.db import transaction
from sentinel.store.incidents import (
    DEFAULT_WINDOW,
    OPEN_STATUSES,
    Alert,
    Outcome,
    _alert_detail,
    first_joinable,
    now,
    parse_ts,
    severity_rank,
)

Upgrade = Callable[[Alert, int, str | None], str | None]
"""Called for an alert that joined another rule's case by its events, with the case and
its playbook (after the link): the playbook the case should take instead, or None."""

_CASE_COLUMNS = (
    "incident_id, title, rule_id, group_key, tags, rules, severity, status, merged_into, "
    "first_seen, last_seen, alert_count, event_count, playbook, recurrence_of"
)


@dataclass
class _Case:
    """An incident as the decisions see it: its stored row, then what the links made it."""

    incident_id: int
    title: str
    rule_id: str
    group_key: str
    tags: str
    rules: list[str]
    severity: str
    status: str
    merged_into: int | None
    first_seen: str
    last_seen: str
    alert_count: int
    event_count: int
    playbook: str | None
    recurrence_of: int | None
    new: bool = False
    touched: bool = False
    """Its links are loaded (`_Intake.touch`) and its row is written back at the end."""
    holds: bool = False
    count_sum: int = 0
    first: tuple[datetime, str] | None = None
    last: tuple[datetime, str] | None = None
    linked_rules: set[str] = field(default_factory=set)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES and self.merged_into is None

    def take(self, alert: Alert) -> None:
        """Count one more alert into the times, rules, severity and alert counts."""
        self.linked_rules.add(alert.rule_id)
        self.severity = max([self.severity, alert.level], key=severity_rank)
        # `_refresh` takes min/max over the links in (incident, alert id) index order, so
        # of equal instants the smaller alert id's text wins.
        first, last = (parse_ts(alert.first_ts), alert.alert_id), parse_ts(alert.last_ts)
        if self.first is None or first < self.first:
            self.first, self.first_seen = first, alert.first_ts
        if self.last is None or last > self.last[0] or (
            last == self.last[0] and alert.alert_id < self.last[1]
        ):
            self.last, self.last_seen = (last, alert.alert_id), alert.last_ts
        self.alert_count += 1
        self.count_sum += int(alert.event_count)


class _Intake:
    """What the decisions need, kept from one chunk to the next while no other connection
    writes to the store (`PRAGMA data_version`); rebuilt from the store when one does."""

    def __init__(self, con: sqlite3.Connection, since: datetime) -> None:
        self.con = con
        self.cases: dict[int, _Case] = {}
        self.latest: dict[tuple[str, str], _Case | None] = {}
        self.linked: dict[str, int] = {}
        self.events: dict[str, list[str]] = {}
        # Which incidents hold the events of the alerts met so far (the reachable stored
        # ones, `load`, then every case linked here), kept so that linking or matching an
        # alert's events is a few set operations in C, never a Python step per event:
        self.held: dict[int, set[str]] = {}
        """Per incident, the events it holds (of those met)."""
        self.first: dict[str, int] = {}
        """Per event, the first incident known to hold it."""
        self.also: dict[int, set[int]] = {}
        """Per incident, the others holding some event it was the first to hold: with
        `first`, every incident holding one of a set of events is found."""
        # Only a case open now whose last event is at or after `since` (the earliest
        # alert's first event less the window) can be joined, by group or by shared
        # events (a case gets later only by being joined): the events of the other stored
        # cases cannot change a decision or a count, and are not looked up. A first scan,
        # or one after a quiet day, has none: nothing to look up at all.
        self.reachable = any(
            parse_ts(last_seen) >= since for (last_seen,) in con.execute(
                "SELECT last_seen FROM incidents WHERE merged_into IS NULL "
                "AND status IN ('new', 'acknowledged', 'contained')")
        )
        self.next_id = int(
            con.execute("SELECT coalesce(max(incident_id), 0) FROM incidents").fetchone()[0]
        ) + 1
        self.stamp = now()
        self.link_rows: list[tuple[Any, ...]] = []
        self.event_rows: list[tuple[Any, ...]] = []
        self.entries: list[tuple[str, dict[str, Any], int | None]] = []
        self.dirty: dict[int, _Case] = {}
        self.version = _data_version(con)

    def load(self, alerts: Sequence[Alert]) -> None:
        """Read what deciding `alerts` needs and this state does not hold yet."""
        self.stamp = now()  # the chunk's links are made, and committed, together
        ids = json.dumps([a.alert_id for a in alerts])
        pairs = list({(a.rule_id, a.group_key) for a in alerts}.difference(self.latest))
        if pairs:  # the newest case of each (rule, group key), one statement for all
            newest = {(rule_id, group_key): int(incident_id) for rule_id, group_key, incident_id
                      in self.con.execute(_NEWEST_CASES, (json.dumps(pairs),))}
            for pair in pairs:
                self.latest[pair] = self.follow(newest.get(pair))
        self.linked.update(self.con.execute(
            "SELECT alert_id, incident_id FROM incident_alerts "
            "WHERE alert_id IN (SELECT value FROM json_each(?))", (ids,)))
        # A recorded alert's events are its `alert_events` rows, one JSON list per alert
        # (a row per event costs 3x more in Python), read from the links themselves (the
        # view would look up each link's file too).
        self.events.update(
            (alert_id, json.loads(events)) for alert_id, events in self.con.execute(
                "SELECT a.alert_id, json_group_array(l.event_id) FROM alerts AS a "
                "JOIN alert_links AS l ON l.alert_ref = a.alert_ref "
                "WHERE a.alert_id IN (SELECT value FROM json_each(?)) GROUP BY a.alert_id",
                (ids,))
        )
        if not self.reachable:
            return
        found = list(self.con.execute(_HOLDING_RECORDED, (ids, ids)))
        given = list(dict.fromkeys(e.event_id for a in alerts for e in a.events))
        for start in range(0, len(given), 10_000):
            chunk = json.dumps(given[start:start + 10_000])
            found += self.con.execute(_HOLDING_GIVEN, (chunk, chunk))
        # Holders linked in an earlier chunk of this call are known already (adding them
        # again changes nothing): the store and this state agree.
        holding: dict[int, set[str]] = {}
        for event_id, incident_id in found:
            holding.setdefault(int(incident_id), set()).add(event_id)
        for incident_id, events in holding.items():
            self.hold(events, incident_id)

    def case(self, incident_id: int) -> _Case:
        case = self.cases.get(incident_id)
        if case is None:
            row = self.con.execute(
                f"SELECT {_CASE_COLUMNS} FROM incidents WHERE incident_id = ?", (incident_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no incident {incident_id}; `sentinel incidents list` shows them")
            values = list(row)
            values[5] = json.loads(values[5])
            case = self.cases[incident_id] = _Case(*values)
        return case

    def latest_case(self, rule_id: str, group_key: str) -> _Case | None:
        """The newest case of this rule and group key, followed through merges (`load`
        read them for the chunk's alerts; `open_case` replaces them)."""
        return self.latest[(rule_id, group_key)]

    def follow(self, incident_id: int | None) -> _Case | None:
        """The case, followed through merges."""
        case = self.case(incident_id) if incident_id is not None else None
        seen = set()
        while case is not None and case.merged_into is not None and (
            case.incident_id not in seen
        ):
            seen.add(case.incident_id)
            case = self.case(case.merged_into)
        return case

    def touch(self, case: _Case) -> None:
        """Load what `_refresh` recomputes from the links of a stored case."""
        if case.touched:
            return
        case.touched = True
        if case.new:
            return
        case.holds = self.con.execute(
            "SELECT EXISTS (SELECT 1 FROM incident_event_rows WHERE incident_id = ?) OR EXISTS "
            "(SELECT 1 FROM incident_alerts AS k JOIN alert_events AS e "
            "ON e.alert_id = k.alert_id WHERE k.incident_id = ? AND k.by_reference = 1)",
            (case.incident_id, case.incident_id),
        ).fetchone()[0] == 1
        case.alert_count = 0
        case.linked_rules = set(case.rules)
        for rule_id, level, first_ts, last_ts, count, alert_id in self.con.execute(
            "SELECT rule_id, level, first_ts, last_ts, event_count, alert_id FROM "
            "incident_alerts WHERE incident_id = ? ORDER BY alert_id", (case.incident_id,),
        ):
            case.take(Alert(alert_id, rule_id, "", level, "", first_ts, last_ts, count))

    def hold(self, events: set[str], incident_id: int) -> int:
        """Note that the incident holds `events`; how many it was not known to hold."""
        held = self.held.setdefault(incident_id, set())
        new = events.difference(held)
        held.update(new)
        unheld = new.difference(self.first)
        self.first.update(dict.fromkeys(unheld, incident_id))
        if len(unheld) < len(new):  # some are another incident's too
            others = set(map(self.first.__getitem__, new.difference(unheld)))
            others.discard(incident_id)
            for other in others:
                self.also.setdefault(other, set()).add(incident_id)
        return len(new)

    def sharing(self, alert: Alert, events: list[str], since: datetime) -> _Case | None:
        """`incidents._case_sharing_events` over the state kept here."""
        mine = set(events)
        # `filter(None, …)` drops the events no incident holds (incident ids start at 1).
        firsts: set[int] = set(filter(None, map(self.first.get, mine)))
        holding = set(firsts).union(*(self.also.get(i, ()) for i in firsts))
        shared = {i: n for i in holding if (n := len(mine.intersection(self.held[i])))}
        return first_joinable(shared, len(events), alert.level, since, self.case)

    def link(self, case: _Case, alert: Alert, events: list[str], *, held: bool) -> None:
        """`incidents._link` then `_refresh` (with what the link added)."""
        self.touch(case)
        by_reference = not alert.events
        self.link_rows.append((
            case.incident_id, alert.alert_id, alert.rule_id, alert.level, alert.first_ts,
            alert.last_ts, alert.event_count, self.stamp, int(by_reference)))
        if not by_reference:
            self.event_rows.extend(
                (case.incident_id, e.event_id, alert.alert_id, e.ts, e.source, e.source_file,
                 e.source_offset, e.lake_file) for e in alert.events)
        added = self.hold(set(events), case.incident_id)
        case.take(alert)
        case.rules = sorted(case.linked_rules)
        linked_events = (case.event_count if held else 0) + added
        case.event_count = linked_events or case.count_sum
        case.holds = case.holds or bool(events)
        self.linked[alert.alert_id] = case.incident_id
        self.dirty[case.incident_id] = case

    def open_case(self, alert: Alert, playbook: str | None, recurrence: int | None) -> _Case:
        case = _Case(
            self.next_id, alert.rule_title, alert.rule_id, alert.group_key,
            json.dumps(sorted(alert.tags)), [alert.rule_id], alert.level, "new", None,
            alert.first_ts, alert.last_ts, 0, 0, playbook, recurrence, new=True,
            linked_rules={alert.rule_id},
        )
        self.next_id += 1
        self.cases[case.incident_id] = case
        self.latest[(alert.rule_id, alert.group_key)] = case
        return case

    def write(self, actor: str | None, key: bytes | None) -> None:
        """Write what this chunk changed, and note the store's version after it."""
        stamp = now()
        fresh = [c for c in self.dirty.values() if c.new]
        self.con.executemany(
            "INSERT INTO incidents (incident_id, title, rule_id, rules, severity, tags, "
            "group_key, first_seen, last_seen, alert_count, event_count, playbook, "
            "recurrence_of, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(c.incident_id, c.title, c.rule_id, json.dumps(c.rules), c.severity, c.tags,
              c.group_key, c.first_seen, c.last_seen, c.alert_count, c.event_count,
              c.playbook, c.recurrence_of, stamp, stamp) for c in fresh],
        )
        self.con.executemany(
            "UPDATE incidents SET rules = ?, severity = ?, first_seen = ?, last_seen = ?, "
            "alert_count = ?, event_count = ?, playbook = ?, updated_at = ? "
            "WHERE incident_id = ?",
            [(json.dumps(c.rules), c.severity, c.first_seen, c.last_seen, c.alert_count,
              c.event_count, c.playbook, stamp, c.incident_id)
             for c in self.dirty.values() if not c.new],
        )
        for case in fresh:
            case.new = False  # stored now: a later chunk updates it
        self.con.executemany(
            "INSERT INTO incident_alerts (incident_id, alert_id, rule_id, level, first_ts, "
            "last_ts, event_count, linked_at, by_reference) VALUES (?,?,?,?,?,?,?,?,?)",
            self.link_rows,
        )
        self.con.executemany(
            "INSERT OR IGNORE INTO incident_event_rows (incident_id, event_id, alert_id, ts, "
            "source, source_file, source_offset, lake_file) VALUES (?,?,?,?,?,?,?,?)",
            self.event_rows,
        )
        audit.append_many(self.con, self.entries, actor=actor, key=key, keep=False)
        self.dirty.clear()
        self.link_rows, self.event_rows, self.entries = [], [], []


def _data_version(con: sqlite3.Connection) -> int:
    """Changes when another connection commits to the store (SQLite's `data_version`)."""
    return int(con.execute("PRAGMA data_version").fetchone()[0])


def open_many(
    con: sqlite3.Connection,
    alerts: Sequence[Alert],
    *,
    window: timedelta = DEFAULT_WINDOW,
    playbooks: Sequence[str | None] | None = None,
    upgrade: Upgrade | None = None,
    actor: str | None = None,
    key: bytes | None = None,
    chunk: int = 2000,
) -> list[Outcome]:
    """Link each alert to its incident or open one, in order; one outcome per alert.

    `playbooks[i]`: the playbook a case opened by `alerts[i]` gets. `key`: the audit
    chain's key (`audit.chain_key`), read here when not given. Each `chunk` alerts are
    one write transaction, in which they are also marked taken (`alerts.mark_taken`), so
    another writer (an analyst acknowledging a case) waits for one chunk at most."""
    key = key if key is not None else audit.chain_key(con)
    outcomes: list[Outcome] = []
    state: _Intake | None = None
    for first in range(0, len(alerts), chunk):
        part = alerts[first:first + chunk]
        with transaction(con):
            if state is None or state.version != _data_version(con):
                rest = alerts[first:]
                state = _Intake(con, min(parse_ts(a.first_ts) for a in rest) - window)
            state.load(part)
            for index, alert in enumerate(part, start=first):
                outcomes.append(_take(state, alert, window, upgrade,
                                      playbooks[index] if playbooks is not None else None))
            state.write(actor, key)
            mark_taken(con, [a.alert_id for a in part])
            state.version = _data_version(con)
    return outcomes


def _take(
    state: _Intake, alert: Alert, window: timedelta, upgrade: Upgrade | None,
    playbook: str | None,
) -> Outcome:
    done = state.linked.get(alert.alert_id)
    if done is not None:
        return Outcome(done, opened=False, duplicate=True)
    events = (list(dict.fromkeys(e.event_id for e in alert.events)) if alert.events
              else state.events.get(alert.alert_id, []))
    outcome = _decide(state, alert, events, window, playbook)
    if outcome.shared_events and upgrade is not None:
        case = state.cases[outcome.incident_id]
        better = upgrade(alert, case.incident_id, case.playbook)
        if better is not None:
            state.entries.append(("incident.playbook", {"from": case.playbook, "to": better},
                                  case.incident_id))
            case.playbook = better
    return outcome


def _decide(
    state: _Intake, alert: Alert, events: list[str], window: timedelta, playbook: str | None
) -> Outcome:
    previous = state.latest_case(alert.rule_id, alert.group_key)
    start = parse_ts(alert.first_ts)
    if previous and previous.is_open and parse_ts(previous.last_seen) >= start - window:
        state.touch(previous)
        state.link(previous, alert, events, held=previous.holds)
        state.entries.append(("incident.alert_added", _alert_detail(alert),
                              previous.incident_id))
        return Outcome(previous.incident_id, opened=False)
    sharing = state.sharing(alert, events, start - window)
    if sharing is not None:
        state.link(sharing, alert, events, held=True)
        state.entries.append(("incident.alert_added",
                              {**_alert_detail(alert), "shared_events": True},
                              sharing.incident_id))
        return Outcome(sharing.incident_id, opened=False, shared_events=True)
    recurrence = previous.incident_id if previous else None
    case = state.open_case(alert, playbook, recurrence)
    state.link(case, alert, events, held=False)
    state.entries.append(("incident.opened",
                          {**_alert_detail(alert), "playbook": playbook,
                           "recurrence_of": recurrence}, case.incident_id))
    return Outcome(case.incident_id, opened=True, recurrence_of=recurrence)


# The newest incident of each (rule id, group key) pair (bound: the pairs as a JSON list).
_NEWEST_CASES = """
SELECT i.rule_id, i.group_key, max(i.incident_id) FROM incidents AS i
JOIN (SELECT json_extract(value, '$[0]') AS rule_id, json_extract(value, '$[1]') AS group_key
      FROM json_each(?)) AS p ON i.rule_id = p.rule_id AND i.group_key = p.group_key
GROUP BY i.rule_id, i.group_key
"""
# The incidents holding some of the alerts' recorded events (bound: their ids as a JSON
# list, twice): through another alert's `alert_events` linked by reference, or a link
# given with its events (`incident_event_rows`).
_HOLDING_RECORDED = """
SELECT a.event_id, k.incident_id FROM alert_events AS a
JOIN alert_events AS o ON o.event_id = a.event_id AND o.alert_id <> a.alert_id
JOIN incident_alerts AS k ON k.alert_id = o.alert_id AND k.by_reference = 1
WHERE a.alert_id IN (SELECT value FROM json_each(?))
UNION
SELECT a.event_id, r.incident_id FROM alert_events AS a
JOIN incident_event_rows AS r ON r.event_id = a.event_id
WHERE a.alert_id IN (SELECT value FROM json_each(?))
"""
# The same for event ids given (bound: the ids as a JSON list, twice).
_HOLDING_GIVEN = """
SELECT o.event_id, k.incident_id FROM alert_events AS o
JOIN incident_alerts AS k ON k.alert_id = o.alert_id AND k.by_reference = 1
WHERE o.event_id IN (SELECT value FROM json_each(?))
UNION
SELECT event_id, incident_id FROM incident_event_rows
WHERE event_id IN (SELECT value FROM json_each(?))
"""
