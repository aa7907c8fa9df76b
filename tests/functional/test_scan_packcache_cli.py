"""`sentinel scan` through the real CLI reuses the compiled pack it kept in the workspace,
and compiles again when a rule file changes: the second scan runs the edited rule."""

from __future__ import annotations

import json
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import RunCli, litellm_line, write_lines

RULE = """\
title: Prompt mentions a codename
id: 11111111-2222-4333-8444-5555555555c1
status: test
level: high
logsource: {product: ai_gateway}
detection:
  sel: {prompt_text|contains: CODENAME}
  condition: sel
"""


def _scan(run_cli: RunCli, rules: Path, *args: str) -> list[dict[str, object]]:
    result = run_cli("scan", "--rules", str(rules), "--format", "jsonl", "--fail-on",
                     "critical", *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_second_scan_runs_the_edited_rule(
    run_cli: RunCli, workspace: Workspace, tmp_path: Path
) -> None:
    lines = [litellm_line(i, prompt="about OSPREY" if i % 3 == 0 else "about CODENAME")
             for i in range(12)]
    run_cli("ingest", str(write_lines(tmp_path / "a.jsonl", lines)), check=True)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "codename.yml").write_text(RULE)
    first = _scan(run_cli, rules)
    assert [a["event_count"] for a in first] == [8]
    packs = list((workspace.root / "state" / "packs").glob("rules-*.json"))
    assert len(packs) == 1
    kept = packs[0].read_bytes()

    (rules / "codename.yml").write_text(RULE.replace("CODENAME}", "OSPREY}"))
    again = _scan(run_cli, rules, "--since", "3650d")
    assert [a["event_count"] for a in again] == [4]  # the edit, not the kept compile
    assert packs[0].read_bytes() != kept

    unchanged = _scan(run_cli, rules, "--since", "3650d")
    assert unchanged == []  # the same rule again: the same alert, recorded once
