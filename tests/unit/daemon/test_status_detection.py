"""`sentinel status` counts and lists only open incidents that were not merged away."""

from __future__ import annotations

from sentinel.store import incidents, triage
from sentinel.store.db import open_db
from sentinel.store.incidents import Alert
from sentinel.watch.status import collect
from sentinel.workspace import Workspace


def _alert(alert_id: str, group: str) -> Alert:
    return Alert(alert_id, "rule-1", "Card sent to a model", "high", group,
                 "2025-03-01T10:00:00+00:00", "2025-03-01T10:00:00+00:00", 1, (), ())


def test_status_shows_open_incidents_only(workspace: Workspace) -> None:
    con = open_db(workspace.state_db)
    try:
        ids = [incidents.open_or_update(con, _alert(f"a{i}", f"key-{i}")).incident_id
               for i in range(4)]
        triage.set_status(con, ids[1], "resolved", actor="alice")
        triage.set_status(con, ids[2], "false_positive", actor="alice")
    finally:
        con.close()
    detection = collect(workspace).detection
    assert detection.open_incidents == 2
    assert sorted(line.incident_id for line in detection.newest) == [ids[0], ids[3]]
