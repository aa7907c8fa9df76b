"""The docs are tested: every `sentinel` command shown in them runs on a demo workspace.

Commands come from the shell code blocks of README.md, docs/*.md and detections/README.md,
and from the `Example:` line of every command's help. Each runs through the real CLI
against one demo workspace (`sentinel demo`, default seed: the data the README
describes) and must exit as documented: 0, or 1 for `scan` (alerts found). A command
that prints a Python traceback or a warning fails whatever its exit code.

A block written as a terminal session (`$ sentinel …` followed by its output) also pins
the output: the lines shown must appear, in order, in what the command prints now.

Some commands cannot run here: they watch forever, need a terminal, write into system
paths or name files that only exist on a user's machine. They are listed in `SKIP` with
the reason, so a new command is tested unless someone decides otherwise.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from sentinel.cli.commands import every

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "detections/README.md"]
SENTINEL = Path(sys.executable).with_name("sentinel")

SKIP: dict[str, str] = {
    "watch": "runs until stopped (tested by tests/functional/test_watch_*.py)",
    "tui": "needs a terminal (tested through App.run_test())",
    "demo": "builds the workspace every other command here runs on",
    "init": "creates workspaces elsewhere (tested in test_workspace_cli)",
}
EXIT_OK = {"scan": {0, 1}, "audit verify-bundle": {0}, "status": {1}}  # status: no daemon
_PLACEHOLDER = re.compile(r"<[^>]+>|\bPATH\b|/var/|/etc/|invocation-logs/|exports/|ARN\b")
_BLOCK = re.compile(r"```(sh|console|bash|shell)\n(.*?)```", re.S)


@dataclass(frozen=True)
class DocCommand:
    where: str
    argv: tuple[str, ...]
    expected: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        words = [w for w in self.argv if not w.startswith("-")]
        return " ".join(words[:2])


def doc_commands() -> list[DocCommand]:
    found: list[DocCommand] = []
    for path in DOCS:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            line_no = text[: match.start()].count("\n") + 2
            found.extend(_block_commands(match.group(2), f"{path.name}:{line_no}"))
    return found


def _block_commands(block: str, where: str) -> list[DocCommand]:
    commands: list[DocCommand] = []
    lines = block.replace("\\\n", " ").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        prompt = line.startswith("$ ")
        line = line.removeprefix("$ ")
        i += 1
        argv = _sentinel_argv(line)
        if argv is None:
            continue
        expected: list[str] = []
        while prompt and i < len(lines) and not lines[i].startswith("$ ") and lines[i].strip():
            expected.append(lines[i].rstrip())
            i += 1
        commands.append(DocCommand(where, argv, tuple(expected)))
    return commands


def _sentinel_argv(line: str) -> tuple[str, ...] | None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    if not words or Path(words[0]).name != "sentinel":
        return None
    if _PLACEHOLDER.search(line):
        return None
    return tuple(_without_workspace(words[1:]))


def _without_workspace(words: list[str]) -> list[str]:
    """The command without the workspace it names (the test supplies its own)."""
    out: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word in ("--workspace", "-w"):
            skip = True
            continue
        if word.startswith("--workspace="):
            continue
        out.append(word)
    return out


def help_examples() -> list[DocCommand]:
    found: list[DocCommand] = []

    def visit(command: click.Command, prefix: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                visit(sub, f"{prefix} {name}")
            return
        for line in (command.help or "").splitlines():
            if "Example:" in line:
                argv = _sentinel_argv(line.split("Example:", 1)[1].strip())
                if argv is not None:
                    found.append(DocCommand(f"`sentinel{prefix} -h`", argv))

    for command in every():
        visit(command, f" {command.name}")
    return found


@pytest.fixture(scope="module")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default demo, in a directory where the docs' relative paths resolve.

    Commands run with this directory as their working directory: files they write
    (`--output leaks.csv`) land here, and `detections/` and `baselines/` point at the
    repository's pack.
    """
    cwd = tmp_path_factory.mktemp("docs")
    (cwd / "detections").symlink_to(REPO / "detections")
    (cwd / "baselines").symlink_to(REPO / "baselines")
    result = _run(cwd / "sentinel-data", "demo")
    assert result.returncode == 0, result.stderr
    return cwd / "sentinel-data"


def _run(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "SENTINEL_HOME": str(root)}
    return subprocess.run(
        [str(SENTINEL), "--quiet", "--workspace", str(root), *argv],
        capture_output=True, text=True, timeout=600, cwd=root.parent, env=env,
        stdin=subprocess.DEVNULL,
    )


def _cases() -> list[DocCommand]:
    seen: set[tuple[str, ...]] = set()
    cases = []
    for command in [*doc_commands(), *help_examples()]:
        if command.argv in seen or command.name.split(" ")[0] in SKIP:
            continue
        seen.add(command.argv)
        cases.append(command)
    return cases


@pytest.mark.parametrize("command", _cases(), ids=lambda c: f"{c.where} {' '.join(c.argv)}")
def test_documented_command_runs(command: DocCommand, demo_workspace: Path) -> None:
    result = _run(demo_workspace, *command.argv)
    allowed = EXIT_OK.get(command.name, EXIT_OK.get(command.name.split(" ")[0], {0}))
    shown = f"{command.where}: sentinel {shlex.join(command.argv)}\n{result.stdout}{result.stderr}"
    assert result.returncode in allowed, shown
    assert "Traceback" not in result.stderr, shown
    assert "Warning" not in result.stderr, shown
    position = 0
    lines = result.stdout.splitlines()
    for want in command.expected:
        while position < len(lines) and lines[position].rstrip() != want:
            position += 1
        assert position < len(lines), f"{shown}\nthe documented line drifted: {want!r}"


def test_the_docs_show_commands() -> None:
    assert len(doc_commands()) >= 10
    assert len(help_examples()) >= 5
