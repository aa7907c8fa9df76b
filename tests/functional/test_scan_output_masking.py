"""`sentinel scan`'s alert rows are masked like every output, from a process that loads little.

An alert's group key can hold an identity (`actor_user=alice.smith@example.com`): the
scan prints it masked, and so does `sentinel sql` over the `alerts` view. The scan's
printing loads neither the table layout nor Arrow's compute functions nor the
validators' libraries (see `tests/unit/pii/test_startup_cost.py` for why).
"""

from __future__ import annotations

import json
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import RunCli, cli_loading, litellm_line, write_lines

BURST_BY_USER = """\
title: any request
id: 22222222-2222-4333-8444-555555555501
status: test
logsource: {product: ai_gateway}
detection:
  sel: {model: gpt-4o}
  condition: sel
---
title: Request burst from one user
id: 22222222-2222-4333-8444-555555555502
status: test
level: high
correlation:
  type: event_count
  rules: [22222222-2222-4333-8444-555555555501]
  group-by: [actor_user]
  timespan: 1h
  condition: {gte: 5}
"""
EMAIL = "alice.smith@example.com"
NOT_LOADED = ("wcwidth", "sentinel.tables", "pyarrow.compute", "phonenumbers", "stdnum")


def test_scan_prints_a_group_key_identity_masked(
    run_cli: RunCli, workspace: Workspace, tmp_path: Path
) -> None:
    metadata = {"user_api_key_alias": "team-a-key", "user_api_key_user_email": EMAIL}
    lines = [litellm_line(i, metadata=metadata) for i in range(8)]
    run_cli("ingest", str(write_lines(tmp_path / "a.jsonl", lines)), check=True)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "burst.yml").write_text(BURST_BY_USER)
    # The real CLI, reporting at exit what it loaded (as `sentinel scan` from cron).
    result, loaded = cli_loading(["-w", str(workspace.root), "scan", "--rules", str(rules),
                                  "--format", "jsonl", "--fail-on", "critical"], NOT_LOADED)
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["group_key"] for a in alerts] == ["actor_user=a***@example.com"]
    assert alerts[0]["rule_title"] == "Request burst from one user"
    assert alerts[0]["event_count"] == 8
    assert EMAIL not in result.stdout and "alice" not in result.stdout
    assert loaded == []

    # The same alert through `sentinel sql`, as a table and as CSV.
    for fmt in ("table", "csv"):
        shown = run_cli("sql", "SELECT group_key FROM alerts", "--format", fmt, check=True)
        assert "actor_user=a***@example.com" in shown.stdout and "alice" not in shown.stdout
