"""The table of top-level commands, imported only when one is used.

Each command module pulls in its own engines (DuckDB, pyarrow, pySigma, Textual), and
importing all of them cost a second on every run: `sentinel scan` from cron paid for
the baselines, rules and TUI modules it never touches. The group (`sentinel.cli.main`)
looks a command up here by name and imports its module then; `--help` imports them all
to list their summaries.
"""

from __future__ import annotations

import importlib

import click

COMMANDS: dict[str, str] = {
    "audit": "sentinel.cli.audit:audit_group",
    "baselines": "sentinel.cli.baselines:baselines_group",
    "config": "sentinel.cli.config_cmds:config",
    "demo": "sentinel.cli.demo:demo",
    "hunt": "sentinel.cli.hunt:hunt",
    "incidents": "sentinel.cli.incidents:incidents_group",
    "ingest": "sentinel.cli.workspace_cmds:ingest",
    "init": "sentinel.cli.workspace_cmds:init",
    "playbook": "sentinel.cli.playbook:playbook_group",
    "rules": "sentinel.cli.rules:rules",
    "scan": "sentinel.cli.scan:scan",
    "sources": "sentinel.cli.sources:sources",
    "sql": "sentinel.cli.sql:sql",
    "status": "sentinel.cli.status:status",
    "tui": "sentinel.cli.tui:tui",
    "watch": "sentinel.cli.watch:watch",
}
"""Command name → `module:attribute` of its click command."""


def load(name: str) -> click.Command:
    """The click command called `name` (a key of `COMMANDS`), importing its module."""
    module, _, attribute = COMMANDS[name].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command) or command.name != name:
        raise TypeError(f"{COMMANDS[name]} is not the click command {name!r}")
    return command


def every() -> list[click.Command]:
    """Every top-level command, in name order (imports all their modules)."""
    return [load(name) for name in COMMANDS]
