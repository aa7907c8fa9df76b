"""Which rules a scan runs: the bundled pack, plus the workspace's own, which override a
bundled rule by id; `[detect] bundled = false` drops the pack; `--rules` replaces all."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.content import rules_dir
from sentinel.exceptions import SentinelError
from sentinel.scan.runner import compile_rules
from sentinel.workspace import Workspace

BUNDLED_ID = "1d2e3f4a-5b6c-4d7e-9f8a-0b1c2d3e1116"  # openai/api_key_unrestricted.yml

OWN_RULE = """\
title: Prompt mentions Project Falcon
id: 7c9a3e10-4b2d-4f6a-8e1c-2d3f4a5b6c70
status: experimental
logsource:
  product: ai_gateway
detection:
  sel:
    prompt_text|contains: falcon
  condition: sel
level: medium
"""


def _workspace(tmp_path: Path, toml: str = "") -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    if toml:
        ws.config_path.write_text(ws.config_path.read_text() + "\n" + toml)
    return Workspace.open(ws.root)


def _titles(ws: Workspace, rules: list[Path] | None = None) -> dict[str, str]:
    compiled, problems, _ = compile_rules(ws, rules)
    assert problems == []
    return {rule.rule_id: rule.title for rule in compiled}


def test_workspace_rules_are_added_to_the_bundled_pack(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, '[detect]\nrules = ["mine"]\n')
    (ws.root / "mine").mkdir()
    (ws.root / "mine" / "falcon.yml").write_text(OWN_RULE)
    titles = _titles(ws)
    bundled = len(list(rules_dir().rglob("*.yml")))
    assert titles["7c9a3e10-4b2d-4f6a-8e1c-2d3f4a5b6c70"] == "Prompt mentions Project Falcon"
    assert BUNDLED_ID in titles and len(titles) >= bundled // 2


def test_a_workspace_rule_with_a_bundled_id_replaces_it(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    before = _titles(ws)
    original = (rules_dir() / "openai" / "api_key_unrestricted.yml").read_text()
    (ws.root / "detections").mkdir()
    (ws.root / "detections" / "stricter.yml").write_text(
        original.replace(
            "title: OpenAI API key created or updated with all or administrative permissions",
            "title: Any OpenAI API key created (tuned)",
        )
    )
    after = _titles(ws)
    assert after[BUNDLED_ID] == "Any OpenAI API key created (tuned)"
    assert len(after) == len(before)  # replaced, not added


def test_the_bundled_pack_can_be_turned_off(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, '[detect]\nbundled = false\nrules = ["mine"]\n')
    (ws.root / "mine").mkdir()
    (ws.root / "mine" / "falcon.yml").write_text(OWN_RULE)
    assert list(_titles(ws).values()) == ["Prompt mentions Project Falcon"]
    off = _workspace(tmp_path / "off", "[detect]\nbundled = false\n")
    with pytest.raises(SentinelError, match="no detection rules"):
        compile_rules(off, None)


def test_given_rules_replace_everything(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "falcon.yml").write_text(OWN_RULE)
    assert list(_titles(ws, [tmp_path / "only"]).values()) == ["Prompt mentions Project Falcon"]
