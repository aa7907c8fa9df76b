"""Incidents from alerts: dedup window, recurrence, status, merge and split, with a timeline."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import make_alert

from sentinel.exceptions import StoreError
from sentinel.store import audit, incidents, triage


def actions(con: sqlite3.Connection, incident_id: int) -> list[str]:
    return [e.action for e in audit.entries(con, [incident_id])]


def test_alerts_of_one_rule_and_group_within_the_window_join_one_case(
    con: sqlite3.Connection,
) -> None:
    first = incidents.open_or_update(con, make_alert("a1", first="2025-03-01T10:00:00+00:00"))
    again = incidents.open_or_update(con, make_alert("a2", first="2025-03-02T09:00:00+00:00"))
    assert first.opened and not again.opened and again.incident_id == first.incident_id
    case = incidents.get(con, first.incident_id)
    assert (case.alert_count, case.event_count) == (2, 4)
    assert (case.first_seen, case.last_seen) == (
        "2025-03-01T10:00:00+00:00", "2025-03-02T09:00:00+00:00"
    )
    assert actions(con, case.incident_id) == ["incident.opened", "incident.alert_added"]
    events = incidents.events_of(con, case.incident_id)
    assert events[0]["source_file"] == "/logs/a.jsonl" and events[0]["lake_file"]


def test_the_same_alert_twice_changes_nothing(con: sqlite3.Connection) -> None:
    incidents.open_or_update(con, make_alert("a1"))
    outcome = incidents.open_or_update(con, make_alert("a1"))
    assert outcome.duplicate
    assert incidents.get(con, 1).alert_count == 1
    assert audit.head(con).seq == 1


@pytest.mark.parametrize(
    ("other", "why"),
    [
        ({"group": "key-b"}, "another group key"),
        ({"rule": "rule-ssn"}, "another rule"),
        ({"first": "2025-03-03T10:00:01+00:00"}, "outside the window"),
    ],
)
def test_what_opens_a_separate_case(con: sqlite3.Connection, other: dict, why: str) -> None:  # type: ignore[type-arg]
    incidents.open_or_update(con, make_alert("a1", last="2025-03-02T10:00:00+00:00"))
    outcome = incidents.open_or_update(con, make_alert("a2", **other))
    assert outcome.opened, why


def test_the_window_is_configurable(con: sqlite3.Connection) -> None:
    incidents.open_or_update(con, make_alert("a1"), window=timedelta(hours=1))
    later = make_alert("a2", first="2025-03-01T11:30:00+00:00")
    assert incidents.open_or_update(con, later, window=timedelta(hours=1)).opened


def test_another_rule_on_the_same_events_joins_the_open_case(con: sqlite3.Connection) -> None:
    """A prompt with a whole customer record fires the card rule and the record rule."""
    incidents.open_or_update(con, make_alert("a1", rule="rule-card", events=("e1",)))
    record = make_alert("a2", rule="rule-record", group="key-a", events=("e1", "e2"))
    outcome = incidents.open_or_update(con, record)
    assert outcome.incident_id == 1 and outcome.shared_events and not outcome.opened
    case = incidents.get(con, 1)
    assert case.rules == ["rule-card", "rule-record"] and case.event_count == 2
    triage.set_status(con, 1, "resolved")
    again = make_alert("a3", rule="rule-record", events=("e1",))
    assert incidents.open_or_update(con, again).opened  # a closed case is not joined


def test_a_broad_low_alert_and_a_precise_severe_one_stay_apart(con: sqlite3.Connection) -> None:
    """A key used from several addresses (thousands of events, low) holds the one event
    with a card in it (high): neither joins the other's case."""
    many = tuple(f"e{i}" for i in range(9))
    broad = make_alert("many", rule="rule-ips", level="low", events=many)
    incidents.open_or_update(con, broad)
    card = make_alert("card", rule="rule-card", level="high", events=("e3",))
    assert incidents.open_or_update(con, card).opened
    broad_again = make_alert("many2", rule="rule-ips2", level="low", events=("e3", "x1", "x2"))
    assert incidents.open_or_update(con, broad_again).opened


def test_a_resolved_case_that_recurs_opens_a_linked_one(con: sqlite3.Connection) -> None:
    incidents.open_or_update(con, make_alert("a1"))
    triage.set_status(con, 1, "resolved", note="key rotated")
    outcome = incidents.open_or_update(con, make_alert("a2", first="2025-03-01T12:00:00+00:00"))
    assert outcome.opened and outcome.recurrence_of == 1
    assert incidents.get(con, outcome.incident_id).recurrence_of == 1


def test_status_moves_forward_only(con: sqlite3.Connection) -> None:
    incidents.open_or_update(con, make_alert("a1"))
    triage.set_status(con, 1, "acknowledged", actor="alice")
    triage.set_status(con, 1, "contained")
    with pytest.raises(StoreError, match="is contained; it cannot become acknowledged"):
        triage.set_status(con, 1, "acknowledged")
    triage.set_status(con, 1, "false_positive")
    with pytest.raises(StoreError, match="cannot become resolved"):
        triage.set_status(con, 1, "resolved")
    with pytest.raises(StoreError, match="unknown status"):
        triage.set_status(con, 1, "closed")
    entries = audit.entries(con, [1])
    assert [(e.action, e.actor) for e in entries][1] == ("incident.status", "alice")


