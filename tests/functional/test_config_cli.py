"""`sentinel config check` and `sentinel init`: config problems found up front, directories
respected."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from sentinel.workspace import Workspace

BAD = """\
[privacy]
store_text = "masekd"

[[pii.detectors]]
name = "slow"
pattern = "(a+)+(?=b)"

[[pii.detectors]]
name = "emp"
pattern = "EMP-[0-9]+"
validator = 5
"""


def test_config_check_reports_every_problem_with_lines(workspace: Workspace, run_cli) -> None:
    ok = run_cli("config", "check", check=True)
    assert ok.stdout.strip().endswith("sentinel.toml: OK") and ok.stderr == ""
    workspace.config_path.write_text(BAD, encoding="utf-8")
    result = run_cli("config", "check")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    where = str(workspace.config_path)
    assert re.match(rf"{re.escape(where)}:2(:\d+)?: 'store_text'", lines[0])
    assert "did you mean 'masked'" in lines[0]
    assert re.match(rf"{re.escape(where)}:6(:\d+)?: detector 'slow': bad regex for RE2", lines[1])
    assert re.match(rf"{re.escape(where)}:11(:\d+)?: 'validator' must be str", lines[2])
    assert lines[3].endswith("3 problem(s)")
    assert "Traceback" not in result.stderr


def test_config_check_of_a_named_file(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "other.toml"
    path.write_text('[pii]\ndetectors = 5\n', encoding="utf-8")
    result = run_cli("config", "check", str(path))
    assert result.returncode == 2
    where = re.escape(str(path))
    assert re.search(rf"{where}:2(:\d+)?: 'detectors' must be an array", result.stderr)
    missing = run_cli("config", "check", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "not a file" in missing.stderr


def test_commands_on_a_bad_config_exit_2_without_traceback(workspace: Workspace, run_cli) -> None:
    workspace.config_path.write_text(BAD, encoding="utf-8")
    result = run_cli("hunt", "--type", "credit_card")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "sentinel config check" in result.stderr


def test_init_validates_an_existing_config(workspace: Workspace, run_cli) -> None:
    workspace.config_path.write_text(BAD, encoding="utf-8")
    result = run_cli("init", str(workspace.root))
    assert result.returncode == 2
    assert "detector 'slow': bad regex for RE2" in result.stderr
    assert workspace.config_path.read_text(encoding="utf-8") == BAD  # left as it was


def test_init_refuses_a_non_empty_directory_that_is_no_workspace(tmp_path: Path, run_cli) -> None:
    target = tmp_path / "project"
    target.mkdir(mode=0o755)
    (target / "notes.txt").write_text("mine", encoding="utf-8")
    before = stat.S_IMODE(target.stat().st_mode)
    result = run_cli("init", str(target))
    assert result.returncode == 2 and "not empty and is not a sentinel workspace" in result.stderr
    assert f"sentinel init {target / 'sentinel-data'}" in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == before
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_init_says_when_it_restricts_an_empty_directory(tmp_path: Path, run_cli) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    target.chmod(0o755)
    result = run_cli("init", str(target), check=True)
    assert "mode changed from 0755 to 0700" in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    target.chmod(0o750)  # an existing workspace keeps its mode, with a note
    again = run_cli("init", str(target), check=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert "chmod 700" in again.stderr
