"""Baselines through the real CLI: `sentinel scan` over a workspace whose lake holds a
generated history finds the planted new address once, a second scan finds nothing new,
an increment is judged against the history; `sentinel baselines` lists and checks."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import RunCli, litellm_line, write_lines

START = datetime(2026, 3, 2, tzinfo=UTC)
BASELINE = """\
id: key-new-ip
title: Key used from a new client IP
description: A key used from an address it has not used in the learning window.
level: high
tags: [attack.t1078]
falsepositives: [travel]
kind: first_seen
logsource: {product: ai_gateway}
by: [actor_key]
value: client_ip
learning: 5d
min_history: 2d
"""
NOTHING = """\
title: never matches
id: 11111111-2222-4333-8444-555555555599
status: test
level: low
logsource: {product: ai_gateway}
detection:
  sel: {model: no-such-model}
  condition: sel
"""


def requests(path: Path, first: int, days: range, ips: dict[str, str]) -> Path:
    """Hourly requests per key on each day, each key from its address in `ips`."""
    lines, n = [], first
    for day in days:
        for hour in range(9, 17):
            for key, ip in ips.items():
                ts = (START + timedelta(days=day, hours=hour)).timestamp()
                lines.append(litellm_line(n, startTime=ts, endTime=ts + 1,
                                          requester_ip_address=ip,
                                          metadata={"user_api_key_alias": key}))
                n += 1
    return write_lines(path, lines)


def scan(run_cli: RunCli, rules: Path) -> tuple[int, list[dict[str, object]], str]:
    result = run_cli("scan", "--rules", str(rules), "--format", "jsonl", "--fail-on", "high")
    assert "Traceback" not in result.stderr
    return result.returncode, [json.loads(x) for x in result.stdout.splitlines()], result.stderr


def only_workspace_content(ws: Workspace) -> None:
    """`[detect] bundled = false`: the bundled rules and baselines stay out of the way."""
    with ws.config_path.open("a", encoding="utf-8") as fh:
        fh.write("\n[detect]\nbundled = false\n")


def test_scan_runs_baselines_incrementally(
    run_cli: RunCli, workspace: Workspace, tmp_path: Path
) -> None:
    only_workspace_content(workspace)
    (workspace.root / "baselines").mkdir()
    (workspace.root / "baselines" / "new_ip.yml").write_text(BASELINE)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "nothing.yml").write_text(NOTHING)
    usual = {"team-key": "10.0.0.5", "bot-key": "10.0.0.9"}
    history = requests(tmp_path / "history.jsonl", 0, range(8), usual)
    planted = requests(tmp_path / "planted.jsonl", 10_000, range(8, 9),
                       {"team-key": "203.0.113.77", "bot-key": "10.0.0.9"})
    run_cli("ingest", str(history), str(planted), check=True)

    code, alerts, stderr = scan(run_cli, rules)
    assert code == 1, stderr  # a new high alert
    assert [(a["rule_id"], a["group_key"], a["event_count"]) for a in alerts] == [
        ("key-new-ip", "actor_key=team-key", 8)
    ]
    con = sqlite3.connect(workspace.state_db)
    detail = json.loads(con.execute("SELECT detail FROM alerts").fetchone()[0])
    assert detail["value"] == "203.0.113.77" and detail["baseline"] == "first_seen"
    assert con.execute("SELECT count(*) FROM alert_events").fetchone()[0] == 8
    assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 1
    con.close()

    again_code, again, again_err = scan(run_cli, rules)
    assert (again_code, again) == (0, []) and "0 files read" in again_err

    # An increment: the planted address is known now; a third one is new.
    more = requests(tmp_path / "more.jsonl", 20_000, range(9, 10),
                    {"team-key": "203.0.113.77", "bot-key": "198.51.100.4"})
    run_cli("ingest", str(more), check=True)
    code, alerts, stderr = scan(run_cli, rules)
    assert [(a["group_key"], a["event_count"]) for a in alerts] == [("actor_key=bot-key", 8)]
    assert code == 1 and "1 new batches" in stderr

    # A rescan of everything recomputes the same alerts: none is new, none doubled.
    rescan = run_cli("scan", "--rules", str(rules), "--since", "3650d", "--format", "jsonl")
    assert (rescan.returncode, rescan.stdout) == (0, ""), rescan.stderr
    con = sqlite3.connect(workspace.state_db)
    assert con.execute("SELECT count(*) FROM alerts").fetchone()[0] == 2
    con.close()


def test_a_young_lake_stays_quiet_and_a_bad_baseline_is_a_usage_error(
    run_cli: RunCli, workspace: Workspace, tmp_path: Path
) -> None:
    only_workspace_content(workspace)
    (workspace.root / "baselines").mkdir()
    (workspace.root / "baselines" / "new_ip.yml").write_text(BASELINE)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "nothing.yml").write_text(NOTHING)
    # Three days of history: shorter than the 5-day learning window, so nothing is "new".
    young = requests(tmp_path / "young.jsonl", 0, range(3), {"team-key": "10.0.0.5"})
    new = requests(tmp_path / "new.jsonl", 10_000, range(3, 4), {"team-key": "203.0.113.1"})
    run_cli("ingest", str(young), str(new), check=True)
    code, alerts, _ = scan(run_cli, rules)
    assert (code, alerts) == (0, [])

    (workspace.root / "baselines" / "bad.yml").write_text(
        BASELINE.replace("id: key-new-ip", "id: bad").replace("value: client_ip",
                                                              "value: client_iq"))
    result = run_cli("scan", "--rules", str(rules))
    assert result.returncode == 2, result.stderr
    assert "bad.yml:10:8: unknown column 'client_iq' (did you mean 'client_ip'?)" in result.stderr


def test_baselines_list_check_and_convert(run_cli: RunCli, tmp_path: Path) -> None:
    listed = run_cli("baselines", "list", check=True)
    assert "gateway-key-new-client-ip" in listed.stdout and "first_seen" in listed.stdout
    assert "silence" in listed.stdout and "volume" in listed.stdout

    assert run_cli("baselines", "check", check=True).stderr.startswith("5 baselines valid")
    bad = tmp_path / "bad.yml"
    bad.write_text(BASELINE.replace("kind: first_seen", "kind: frist_seen"))
    result = run_cli("baselines", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:7:7: unknown kind 'frist_seen' (did you mean 'first_seen'?)" in result.stderr

    sql = run_cli("baselines", "convert", "gateway-key-new-client-ip", check=True).stdout
    assert "lag(ts) OVER" in sql and "-- $learning = " in sql
    missing = run_cli("baselines", "convert", "no-such-baseline")
    assert missing.returncode == 3 and "sentinel baselines list" in missing.stderr
