"""Every command is documented: in the README and with a help text ending in an example."""

from __future__ import annotations

from pathlib import Path

import click

from sentinel.cli.commands import every

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _commands() -> list[tuple[str, click.Command]]:
    found = []
    for command in every():
        found.append((command.name or "", command))
        if isinstance(command, click.Group):
            found += [(f"{command.name} {name}", sub) for name, sub in command.commands.items()]
    return found


def test_every_command_is_in_the_readme() -> None:
    missing = [name for name, _ in _commands() if f"sentinel {name}" not in README]
    assert not missing, f"commands not documented in README.md: {missing}"


def test_every_command_help_ends_with_an_example() -> None:
    lacking = [
        name for name, command in _commands()
        if not isinstance(command, click.Group) and "Example" not in (command.help or "")
    ]
    assert not lacking, f"help text without an example: {lacking}"
