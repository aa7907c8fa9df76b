"""The alert store: stable ids, no doubles, watermarks that only move forward."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sentinel.store import alerts
from sentinel.store.incidents import Alert, AlertEvent, open_or_update


def record(rule: str = "r1", group: str = "actor_key=k1", first_event: str = "e1") -> (
    alerts.AlertRecord
):
    first = "2026-01-01T10:00:00+00:00"
    alert_id = alerts.alert_id_for(rule, group, first_event, first)
    events = (
        AlertEvent(first_event, first, "litellm", "/logs/a.jsonl", 10,
                   "source=litellm/date=2026-01-01/20260101T100000-abc.parquet"),
        AlertEvent("e2", "2026-01-01T10:05:00+00:00", "litellm", "/logs/a.jsonl", 99,
                   "source=litellm/date=2026-01-01/20260101T100000-abc.parquet"),
    )
    alert = Alert(alert_id, rule, "Rule one", "high", group, first,
                  "2026-01-01T10:05:00+00:00", 2, ("attack.t1552",), events)
    return alerts.AlertRecord(alert, "detection", {"actor_key": "k1"})


def test_alerts_are_recorded_once_with_provenance(con: sqlite3.Connection) -> None:
    alerts.begin_scan(con, "s1")
    new = alerts.commit_rule(con, "s1", "r1", [record()], batch_seq=3, rule_hash="h")
    assert [a.rule_id for a in new] == ["r1"]
    alerts.begin_scan(con, "s2")
    # The same hit computed again (a rescan or a racing scan) is not a new alert.
    assert alerts.commit_rule(con, "s2", "r1", [record()], batch_seq=None) == []
    assert con.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1
    stored = alerts.list_alerts(con)
    assert stored[0]["group_fields"] == {"actor_key": "k1"}
    assert stored[0]["tags"] == ["attack.t1552"]
    events = alerts.events_of(con, new[0].alert_id)
    assert [(e.event_id, e.source_offset) for e in events] == [("e1", 10), ("e2", 99)]
    batch = con.execute("SELECT DISTINCT batch_id FROM alert_events").fetchall()
    assert batch == [("20260101T100000-abc",)]
    assert alerts.as_alert(con, new[0].alert_id) == new[0]


def test_watermark_moves_forward_only(con: sqlite3.Connection) -> None:
    alerts.begin_scan(con, "s1")
    alerts.commit_rule(con, "s1", "r1", [], batch_seq=5, rule_hash="h")
    alerts.commit_rule(con, "s1", "r1", [], batch_seq=2, rule_hash="h")
    assert alerts.watermarks(con) == {"r1": (5, "h")}
    # A scan whose range another scan already covered records nothing.
    assert alerts.commit_rule(con, "s1", "r1", [record()], batch_seq=5) == []
    assert con.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0


def test_min_level_filter_and_incident_hand_off(con: sqlite3.Connection) -> None:
    alerts.begin_scan(con, "s1")
    low = record(rule="r2", first_event="x1")
    low = alerts.AlertRecord(
        Alert(**{**low.alert.__dict__, "level": "low"}), "detection", {"actor_key": "k1"}
    )
    alerts.commit_rule(con, "s1", "r1", [record()], batch_seq=1)
    alerts.commit_rule(con, "s1", "r2", [low], batch_seq=1)
    assert [a["rule_id"] for a in alerts.list_alerts(con, min_level="medium")] == ["r1"]
    assert len(alerts.list_alerts(con, min_level="info")) == 2
    stored = alerts.as_alert(con, record().alert.alert_id)
    assert stored is not None
    outcome = open_or_update(con, stored)
    assert outcome.opened
    assert open_or_update(con, stored).duplicate


def test_level_rank() -> None:
    assert alerts.level_rank("info") == alerts.level_rank("informational") == 0
    assert alerts.level_rank("critical") == 4
    assert alerts.level_rank("") == -1


def test_alerts_no_incident_took_before_migration_7_are_pending(tmp_path: Path) -> None:
    from sentinel.store.db import MIGRATIONS, open_db

    path = tmp_path / "state.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:6], start=1):
        for statement in script.split(";"):
            if statement.strip():
                old.execute(statement)
        old.execute(f"PRAGMA user_version = {number}")
    old.execute("INSERT INTO scans (scan_id, started_at) VALUES ('s', 'x')")
    for alert_id in ("taken", "left"):
        old.execute("INSERT INTO alerts (alert_id, rule_id, rule_title, rule_kind, level, "
                    "first_ts, last_ts, event_count, scan_id, created_at) "
                    "VALUES (?, 'r', 't', 'detection', 'high', 'x', 'x', 1, 's', 'x')",
                    (alert_id,))
    old.execute("INSERT INTO incidents (incident_id, title, rule_id, rules, severity, "
                "first_seen, last_seen, created_at, updated_at) "
                "VALUES (1, 't', 'r', '[]', 'high', 'x', 'x', 'x', 'x')")
    old.execute("INSERT INTO incident_alerts (incident_id, alert_id, rule_id, level, first_ts, "
                "last_ts, event_count, linked_at) VALUES (1, 'taken', 'r', 'high', 'x', 'x', 1, "
                "'x')")
    old.close()
    con = open_db(path)
    try:
        assert [a.alert_id for a in alerts.pending(con)] == ["left"]
    finally:
        con.close()
