"""`--workspace` and `--quiet` work before or after the subcommand; hunt tables are narrow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from sentinel.cli.main import cli
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
    """Through the group, as a run looks them up: every leaf has the shared options."""

    def leaves(command: click.Command) -> list[click.Command]:
        if isinstance(command, click.Group):
            return [leaf for sub in command.commands.values() for leaf in leaves(sub)]
        return [command]

    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert {"scan", "sql", "tui", "watch", "incidents"} <= set(names)
    for name in names:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        for leaf in leaves(command):
            opts = {o for p in leaf.params for o in p.opts}
            assert {"--workspace", "--quiet"} <= opts, leaf
    assert cli.name == "cli"


def test_a_command_imports_only_its_own_modules() -> None:
    """`sentinel status` never imports the TUI, the rule compiler or the baselines."""
    code = (
        "import sys\n"
        "from sentinel.cli.main import main\n"
        "sys.argv = ['sentinel', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sentinel.cli.tui', 'sentinel.cli.baselines') "
        "if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "baselines" in result.stdout  # --help lists every command: all loaded
    code = code.replace("'--help'", "'status', '--help'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_module_entry_runs_the_cli(tmp_path: Path) -> None:
    """`python -m sentinel` and `python -m sentinel.cli.main` both run the CLI (the second
    imported the module and exited 0 without doing anything)."""
    for module in ("sentinel", "sentinel.cli.main"):
        result = subprocess.run([sys.executable, "-m", module, "--version"],
                                capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "version" in result.stdout, module
