"""`sentinel scan` as cron runs it, over the demo's logs, through the real CLI: the planted
incidents make the first scan exit 1 under `--fail-on high`; a second scan finds nothing
new and exits 0; `--format json` is one JSON document.

(`test_demo_acceptance` checks each planted incident against its rule's SQL; this checks
the command, its exit codes and its output.)
"""

from __future__ import annotations

import json
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import RunCli
from tests.functional.test_demo_acceptance import EXPECTED

EVENTS = "1000"


def test_demo_scan_exit_codes_and_json(run_cli: RunCli, workspace: Workspace) -> None:
    run_cli("--quiet", "demo", "--events", EVENTS, "--no-ingest", check=True)
    logs = sorted(
        str(p) for p in Path(workspace.demo_dir).rglob("*") if p.is_file() and p.suffix != ".md"
    )
    run_cli("--quiet", "ingest", *logs, check=True)

    first = run_cli("scan", "--fail-on", "high", "--format", "json")
    assert first.returncode == 1, first.stderr
    document = json.loads(first.stdout)
    alerts = document["alerts"]
    assert document["scan_id"] and alerts
    titles = {a["rule_title"] for a in alerts}
    assert set(EXPECTED.values()) <= titles  # every planted incident's rule fired
    severe = {a["rule_title"] for a in alerts if a["level"] in ("high", "critical")}
    assert severe and severe <= set(EXPECTED.values()), severe - set(EXPECTED.values())
    for alert in alerts:
        assert alert["event_count"] >= 1 and alert["first_ts"] <= alert["last_ts"]

    second = run_cli("scan", "--fail-on", "high", "--format", "json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["alerts"] == []
    assert "0 files read" in second.stderr and "0 new alerts" in second.stderr
    # Nothing new at any level either: the exit code follows only new alerts.
    assert run_cli("scan", "--fail-on", "info", "--format", "jsonl").returncode == 0
