"""Compact alert links (migration 8): every reader reads through `alert_events` what it read
before, whether the links were moved by the migration or written by today's writers.

One set of alerts, links and incidents (two alerts sharing an event, an event with no
provenance at all, hostile text in ids and paths, an alert linked with its events given)
is stored three ways: by the writers of migration 7 and then migrated; by
`alerts.commit_rule` with each alert's events; and by `commit_rule` from a scan's DuckDB
links table (`scan.evaluate.links_of`). The readers of every module must agree.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from sentinel.scan import evaluate
from sentinel.store import alerts, grouping, incidents, ledger
from sentinel.store.db import MIGRATIONS, open_db, transaction
from sentinel.store.incidents import Alert, AlertEvent
from sentinel.store.links import LINK_COLUMNS

LAKE_A = "source=litellm/date=2026-01-01/20260101T100000-aaa.parquet"
LAKE_B = "source=litellm/date=2026-01-02/20260102T100000-bbb.parquet"
T1, T2, T3 = ("2026-01-01T10:00:00+00:00", "2026-01-01T10:05:00.250000+00:00",
              "2026-01-02T09:00:00+00:00")
# (alert id, rule, level, group, events: (event id, ts, source, source file, offset, lake))
ALERTS: list[tuple[str, str, str, str, list[tuple[Any, ...]]]] = [
    ("A-zz-recorded-first", "r-card", "high", "key=k1", [
        ("e1", T1, "litellm", "/logs/a.jsonl", 10, LAKE_A),
        ("e2", T2, "litellm", "/logs/a.jsonl", 99, LAKE_A),
    ]),
    ("A-aa-shares-e2", "r-record", "high", "key=k1", [
        ("e2", T2, "litellm", "/logs/a.jsonl", 99, LAKE_A),
        ("e'3; DROP TABLE alerts --", T3, "litellm", "/logs/b ünï.jsonl", 5, LAKE_B),
    ]),
    ("A-mm-no-provenance", "r-quiet", "low", "", [
        ("e4", None, None, None, None, None),
    ]),
    ("A-kk-pending", "r-card", "high", "key=k2", [
        ("e2", T2, "litellm", "/logs/a.jsonl", 99, LAKE_A),
        ("e5", T3, "litellm", "/logs/b ünï.jsonl", 7, LAKE_B),
    ]),
]


def _batch(lake_file: str | None) -> str | None:
    return alerts.batch_of(lake_file)


def _alert(spec: tuple[str, str, str, str, list[tuple[Any, ...]]], with_events: bool) -> Alert:
    alert_id, rule, level, group, events = spec
    times = [e[1] for e in events if e[1]] or [T1]
    return Alert(
        alert_id, rule, f"{rule} fired", level, group, min(times), max(times), len(events),
        ("attack.t1567",),
        tuple(AlertEvent(*e) for e in events) if with_events else (),
    )


def _link_rows(spec: tuple[str, str, str, str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    return [(spec[0], e[0], e[1], e[2], e[3], e[4], e[5], _batch(e[5])) for e in spec[4]]


def _incidents(con: sqlite3.Connection) -> None:
    """Two cases over the same SQL in every store: the first two alerts by reference in
    one, the third with its event given, the fourth left pending."""
    with transaction(con):
        con.executemany(
            "INSERT INTO incidents (incident_id, title, rule_id, rules, severity, first_seen, "
            "last_seen, created_at, updated_at) VALUES (?, 't', ?, '[]', 'high', ?, ?, ?, ?)",
            [(1, "r-card", T1, T3, T1, T1), (2, "r-quiet", T1, T1, T1, T1)],
        )
        con.executemany(
            "INSERT INTO incident_alerts (incident_id, alert_id, rule_id, level, first_ts, "
            "last_ts, event_count, linked_at, by_reference) VALUES (?, ?, 'r', 'high', ?, ?, "
            "1, ?, ?)",
            [(1, ALERTS[0][0], T1, T2, T1, 1), (1, ALERTS[1][0], T2, T3, T1, 1),
             (2, ALERTS[2][0], T1, T1, T1, 0)],
        )
        con.execute(
            "INSERT INTO incident_event_rows (incident_id, event_id, alert_id, ts, source, "
            "source_file, source_offset, lake_file) VALUES (2, 'e4', ?, NULL, NULL, NULL, "
            "NULL, NULL)", (ALERTS[2][0],),
        )
        con.execute("UPDATE alerts SET pending_intake = 0 WHERE alert_id != ?", (ALERTS[3][0],))


def _old_store(path: Path) -> None:
    """The store at migration 7, written as the writers of that version wrote it."""
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:7], start=1):
        for statement in script.split(";"):
            if statement.strip():
                old.execute(statement)
        old.execute(f"PRAGMA user_version = {number}")
    old.execute("INSERT INTO scans (scan_id, started_at) VALUES ('s1', ?)", (T1,))
    for spec in ALERTS:
        alert = _alert(spec, with_events=False)
        old.execute(
            "INSERT INTO alerts (alert_id, rule_id, rule_title, rule_kind, level, tags, "
            "group_key, group_fields, first_ts, last_ts, event_count, scan_id, created_at, "
            "detail, pending_intake) VALUES (?, ?, ?, 'detection', ?, '[\"attack.t1567\"]', "
            "?, '{}', ?, ?, ?, 's1', ?, '{}', 1)",
            (alert.alert_id, alert.rule_id, alert.rule_title, alert.level, alert.group_key,
             alert.first_ts, alert.last_ts, alert.event_count, T1),
        )
        old.executemany(
            "INSERT INTO alert_events (alert_id, event_id, ts, source, source_file, "
            "source_offset, lake_file, batch_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            _link_rows(spec),
        )
    old.close()


def _records() -> list[alerts.AlertRecord]:
    return [alerts.AlertRecord(_alert(spec, with_events=True)) for spec in ALERTS]


def _store_with_events(path: Path) -> sqlite3.Connection:
    con = open_db(path)
    alerts.begin_scan(con, "s1")
    for record in _records():  # one rule per alert, in the order the old store had them
        alerts.commit_rule(con, "s1", record.alert.rule_id, [record], batch_seq=None)
    return con


def _store_from_duckdb(path: Path) -> sqlite3.Connection:
    """As a scan records: the links in DuckDB's LINKS_TABLE, handed over compact."""
    con = open_db(path)
    alerts.begin_scan(con, "s1")
    duck = duckdb.connect()
    evaluate.start_links(duck)
    rows = [(spec[1], *row) for spec in ALERTS for row in _link_rows(spec)]
    duck.register("given", pa.table({
        name: pa.array([r[i] for r in rows], pa.int64() if name == "source_offset" else None)
        for i, name in enumerate(("rule_id", *LINK_COLUMNS))
    }))
    duck.execute(f"INSERT INTO {evaluate.LINKS_TABLE} SELECT * FROM given")
    for spec in ALERTS:
        record = alerts.AlertRecord(_alert(spec, with_events=False))
        alerts.commit_rule(con, "s1", spec[1], [record], batch_seq=None,
                           links=evaluate.links_of(duck, spec[1]))
    duck.close()
    return con


