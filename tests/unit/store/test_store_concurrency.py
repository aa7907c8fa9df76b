"""Several processes write the case store at once: nothing lost, nothing doubled, chain intact.

The daemon, two cron scans, the CLI and the TUI may all write `state.db` together. Each
worker mixes incident upserts (some alerts shared by every worker, as two overlapping
scans would produce), status changes, assignments, notes and plain audit entries.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections import Counter
from pathlib import Path

from conftest import make_alert

from sentinel.store import audit, incidents, triage
from sentinel.store.db import open_db
from sentinel.workspace import Workspace

WORKERS = 4
WRITES = 50
STATUS_PATH = ("acknowledged", "contained", "resolved")


def worker(db: str, number: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    con = open_db(Path(db))
    barrier.wait()
    own_case = number + 1
    for i in range(WRITES):
        kind = i % 5
        if kind == 0:  # the same alert from every worker: must link once
            alert = make_alert(f"shared-{i}", group=f"g{i % 3}", rule="rule-shared")
            incidents.open_or_update(con, alert)
        elif kind == 1:
            incidents.open_or_update(con, make_alert(f"w{number}-{i}", group=f"w{number}"))
        elif kind == 2:
            audit.record(con, "test.mark", {"worker": number, "i": i})
        elif kind == 3 and i // 5 < len(STATUS_PATH):
            triage.set_status(con, own_case, STATUS_PATH[i // 5], actor=f"w{number}")
        elif kind == 3:
            triage.assign(con, 100, f"w{number}-{i}")
        else:
            triage.add_note(con, 100, f"w{number} note {i}")
    con.close()


def hammer(workspace: Workspace) -> sqlite3.Connection:
    con = open_db(workspace.state_db)
    for n in range(WORKERS):
        incidents.open_or_update(con, make_alert(f"seed-{n}", rule=f"seed-{n}"))
    # Case 100 collects assignments and notes from everyone.
    con.execute(
        "INSERT INTO incidents (incident_id, title, rule_id, rules, severity, group_key, "
        "first_seen, last_seen, created_at, updated_at) VALUES "
        "(100, 't', 'r', '[]', 'low', '', 'x', 'x', 'x', 'x')"
    )
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WORKERS)
    procs = [
        context.Process(target=worker, args=(str(workspace.state_db), n, barrier))
        for n in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0, f"a writer failed (exit {proc.exitcode})"
    return con


def test_concurrent_writers_lose_nothing(workspace: Workspace) -> None:
    con = hammer(workspace)
    links = Counter(r[0] for r in con.execute("SELECT alert_id FROM incident_alerts"))
    shared = {f"shared-{i}" for i in range(0, WRITES, 5)}
    own = {f"w{n}-{i}" for n in range(WORKERS) for i in range(1, WRITES, 5)}
    assert set(links) == shared | own | {f"seed-{n}" for n in range(WORKERS)}
    assert set(links.values()) == {1}
    # Counters were recomputed under the lock: they match the links.
    for case in incidents.list_incidents(con):
        if case.incident_id != 100:
            assert case.alert_count == len(incidents.alerts_of(con, case.incident_id))
    # Shared alerts: one case per group key, however many scans raced.
    shared_cases = con.execute(
        "SELECT group_key, count(*) FROM incidents WHERE rule_id = 'rule-shared' GROUP BY 1"
    ).fetchall()
    assert sorted(shared_cases) == [("g0", 1), ("g1", 1), ("g2", 1)]
    entries = audit.entries(con)
    by_action = Counter(e.action for e in entries)
    assert by_action["test.mark"] == WORKERS * len(range(2, WRITES, 5))
    assert by_action["incident.opened"] + by_action["incident.alert_added"] == len(links)
    assert by_action["incident.status"] == WORKERS * len(STATUS_PATH)
    assert by_action["incident.note"] == WORKERS * len(range(4, WRITES, 5))
    assert by_action["incident.assigned"] == WORKERS * (len(range(3, WRITES, 5)) - 3)
    marks = Counter((e.detail["worker"], e.detail["i"]) for e in entries if e.action == "test.mark")
    assert set(marks.values()) == {1}
    for n in range(WORKERS):
        assert incidents.get(con, n + 1).status == "resolved"
    report = audit.check(con, anchor=audit.head(con).anchor())
    assert report.ok, report.problems
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    con.close()
