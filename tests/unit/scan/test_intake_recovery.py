"""Alerts a failed incident intake left behind become incidents on the next scan.

A scan commits its alerts (and moves its watermarks) before the intake runs. An intake
that fails there, or a process that dies there, must not lose them: the next scan finds
no new alert, so only the alerts' own `pending_intake` mark can bring them back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sentinel.ingest.engine import ingest_paths
from sentinel.respond import intake
from sentinel.scan.runner import run_scan
from sentinel.store import alerts as alert_store
from sentinel.store import audit
from sentinel.store.db import open_db
from sentinel.workspace import Workspace
from tests.conftest import litellm_line, write_lines

RULES = """\
title: Any gpt-4o request
id: 11111111-2222-4333-8444-555555555602
status: test
level: low
logsource: {product: ai_gateway}
detection:
  sel: {model: gpt-4o}
  condition: sel
---
title: Secret marker in a prompt
id: 11111111-2222-4333-8444-555555555601
status: test
level: high
logsource: {product: ai_gateway}
detection:
  sel: {prompt_text|contains: SECRET-MARKER}
  condition: sel
"""


class Injected(RuntimeError):
    """The failure a test puts into the intake."""


@pytest.fixture()
def scanned(workspace: Workspace, tmp_path: Path) -> tuple[Workspace, list[Path]]:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    lines = [litellm_line(i, "SECRET-MARKER" if i % 5 == 0 else "hello") for i in range(40)]
    ingest_paths(workspace, [write_lines(tmp_path / "gw.jsonl", lines)])
    return workspace, [rules]


def _linked(ws: Workspace) -> tuple[int, int, int]:
    """(alerts, alerts linked to an incident, alerts still pending)."""
    con = sqlite3.connect(ws.state_db)
    try:
        return (
            con.execute("SELECT count(*) FROM alerts").fetchone()[0],
            con.execute("SELECT count(*) FROM incident_alerts").fetchone()[0],
            con.execute("SELECT count(*) FROM alerts WHERE pending_intake = 1").fetchone()[0],
        )
    finally:
        con.close()


def _fail(*_: Any, **__: Any) -> Any:
    raise Injected("the intake failed")


def test_alerts_left_by_a_failed_intake_are_taken_by_the_next_scan(
    scanned: tuple[Workspace, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, rules = scanned
    with monkeypatch.context() as patch:
        patch.setattr(intake, "open_incidents", _fail)
        with pytest.raises(Injected):
            run_scan(ws, rules=rules, baselines_too=False)
    alerts, linked, pending = _linked(ws)
    assert alerts > 0 and linked == 0 and pending == alerts

    report = run_scan(ws, rules=rules, baselines_too=False)
    assert report.alerts == []  # nothing new was ingested: the watermarks had moved
    assert report.incidents_opened > 0
    assert _linked(ws) == (alerts, alerts, 0)
    con = open_db(ws.state_db)
    try:
        assert audit.check(con).ok
        assert alert_store.pending(con) == []
    finally:
        con.close()
    # And a third scan has nothing left to take.
    assert run_scan(ws, rules=rules, baselines_too=False).incidents_opened == 0


def test_a_scan_whose_intake_succeeds_leaves_nothing_pending(
    scanned: tuple[Workspace, list[Path]],
) -> None:
    ws, rules = scanned
    report = run_scan(ws, rules=rules, baselines_too=False)
    assert report.alerts and report.incidents_opened > 0
    alerts, linked, pending = _linked(ws)
    assert (linked, pending) == (alerts, 0)
