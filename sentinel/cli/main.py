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
        share_global_options(command)
        cli.add_command(command)


def share_global_options(command: click.Command) -> None:
    """Let `--workspace` and `--quiet` follow the subcommand too (`sentinel sql -w DIR …`).

    The group's own options stay the documented form; these copies only overwrite the
    group's values in `ctx.obj` when given. A short form is left out where a command
    already uses that letter for something else.
    """
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            share_global_options(sub)
        return
    taken = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    if "--workspace" in taken:
        return
    command.params.append(
        click.Option(
            [o for o in ("--workspace", "-w") if o not in taken],
            type=click.Path(file_okay=False),
            expose_value=False,
            is_eager=True,
            callback=_set_root("workspace"),
            help="Workspace directory (same as before the command).",
        )
    )
    command.params.append(
        click.Option(
            [o for o in ("--quiet", "-q") if o not in taken],
            is_flag=True,
            default=None,
            expose_value=False,
            is_eager=True,
            callback=_set_root("quiet"),
            help="No progress bars or chatter (same as before the command).",
        )
    )


def _set_root(key: str) -> Any:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            ctx.find_root().ensure_object(dict)[key] = value

    return callback


def main() -> None:
    # Everything sentinel writes (lake, quarantine, state.db and its WAL) is owner-only.
    os.umask(0o077)
    _register()
    cli(prog_name="sentinel")