def test_notes_are_masked_before_they_are_stored(con: sqlite3.Connection) -> None:
    incidents.open_or_update(con, make_alert("a1"))
    triage.add_note(con, 1, "customer card 4111 1111 1111 1111 was in the prompt")
    triage.assign(con, 1, "bob", actor="alice")
    stored = "\n".join(con.iterdump())
    assert "4111 1111 1111 1111" not in stored
    assert "card ****1111" in stored
    assert incidents.get(con, 1).assignee == "bob"


def test_merge_and_split_move_alerts_and_events(con: sqlite3.Connection) -> None:
    incidents.open_or_update(con, make_alert("a1", group="key-a"))
    incidents.open_or_update(con, make_alert("a2", group="key-b", rule="rule-ssn"))
    incidents.open_or_update(con, make_alert("a3", group="key-c", events=("x",)))
    con.execute("INSERT INTO incident_event_rows (incident_id, event_id, alert_id) "
                "VALUES (3, 'a1-e1', 'a3')")  # an event both cases hold
    triage.merge(con, 1, [2, 3])
    case = incidents.get(con, 1)
    assert case.alert_count == 3 and case.event_count == 5  # a1-e1 counted once
    assert case.rules == ["rule-card", "rule-ssn"]
    assert incidents.get(con, 2).merged_into == 1
    assert [c.incident_id for c in incidents.list_incidents(con)] == [1]
    with pytest.raises(StoreError, match="merged into incident 1"):
        triage.set_status(con, 2, "resolved")
    # A later alert of a merged case's rule and group joins the merge target.
    late = make_alert("a4", group="key-b", rule="rule-ssn", first="2025-03-01T11:00:00+00:00")
    assert incidents.open_or_update(con, late).incident_id == 1
    new_id = triage.split(con, 1, ["a2", "a4"])
    assert incidents.get(con, new_id).split_from == 1
    assert incidents.get(con, new_id).alert_count == 2
    assert incidents.get(con, 1).alert_count == 2
    assert incidents.get(con, 1).rules == ["rule-card"]
    with pytest.raises(StoreError, match="has no alert nope"):
        triage.split(con, 1, ["nope"])
    with pytest.raises(StoreError, match="at least one alert"):
        triage.split(con, 1, ["a1", "a3"])
    assert "incident.merged" in actions(con, 1) and "incident.split_from" in actions(con, new_id)
    assert audit.check(con).ok


def _recorded(con: sqlite3.Connection, alert: incidents.Alert) -> incidents.Alert:
    """`alert` recorded as a scan records it, handed over without its events."""
    from sentinel.store import alerts as alert_store
    from sentinel.store.alerts import AlertRecord

    if not con.execute("SELECT 1 FROM scans WHERE scan_id = 's1'").fetchone():
        alert_store.begin_scan(con, "s1")
    alert_store.commit_rule(con, "s1", alert.rule_id, [AlertRecord(alert)], batch_seq=None)
    return incidents.Alert(**{**alert.__dict__, "events": ()})


def test_a_recorded_alert_is_linked_by_reference_not_copied(con: sqlite3.Connection) -> None:
    incidents.open_or_update(con, _recorded(con, make_alert("a1", events=("x", "y"))))
    incidents.open_or_update(con, _recorded(con, make_alert("a2", events=("y", "z"))))
    # A third alert given with its events, holding one of theirs.
    incidents.open_or_update(con, make_alert("a3", events=("z", "w")))
    assert con.execute("SELECT count(*) FROM incident_event_rows").fetchone()[0] == 2
    case = incidents.get(con, 1)
    assert (case.alert_count, case.event_count) == (3, 4)  # x, y, z, w once each
    events = {e["event_id"]: e["alert_id"] for e in incidents.events_of(con, 1)}
    assert events == {"x": "a1", "y": "a1", "z": "a3", "w": "a3"}  # a given link wins
    # A split moves an alert's referenced events with it; what the case keeps is its own.
    new_id = triage.split(con, 1, ["a1"])
    assert sorted(e["event_id"] for e in incidents.events_of(con, new_id)) == ["x", "y"]
    assert sorted(e["event_id"] for e in incidents.events_of(con, 1)) == ["w", "y", "z"]
    assert (incidents.get(con, new_id).event_count, incidents.get(con, 1).event_count) == (2, 3)
    # Merged back, the case holds each event once again.
    triage.merge(con, 1, [new_id])
    assert incidents.get(con, 1).event_count == 4
    assert len(incidents.events_of(con, 1)) == 4
    assert audit.check(con).ok


def test_links_copied_before_migration_6_are_kept(tmp_path: Path) -> None:
    from sentinel.store.db import MIGRATIONS, open_db

    path = tmp_path / "state.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:5], start=1):
        for statement in script.split(";"):
            if statement.strip():
                old.execute(statement)
        old.execute(f"PRAGMA user_version = {number}")
    old.execute("INSERT INTO incidents (incident_id, title, rule_id, rules, severity, "
                "first_seen, last_seen, created_at, updated_at) "
                "VALUES (1, 't', 'r', '[]', 'high', 'x', 'x', 'x', 'x')")
    old.execute("INSERT INTO incident_alerts VALUES (1, 'a1', 'r', 'high', 'x', 'x', 1, 'x')")
    old.execute("INSERT INTO incident_events (incident_id, event_id, alert_id, ts) "
                "VALUES (1, 'e1', 'a1', '2025-03-01T00:00:00+00:00')")
    old.close()
    con = open_db(path)
    try:
        assert con.execute("SELECT incident_id, event_id, alert_id FROM incident_events"
                           ).fetchall() == [(1, "e1", "a1")]
        assert con.execute("SELECT by_reference FROM incident_alerts").fetchall() == [(0,)]
    finally:
        con.close()
