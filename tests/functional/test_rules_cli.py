"""The rule pack through real CLIs: `sigma check`, `sigma convert -t sentinel`,
`sentinel rules list|test|convert`, run as subprocesses from the repository root."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BAD_PACK = REPO / "tests" / "data" / "detect" / "bad_pack"
# Tag validators that download MITRE ATT&CK / D3FEND data on first use.
NETWORK_VALIDATORS = ("attacktag", "d3_fendtag")


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def sentinel(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "sentinel", *args, cwd=cwd)


def sigma_cli() -> str:
    found = shutil.which("sigma", path=str(BIN)) or shutil.which("sigma")
    if found is None:
        pytest.skip("sigma-cli is not installed")
    return found


def documented_sigma_check() -> list[str]:
    """The `sigma check` command detections/README.md gives (the offline-safe one)."""
    readme = (REPO / "detections" / "README.md").read_text(encoding="utf-8")
    lines = [line.split("#")[0].split() for line in readme.splitlines()]
    commands = [words for words in lines if words[:2] == ["sigma", "check"]]
    assert len(commands) == 1, commands
    return commands[0]


def test_documented_sigma_check_passes_offline():
    command = documented_sigma_check()
    for name in NETWORK_VALIDATORS:  # what keeps it from downloading MITRE data
        assert ["--exclude", name] in [command[i : i + 2] for i in range(len(command))]
    result = run(sigma_cli(), *command[1:])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Found 0 errors, 0 condition errors and 0 issues" in result.stdout
    assert "Traceback" not in result.stderr


def test_sigma_convert_prints_sql_for_every_rule():
    result = run(sigma_cli(), "convert", "-t", "sentinel", "-p", "sentinel", "detections/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("SELECT * FROM events WHERE source IN (") >= 30
    assert result.stdout.count("WITH matched AS (") >= 7  # the correlations


def test_sigma_convert_from_another_directory(tmp_path):
    rule = REPO / "detections" / "aws" / "iam_privileged_policy_attached.yml"
    result = run(
        sigma_cli(), "convert", "-t", "sentinel", "-p", "sentinel", str(rule), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "/AdministratorAccess" in result.stdout


def test_rules_test_passes_on_the_pack():
    result = sentinel("rules", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert " 0 rule problems" in result.stderr


def test_rules_test_fails_on_a_bad_pack():
    result = sentinel("rules", "test", "--rules", str(BAD_PACK))
    assert result.returncode == 1
    assert "unknown_field.yml:7: unknown field 'actor_usr'" in result.stderr
    assert "yaml_syntax_error.yml:6: YAML syntax error" in result.stderr
    assert "Traceback" not in result.stderr


def test_rules_list_shows_metadata():
    result = sentinel("rules", "list")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["id", "title", "level", "source", "tags"]
    assert "Burst of failed AI requests from one key" in result.stdout
    assert "cloudtrail" in result.stdout and "attack.t1110" in result.stdout


def test_rules_list_and_test_from_another_directory(tmp_path):
    """No `detections/` in the working directory: the bundled pack is used."""
    listed = sentinel("rules", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "Burst of failed AI requests from one key" in listed.stdout
    assert listed.stdout == sentinel("rules", "list").stdout  # the same pack as the checkout's
    tested = sentinel("rules", "test", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_rules_list_prefers_a_local_detections_dir(tmp_path):
    local = tmp_path / "detections"
    local.mkdir()
    shutil.copy(REPO / "detections" / "openai" / "api_key_unrestricted.yml", local)
    listed = sentinel("rules", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 3, listed.stdout  # header, rule line, one rule


def test_rules_convert_by_path_and_by_id():
    by_path = sentinel("rules", "convert", "detections/openai/api_key_unrestricted.yml")
    assert by_path.returncode == 0, by_path.stderr
    assert by_path.stdout.startswith("SELECT * FROM events WHERE source IN ('openai_audit')")
    by_id = sentinel("rules", "convert", "1d2e3f4a-5b6c-4d7e-9f8a-0b1c2d3e1116")
    assert by_id.stdout == by_path.stdout


def test_rules_convert_error_is_one_line():
    result = sentinel(
        "rules", "convert", str(BAD_PACK / "unknown_field.yml"), "--rules", str(BAD_PACK)
    )
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Detection rule error: ")
    assert "unknown_field.yml:7" in lines[0]


PORTKEY = """
[sources.portkey]
match = "$.trace_id"
[sources.portkey.logsource]
product = "ai_gateway"
service = "portkey"
[sources.portkey.fields]
ts = "$.created_at"
event_id = "$.trace_id"
model = "$.model"
"""
PORTKEY_RULE = """\
title: Portkey gpt-4o request
id: 5a1de000-0000-4000-8000-00000000aaaa
status: test
level: low
logsource: {product: ai_gateway, service: portkey}
detection:
  sel: {model: gpt-4o}
  condition: sel
"""


def test_rules_list_and_convert_see_the_workspace_sources(tmp_path):
    """A `[sources.NAME]` of the workspace is a log source rules can name (issue 10)."""
    ws = tmp_path / "ws"
    assert sentinel("init", str(ws)).returncode == 0
    with (ws / "sentinel.toml").open("a") as config:
        config.write(PORTKEY)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "portkey.yml").write_text(PORTKEY_RULE)
    shutil.copy(REPO / "detections" / "ai_gateway" / "prompt_injection_phrases.yml", rules)

    listed = sentinel("-w", str(ws), "rules", "list", "--rules", str(rules))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("  ")[1].strip(): line for line in listed.stdout.splitlines()[2:]}
    assert rows["Portkey gpt-4o request"].split()[-1] == "portkey"
    # `product: ai_gateway` alone selects every gateway source, the configured one too.
    assert "portkey" in rows["Prompt injection or jailbreak phrasing in a prompt"]

    converted = sentinel("-w", str(ws), "rules", "convert", str(rules / "portkey.yml"),
                         "--rules", str(rules))
    assert converted.returncode == 0, converted.stderr
    assert converted.stdout.startswith("SELECT * FROM events WHERE source IN ('portkey')")

    # Without the workspace the source is unknown: a located error, not a traceback.
    elsewhere = sentinel("-w", str(tmp_path / "none"), "rules", "convert",
                         str(rules / "portkey.yml"), "--rules", str(rules))
    assert elsewhere.returncode == 3
    assert "unsupported logsource" in elsewhere.stderr and "Traceback" not in elsewhere.stderr
