"""`sentinel scan` end to end: watermarks, increments, exit codes, concurrent scans."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sentinel.workspace import Workspace
from tests.conftest import RunCli, litellm_line, write_lines

SECRET_RULE = """\
title: Secret marker in a prompt
id: 11111111-2222-4333-8444-555555555501
status: test
level: high
logsource: {product: ai_gateway}
detection:
  sel: {prompt_text|contains: SECRET-MARKER}
  condition: sel
"""
MODEL_RULE = """\
title: Any gpt-4o request
id: 11111111-2222-4333-8444-555555555502
status: test
level: low
logsource: {product: ai_gateway, service: litellm}
detection:
  sel: {model: gpt-4o}
  condition: sel
"""
BURST_RULE = """\
title: many requests
id: 11111111-2222-4333-8444-555555555503
status: test
logsource: {product: ai_gateway}
detection:
  sel: {model: gpt-4o}
  condition: sel
---
title: Request burst from one key
id: 11111111-2222-4333-8444-555555555504
status: test
level: medium
correlation:
  type: event_count
  rules: [11111111-2222-4333-8444-555555555503]
  group-by: [actor_key]
  timespan: 1h
  condition: {gte: 50}
"""


@pytest.fixture()
def rules_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "secret.yml").write_text(SECRET_RULE)
    (directory / "model.yml").write_text(MODEL_RULE)
    (directory / "burst.yml").write_text(BURST_RULE)
    return directory


def logs(tmp_path: Path, name: str, start: int, count: int, secrets: tuple[int, ...]) -> Path:
    lines = [
        litellm_line(i, prompt="token SECRET-MARKER here" if i in secrets else "hello")
        for i in range(start, start + count)
    ]
    return write_lines(tmp_path / name, lines)


def scan(run_cli: RunCli, rules: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("scan", "--rules", str(rules), "--format", "jsonl", *args)


def alerts_in(ws: Workspace) -> list[tuple[str, int]]:
    con = sqlite3.connect(ws.state_db)
    try:
        rows = con.execute("SELECT rule_id, event_count FROM alerts ORDER BY rule_id").fetchall()
    finally:
        con.close()
    return [(rule[-2:], count) for rule, count in rows]


def test_scan_increments_and_exit_codes(
    run_cli: RunCli, workspace: Workspace, rules_dir: Path, tmp_path: Path
) -> None:
    run_cli("ingest", str(logs(tmp_path, "a.jsonl", 0, 30, (3, 7))), check=True)
    first = scan(run_cli, rules_dir, "--fail-on", "high", "--stats")
    assert first.returncode == 1, first.stderr
    found = [json.loads(line) for line in first.stdout.splitlines()]
    by_rule = {a["rule_id"][-2:]: a for a in found}
    assert by_rule["01"]["event_count"] == 2 and by_rule["01"]["level"] == "high"
    assert by_rule["01"]["group_key"] == "actor_key=team-a-key"
    assert by_rule["02"]["event_count"] == 30
    assert "04" not in by_rule  # 30 requests: below the burst threshold
    assert "rows read" in first.stderr
    assert re.search(r"time per phase: rules [\d.]+ s, recording [\d.]+ s, baselines "
                     r"[\d.]+ s, incidents [\d.]+ s", first.stderr), first.stderr

    again = scan(run_cli, rules_dir, "--fail-on", "low")
    assert again.returncode == 0 and again.stdout == ""
    assert "0 files read" in again.stderr and "0 new alerts" in again.stderr

    # An increment: only the new batch's file is read; the correlation looks back.
    run_cli("ingest", str(logs(tmp_path, "b.jsonl", 30, 30, (40,))), check=True)
    third = scan(run_cli, rules_dir, "--fail-on", "critical")
    assert third.returncode == 0, third.stderr
    new = {a["rule_id"][-2:]: a for a in map(json.loads, third.stdout.splitlines())}
    assert new["01"]["event_count"] == 1
    assert new["04"]["event_count"] == 60  # the burst spans both batches
    con = sqlite3.connect(workspace.state_db)
    linked = con.execute(
        "SELECT e.event_id, e.lake_file, e.source_offset FROM alert_events e "
        "JOIN alerts a USING (alert_id) WHERE a.alert_id = ?", (new["04"]["alert_id"],)
    ).fetchall()
    con.close()
    # Every event of the burst is linked with its provenance, lake file relative to the lake.
    assert len({event_id for event_id, _, _ in linked}) == 60
    assert {lake.split("/")[0] for _, lake, _ in linked} == {"source=litellm"}
    assert all(offset is not None for _, _, offset in linked)
    assert "1 new batches" in third.stderr
    lake_files = list(workspace.lake_dir.glob("source=litellm/*/*.parquet"))
    assert len(lake_files) == 2

    # A rescan of everything finds the same alerts: none is new, none is doubled.
    before = alerts_in(workspace)
    rescan = scan(run_cli, rules_dir, "--since", "3650d", "--fail-on", "info")
    assert rescan.returncode == 0, rescan.stderr
    assert alerts_in(workspace) == before


def test_scan_usage_errors(run_cli: RunCli, rules_dir: Path, tmp_path: Path) -> None:
    bad_since = scan(run_cli, rules_dir, "--since", "yesterday-ish")
    assert bad_since.returncode == 2 and "--since" in bad_since.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.yml").write_text(SECRET_RULE.replace("prompt_text", "prompt_txt"))
    result = scan(run_cli, broken)
    assert result.returncode == 2
    assert "bad.yml:" in result.stderr and "did you mean 'prompt_text'" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_scans_at_once_never_double_count(
    run_cli: RunCli, workspace: Workspace, rules_dir: Path, tmp_path: Path
) -> None:
    run_cli("ingest", str(logs(tmp_path, "a.jsonl", 0, 80, (1, 2, 3))), check=True)
    command = [
        sys.executable, "-m", "sentinel", "--workspace", str(workspace.root), "-q", "scan",
        "--rules", str(rules_dir), "--format", "jsonl",
    ]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=dict(os.environ)) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode in (0, 1) for run in runs), outputs
    printed = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    # Each alert is reported by exactly one of the two scans and stored once.
    assert sorted(a["rule_id"][-2:] for a in printed) == ["01", "02", "04"]
    assert alerts_in(workspace) == [("01", 3), ("02", 80), ("04", 80)]


def test_scan_help_has_an_example(run_cli: RunCli) -> None:
    result = run_cli("scan", "--help", check=True)
    assert textwrap.dedent("Example: sentinel scan") in result.stdout
