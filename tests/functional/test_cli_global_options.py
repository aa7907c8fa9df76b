"""`--workspace` and `--quiet` work before or after the subcommand; hunt tables are narrow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sentinel.cli.main import cli, share_global_options
from sentinel.workspace import Workspace
from tests.conftest import litellm_line, write_lines


def _sentinel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )


def test_workspace_after_the_subcommand(workspace: Workspace, tmp_path: Path) -> None:
    log = write_lines(tmp_path / "a.jsonl", [litellm_line(i) for i in range(3)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ws = str(workspace.root)
    assert _sentinel("ingest", "--workspace", ws, "-q", str(log), cwd=elsewhere).returncode == 0
    for args in (
        ("sql", "--workspace", ws, "SELECT count(*) AS n FROM events"),
        ("sql", "-w", ws, "--format", "json", "SELECT count(*) AS n FROM events"),
        ("--workspace", ws, "sql", "SELECT count(*) AS n FROM events"),
        ("sql", f"--workspace={ws}", "SELECT count(*) AS n FROM events"),
    ):
        result = _sentinel(*args, cwd=elsewhere)
        assert result.returncode == 0, result.stderr
        assert "3" in result.stdout
    # A value after the subcommand wins over the one before it.
    result = _sentinel("-w", str(elsewhere), "sql", "-w", ws, "SELECT 1 AS one", cwd=elsewhere)
    assert result.returncode == 0, result.stderr


def test_every_command_accepts_the_global_options() -> None:
    from sentinel.cli import commands

    def leaves(command: object) -> list[object]:
        import click

        if isinstance(command, click.Group):
            return [leaf for sub in command.commands.values() for leaf in leaves(sub)]
        return [command]

    for command in commands.ALL:
        share_global_options(command)
        for leaf in leaves(command):
            opts = {o for p in leaf.params for o in p.opts}  # type: ignore[attr-defined]
            assert {"--workspace", "--quiet"} <= opts, leaf
    assert cli.name == "cli"