def _reads(con: sqlite3.Connection) -> dict[str, Any]:
    """What every reader of the links gets."""
    ids = [spec[0] for spec in ALERTS]
    return {
        "alert_events": con.execute(
            "SELECT * FROM alert_events ORDER BY alert_id, event_id").fetchall(),
        "incident_events": con.execute(
            "SELECT * FROM incident_events ORDER BY incident_id, event_id").fetchall(),
        "events_of": [alerts.events_of(con, i) for i in ids],
        "as_alert": [alerts.as_alert(con, i) for i in ids],
        "incident_events_of": [incidents.events_of(con, i) for i in (1, 2)],
        "ledger": [(sorted(ids), lo, hi) for ids, lo, hi in (
            ledger.linked_event_ids(con, i) for i in (1, 2))],
        "pending": alerts.pending(con),
        "shared": con.execute(
            "SELECT a.alert_id, o.alert_id FROM alert_events AS a JOIN alert_events AS o "
            "ON o.event_id = a.event_id AND o.alert_id <> a.alert_id ORDER BY 1, 2").fetchall(),
        "alerts": [{k: v for k, v in a.items() if k not in ("created_at", "scan_id")}
                   for a in alerts.list_alerts(con)],
    }


def test_migration_8_moves_every_link_and_readers_read_what_they_read(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _old_store(path)
    old = sqlite3.connect(path)
    _incidents(old)
    before = _reads(old)
    old_order = old.execute("SELECT alert_id FROM alerts ORDER BY rowid").fetchall()
    old.close()
    assert len(before["alert_events"]) == 7 and len(before["incident_events"]) == 4

    con = open_db(path)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert _reads(con) == before
        # The keys follow the order alerts were recorded in; a new alert comes after them.
        assert con.execute("SELECT alert_id FROM alerts ORDER BY alert_ref").fetchall() == (
            old_order)
        assert con.execute("SELECT count(*) FROM link_files").fetchone()[0] == 3
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        new = alerts.AlertRecord(_alert(("A-new", "r-card", "high", "key=k9", [
            ("e1", T1, "litellm", "/logs/a.jsonl", 10, LAKE_A)]), with_events=True))
        alerts.commit_rule(con, "s1", "r-card", [new], batch_seq=None)
        assert con.execute("SELECT alert_ref FROM alerts WHERE alert_id = 'A-new'").fetchone()[
            0] == len(ALERTS) + 1
        # Its event's provenance is the one stored already: no second `link_files` row.
        assert con.execute("SELECT count(*) FROM link_files").fetchone()[0] == 3
        assert [e.event_id for e in alerts.events_of(con, "A-new")] == ["e1"]
    finally:
        con.close()


@pytest.mark.parametrize("writer", [_store_with_events, _store_from_duckdb])
def test_every_writer_gives_every_reader_the_same_answers(writer: Any, tmp_path: Path) -> None:
    _old_store(tmp_path / "old.db")
    migrated = open_db(tmp_path / "old.db")
    written = writer(tmp_path / "new.db")
    try:
        for con in (migrated, written):
            _incidents(con)
        assert _reads(written) == _reads(migrated)
        # The intake finds, through the view, that the pending alert shares half of its
        # events with the first case, and joins it, in both stores alike.
        outcomes = [grouping.open_many(con, alerts.pending(con), key=b"k" * 32)
                    for con in (migrated, written)]
        assert outcomes[0] == outcomes[1]
        assert [(o.incident_id, o.shared_events) for o in outcomes[0]] == [(1, True)]
        assert _reads(written) == _reads(migrated)
    finally:
        migrated.close()
        written.close()


def test_a_repeat_of_a_link_or_an_alert_is_ignored(tmp_path: Path) -> None:
    con = open_db(tmp_path / "state.db")
    try:
        alerts.begin_scan(con, "s1")
        spec = ALERTS[0]
        twice = alerts.AlertRecord(_alert((*spec[:4], spec[4] + spec[4][:1]), with_events=True))
        assert len(alerts.commit_rule(con, "s1", spec[1], [twice, twice], batch_seq=None)) == 1
        assert [e.event_id for e in alerts.events_of(con, spec[0])] == ["e1", "e2"]
        # Links given for an alert recorded earlier do not grow it.
        late = _link_rows(ALERTS[1])
        later = alerts.AlertRecord(_alert(spec, with_events=False))
        assert alerts.commit_rule(con, "s1", spec[1], [later], batch_seq=None,
                                  links=[(spec[0], *row[1:]) for row in late]) == []
        assert [e.event_id for e in alerts.events_of(con, spec[0])] == ["e1", "e2"]
    finally:
        con.close()
