"""The incident intake against its one-at-a-time reference, on generated alerts.

`open_or_update` no longer recounts an incident's linked events for every alert (that
made a scan's intake quadratic in its incidents' sizes); it adds what a link inserted to
the stored count. Nor does it copy a scan-recorded alert's events: the incident refers
to its `alert_events` (the `incident_events` view). The reference below is the intake as
it was before (a verbatim copy of `open_or_update`, `_link` and `_refresh`, which
recounted under the lock and copied every event, writing to the table that migration 6
renamed `incident_event_rows`). Both run the same generated alerts, interleaved with
status changes and merges, on two workspaces; every incident, link, event and timeline
entry must come out the same, and the audit chain must verify. The one allowed
difference: when two alerts of one incident hold an event, which of them the event row
names (the reference: the first copied; now: a given link, else the first linked).

The scan's intake now decides a chunk of alerts at once (`store.grouping.open_many`,
fifth session). It runs as a third side: the plan's consecutive alerts handed over in
chunks of a generated size, with the playbook a shared alert's case may take
(`respond.intake`'s rule, applied one at a time on the other two sides as the intake
did), and the same results are required of it.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sentinel.store import alerts as alert_store
from sentinel.store import audit, grouping, incidents, links, progress, triage
from sentinel.store.db import open_db, transaction
from sentinel.store.incidents import Alert, AlertEvent, Outcome, parse_ts
from sentinel.workspace import Workspace

WINDOW = timedelta(hours=24)
BASE = datetime(2025, 3, 1, tzinfo=UTC)


# --- the reference: the intake before the incremental count (verbatim, renamed) --------


def reference_open_or_update(
    con: sqlite3.Connection, alert: Alert, *, window: timedelta = WINDOW,
    playbook: str | None = None, actor: str | None = None,
) -> Outcome:
    key = audit.chain_key(con)
    with transaction(con):
        row = con.execute(
            "SELECT incident_id FROM incident_alerts WHERE alert_id = ?", (alert.alert_id,)
        ).fetchone()
        if row:
            return Outcome(int(row[0]), opened=False, duplicate=True)
        previous = incidents._latest_case(con, alert.rule_id, alert.group_key)
        start = parse_ts(alert.first_ts)
        if previous and previous.is_open and parse_ts(previous.last_seen) >= start - window:
            _reference_link(con, previous.incident_id, alert)
            _reference_refresh(con, previous.incident_id)
            audit.append(con, "incident.alert_added", incidents._alert_detail(alert),
                         actor=actor, incident_id=previous.incident_id, key=key)
            return Outcome(previous.incident_id, opened=False)
        sharing = incidents._case_sharing_events(con, alert, start - window)
        if sharing is not None:
            _reference_link(con, sharing, alert)
            _reference_refresh(con, sharing)
            detail = {**incidents._alert_detail(alert), "shared_events": True}
            audit.append(con, "incident.alert_added", detail, actor=actor, incident_id=sharing,
                         key=key)
            return Outcome(sharing, opened=False, shared_events=True)
        recurrence = previous.incident_id if previous else None
        stamp = incidents.now()
        cur = con.execute(
            "INSERT INTO incidents (title, rule_id, rules, severity, tags, group_key, "
            "first_seen, last_seen, playbook, recurrence_of, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (alert.rule_title, alert.rule_id, json.dumps([alert.rule_id]), alert.level,
             json.dumps(sorted(alert.tags)), alert.group_key, alert.first_ts, alert.last_ts,
             playbook, recurrence, stamp, stamp),
        )
        incident_id = int(cur.lastrowid or 0)
        _reference_link(con, incident_id, alert)
        _reference_refresh(con, incident_id)
        detail = {**incidents._alert_detail(alert), "playbook": playbook,
                  "recurrence_of": recurrence}
        audit.append(con, "incident.opened", detail, actor=actor, incident_id=incident_id,
                     key=key)
        return Outcome(incident_id, opened=True, recurrence_of=recurrence)


def _reference_link(con: sqlite3.Connection, incident_id: int, alert: Alert) -> None:
    con.execute(
        "INSERT INTO incident_alerts (incident_id, alert_id, rule_id, level, first_ts, last_ts, "
        "event_count, linked_at) VALUES (?,?,?,?,?,?,?,?)",
        (incident_id, alert.alert_id, alert.rule_id, alert.level, alert.first_ts,
         alert.last_ts, alert.event_count, incidents.now()),
    )
    if not alert.events:
        con.execute(
            "INSERT OR IGNORE INTO incident_event_rows (incident_id, event_id, alert_id, ts, "
            "source, source_file, source_offset, lake_file) SELECT ?, event_id, alert_id, ts, "
            "source, source_file, source_offset, lake_file FROM alert_events WHERE alert_id = ?",
            (incident_id, alert.alert_id),
        )
        return
    con.executemany(
        "INSERT OR IGNORE INTO incident_event_rows (incident_id, event_id, alert_id, ts, "
        "source, source_file, source_offset, lake_file) VALUES (?,?,?,?,?,?,?,?)",
        [(incident_id, e.event_id, alert.alert_id, e.ts, e.source, e.source_file,
          e.source_offset, e.lake_file) for e in alert.events],
    )


def _reference_refresh(con: sqlite3.Connection, incident_id: int) -> None:
    alerts = con.execute(
        "SELECT rule_id, level, first_ts, last_ts, event_count FROM incident_alerts "
        "WHERE incident_id = ?", (incident_id,),
    ).fetchall()
    events = con.execute(
        "SELECT count(*) FROM incident_events WHERE incident_id = ?", (incident_id,)
    ).fetchone()[0]
    if not alerts:
        con.execute(
            "UPDATE incidents SET alert_count = 0, event_count = 0, updated_at = ? "
            "WHERE incident_id = ?", (incidents.now(), incident_id),
        )
        return
    current = incidents.get(con, incident_id)
    rules = sorted({a[0] for a in alerts} | set(current.rules))
    severity = max([current.severity, *(a[1] for a in alerts)], key=incidents.severity_rank)
    first = min((a[2] for a in alerts), key=parse_ts)
    last = max((a[3] for a in alerts), key=parse_ts)
    count = events or sum(int(a[4]) for a in alerts)
    con.execute(
        "UPDATE incidents SET rules = ?, severity = ?, first_seen = ?, last_seen = ?, "
        "alert_count = ?, event_count = ?, updated_at = ? WHERE incident_id = ?",
        (json.dumps(rules), severity, first, last, len(alerts), count, incidents.now(),
         incident_id),
    )


# --- generated alerts and steps -------------------------------------------------------

LEVELS = ("low", "medium", "high")
EVENTS = [f"e{i}" for i in range(12)]

alert_specs = st.fixed_dictionaries({
    "rule": st.sampled_from(["card", "record", "ips"]),
    "group": st.sampled_from(["key-a", "key-b"]),
    # Half-hours over four days: alerts land exactly on the window's edge too.
    "start": st.integers(0, 4 * 48),
    "span": st.sampled_from([0, 1, 6]),
    "level": st.sampled_from(LEVELS),
    "events": st.lists(st.sampled_from(EVENTS), max_size=5, unique=True),
    # Recorded by a scan (events in `alert_events`) or built with its events.
    "recorded": st.booleans(),
    # No linked events at all: a count-only alert.
    "count_only": st.booleans(),
})
steps = st.lists(
    st.one_of(
        st.tuples(st.just("alert"), alert_specs),
        st.tuples(st.just("again"), st.integers(0, 50)),  # an alert seen before
        st.tuples(st.just("status"), st.integers(1, 30),
                  st.sampled_from(["acknowledged", "resolved", "false_positive"])),
        st.tuples(st.just("merge"), st.integers(1, 30), st.integers(1, 30)),
        st.tuples(st.just("start"), st.integers(1, 30)),  # a responder starts its playbook
    ),
    max_size=40,
)

# Each rule's playbook and its priority (`respond.playbook.Playbook.priority`).
BOOKS = {"card": ("card-book", 2), "record": ("record-book", 3), "ips": ("ips-book", 1)}
PRIORITY = dict(BOOKS.values())


def _better(con: sqlite3.Connection, alert: Alert, incident_id: int,
            playbook: str | None) -> str | None:
    """`respond.intake`'s rule, over BOOKS: the alert's playbook when it ranks higher than
    the case's and nobody has started the case's."""
    name, priority = BOOKS[alert.rule_id]
    current = PRIORITY.get(playbook or "")
    better = current is None or priority > current
    started = bool(progress.states(con, incident_id))
    return name if better and name != playbook and not started else None


def _one_at_a_time(con: sqlite3.Connection, alert: Alert, new: bool) -> Outcome:
    """One alert as the intake took it before the chunks: open or update, then the
    playbook of a case it joined by its events."""
    intake = incidents.open_or_update if new else reference_open_or_update
    outcome = intake(con, alert, window=WINDOW, playbook=BOOKS[alert.rule_id][0])
    if outcome.shared_events:
        case = incidents.get(con, outcome.incident_id)
        better = _better(con, alert, case.incident_id, case.playbook)
        if better is not None:
            triage.set_playbook(con, case.incident_id, better)
    return outcome


def _chunked(con: sqlite3.Connection, alerts: list[Alert], chunk: int) -> list[Outcome]:
    return grouping.open_many(
        con, alerts, window=WINDOW, playbooks=[BOOKS[a.rule_id][0] for a in alerts],
        upgrade=lambda alert, incident_id, playbook: _better(con, alert, incident_id, playbook),
        chunk=chunk,
    )


def _iso(half_hours: int) -> str:
    return (BASE + timedelta(minutes=30 * half_hours)).isoformat()


def _offset(event_id: str) -> int:
    return sum(ord(c) for c in event_id)


def _alert(number: int, spec: dict[str, Any]) -> Alert:
    events = () if spec["count_only"] else tuple(spec["events"] or [f"own-{number}"])
    return Alert(
        alert_id=f"a{number}", rule_id=spec["rule"], rule_title=f"{spec['rule']} fired",
        level=spec["level"], group_key=spec["group"], first_ts=_iso(spec["start"]),
        last_ts=_iso(spec["start"] + spec["span"]), event_count=max(len(events), 3),
        tags=("t",),
        events=tuple(
            # An event's provenance is its own, whichever alert links it (as in the lake).
            AlertEvent(e, _iso(spec["start"] if e.startswith("own-") else int(e[1:])),
                       "litellm", "/logs/a.jsonl", _offset(e), "x.parquet")
            for e in events
        ),
    )


def _record(con: sqlite3.Connection, alert: Alert) -> Alert:
    """Store the alert as a scan does and hand it over without its events."""
    with transaction(con):
        if con.execute("SELECT 1 FROM alerts WHERE alert_id = ?", (alert.alert_id,)).fetchone():
            return Alert(**{**alert.__dict__, "events": ()})
        con.execute(
            "INSERT INTO alerts (alert_id, rule_id, rule_title, rule_kind, level, group_key, "
            "first_ts, last_ts, event_count, scan_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (alert.alert_id, alert.rule_id, alert.rule_title, "detection", alert.level,
             alert.group_key, alert.first_ts, alert.last_ts, alert.event_count, "s1",
             incidents.now()),
        )
        links.insert_links(  # read back through the `alert_events` view
            con,
            [(alert.alert_id, e.event_id, e.ts, e.source, e.source_file, e.source_offset,
              e.lake_file, None) for e in alert.events],
        )
    return Alert(**{**alert.__dict__, "events": ()})


def _run(
    con: sqlite3.Connection, plan: list[tuple[Any, ...]], side: str, chunk: int = 1
) -> list[Any]:
    """The plan on one side: "old" (the reference), "one" (`open_or_update` per alert) or
    "chunks" (each run of consecutive alerts through one `grouping.open_many`, `chunk`
    alerts per transaction)."""
    alert_store.begin_scan(con, "s1")
    seen: list[tuple[Alert, bool]] = []
    results: list[Any] = []
    waiting: list[Alert] = []

    def flush() -> None:
        if waiting:
            results.extend(_chunked(con, waiting, chunk))
            waiting.clear()

    for step in plan:
        try:
            if step[0] == "alert":
                alert, recorded = _alert(len(seen), step[1]), step[1]["recorded"]
                seen.append((alert, recorded))
            elif step[0] == "again" and seen:
                alert, recorded = seen[step[1] % len(seen)]
            elif step[0] in ("status", "merge", "start"):
                flush()
                if step[0] == "status":
                    triage.set_status(con, step[1], step[2])
                elif step[0] == "merge":
                    triage.merge(con, step[1], [step[2]])
                else:
                    progress.save_step(con, step[1], playbook="any", step_id="s", kind="manual",
                                       state="done")
                results.append("ok")
                continue
            else:
                continue
        except Exception as exc:  # the same refusal on every side
            results.append(type(exc).__name__)
            continue
        given_alert = _record(con, alert) if recorded else alert
        if side == "chunks":
            waiting.append(given_alert)
        else:
            results.append(_one_at_a_time(con, given_alert, new=side == "one"))
    flush()
    return results


def _state(con: sqlite3.Connection) -> dict[str, list[Any]]:
    return {
        "incidents": con.execute(
            "SELECT incident_id, title, rule_id, rules, severity, tags, status, group_key, "
            "first_seen, last_seen, alert_count, event_count, playbook, recurrence_of, "
            "merged_into FROM incidents ORDER BY incident_id").fetchall(),
        "incident_alerts": con.execute(
            "SELECT incident_id, alert_id, rule_id, level, first_ts, last_ts, event_count "
            "FROM incident_alerts ORDER BY alert_id").fetchall(),
        "incident_events": con.execute(
            "SELECT incident_id, event_id, ts, source, source_file, source_offset, "
            "lake_file FROM incident_events ORDER BY incident_id, event_id").fetchall(),
        # Each event row names an alert of its incident that holds the event.
        "owners_hold_their_events": con.execute(
            "SELECT count(*) FROM incident_events AS e WHERE NOT EXISTS (SELECT 1 FROM "
            "incident_alerts AS k WHERE k.alert_id = e.alert_id AND k.incident_id = "
            "e.incident_id)").fetchall(),
        "audit": [(e.seq, e.action, e.incident_id, e.detail) for e in audit.entries(con)],
    }


def _both(plan: list[tuple[Any, ...]], chunk: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        states, results = [], []
        for side in ("old", "one", "chunks"):
            ws = Workspace.init(Path(tmp) / side)
            con = open_db(ws.state_db)
            try:
                results.append(_run(con, plan, side, chunk))
                states.append(_state(con))
                assert audit.check(con).ok
            finally:
                con.close()
        assert results[0] == results[1] == results[2]
        assert states[0] == states[1]
        assert states[0] == states[2]


def _spec(start: int, *, rule: str = "card", events: tuple[str, ...] = ("e1",),
          recorded: bool = True, count_only: bool = False, level: str = "high",
          span: int = 0) -> tuple[str, dict[str, Any]]:
    return ("alert", {"rule": rule, "group": "key-a", "start": start, "span": span,
                      "level": level, "events": list(events), "recorded": recorded,
                      "count_only": count_only})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.integers(1, 6))
# Exactly on the window's edge (48 half-hours after the last event), and one past it.
@example([_spec(0), _spec(48, events=("e2",))], 6)
@example([_spec(0), _spec(49, events=("e2",))], 6)
# Two alerts of one group in one scan, the second sharing an event with the first.
@example([_spec(3), _spec(3, events=("e1", "e2"))], 6)
# Joining an open case, then its case resolved: the next one opens a recurrence.
@example([_spec(0), _spec(2), ("status", 1, "resolved"), _spec(4)], 6)
# Count-only alerts, then one with events joins (the count switches to linked events).
@example([_spec(0, count_only=True), _spec(1, count_only=True), _spec(2, events=("e1",))], 6)
# Another rule on the same events joins the case (shared events), recorded or not.
@example([_spec(0, events=("e1", "e2")), _spec(1, rule="record", events=("e1", "e2", "e3"),
                                                recorded=False)], 6)
# A merge, then a later alert of the merged case's rule joins the merge target.
@example([_spec(0), _spec(0, rule="ips", events=("e5",)), ("merge", 1, 2),
          _spec(1, rule="ips", events=("e5", "e6"))], 6)
# In one chunk: the same alert twice, and a record alert moving a card case to its
# playbook (higher priority) but not an ips alert (lower); then a started playbook stays.
@example([_spec(0, events=("e1", "e2")), ("again", 0),
          _spec(1, rule="record", events=("e1", "e2")),
          _spec(1, rule="ips", level="low", events=("e1", "e2")), ("again", 1)], 6)
@example([_spec(0, events=("e1",)), ("start", 1), _spec(1, rule="record", events=("e1",))], 6)
# Chunk edges: one alert per chunk, and a chunk that ends between two sharing alerts.
@example([_spec(0, events=("e1", "e2")), _spec(1, rule="record", events=("e1", "e2"))], 1)
def test_the_intake_matches_its_one_at_a_time_reference(
    plan: list[tuple[Any, ...]], chunk: int
) -> None:
    _both(plan, chunk)


def test_a_chunk_after_another_writer_decides_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between two chunks an analyst resolves the case the first chunk opened: the second
    chunk's alert of that group must open a recurrence, not join the resolved case (what
    the first chunk left in memory)."""
    ws = Workspace.init(tmp_path / "ws")
    con, analyst = open_db(ws.state_db), open_db(ws.state_db)
    real = grouping.transaction
    chunks = []

    @contextmanager
    def between(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        chunks.append(1)
        if len(chunks) == 2:
            triage.set_status(analyst, 1, "resolved")
        with real(connection) as inside:
            yield inside

    monkeypatch.setattr(grouping, "transaction", between)
    try:
        alert_store.begin_scan(con, "s1")
        first, second = (_record(con, _alert(n, _spec(n)[1])) for n in range(2))
        outcomes = grouping.open_many(con, [first, second], window=WINDOW, chunk=1)
        assert [o.opened for o in outcomes] == [True, True]
        assert outcomes[1].recurrence_of == 1
        assert incidents.get(con, 1).status == "resolved"
        assert incidents.get(con, 1).alert_count == 1
        assert audit.check(con).ok
    finally:
        con.close()
        analyst.close()
