"""The `sentinel` command group.

Every command is a few lines over a library function. Expected failures are
`SentinelError`s: they are printed on stderr as `title: message` and the process exits
with code 2 (usage/configuration) or 3 (runtime) — never with a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from sentinel import __version__
from sentinel.exceptions import ConfigError, SentinelError, WorkspaceError

EXIT_USAGE = 2
EXIT_RUNTIME = 3


class SentinelGroup(click.Group):
    """A click group that turns SentinelError into one readable line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SentinelError as exc:
            click.echo(f"{exc.title}: {exc.message}", err=True)
            code = EXIT_USAGE if isinstance(exc, ConfigError | WorkspaceError) else EXIT_RUNTIME
            sys.exit(code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=SentinelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sentinel")
@click.option(
    "--workspace",
    "-w",
    envvar="SENTINEL_HOME",
    type=click.Path(file_okay=False),
    default="sentinel-data",
    show_default=True,
    help="Workspace directory (or SENTINEL_HOME).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or chatter on stderr.")
@click.pass_context
def cli(ctx: click.Context, workspace: str, quiet: bool) -> None:
    """Sentinel: incident response and audit-log forensics for AI usage.

    Example: sentinel --workspace ./ws ingest /var/log/litellm/
    """
    ctx.obj = {"workspace": workspace, "quiet": quiet}


def _register() -> None:
    # One module per command group; each exposes click commands added here.
    from sentinel.cli import commands

    for command in commands.ALL:
        cli.add_command(command)


def main() -> None:
    # Everything sentinel writes (lake, quarantine, state.db and its WAL) is owner-only.
    os.umask(0o077)
    _register()
    cli(prog_name="sentinel")
