"""`sentinel tui`: the on-call dashboard (also what `sentinel` alone opens on a terminal)."""

from __future__ import annotations

import sys

import click

from sentinel.workspace import Workspace


@click.command("tui")
@click.pass_context
def tui(ctx: click.Context) -> None:
    """Open the dashboard: incident queue, evidence, playbooks, SQL console, sources.

    Keys are shown in the footer; ctrl+p opens the command palette. Needs a terminal.

    Example: sentinel --workspace ./ws tui
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.UsageError("the dashboard needs a terminal; use `sentinel sql` or scan")
    ws = Workspace.open(ctx.obj["workspace"])
    from sentinel.tui.app import run  # Textual is loaded only for this command

    run(ws)
