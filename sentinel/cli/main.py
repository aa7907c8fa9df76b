"""The `sentinel` command group: every failure becomes one line and an exit code.

Every command is a few lines over a library function. The exit code comes from the
error's type (`sentinel.cli.exits`), never from a command. An expected error
(`SentinelError`) is one line on stderr, `title: location: message`, never a traceback.
An unexpected exception is a bug: one line naming it and a hint; the traceback only
with `SENTINEL_DEBUG=1`.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

import click

from sentinel import __version__
from sentinel.cli.exits import DEBUG_ENV, EXIT_OK, debugging, exit_code, render
from sentinel.exceptions import SentinelError


class SentinelGroup(click.Group):
    """A click group that turns every failure into one readable line and an exit code.

    Its commands are loaded by name from `sentinel.cli.commands` when first asked for,
    so a run imports the modules of the command it runs and no other."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from sentinel.cli import commands

        return sorted(set(commands.COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from sentinel.cli import commands

        if cmd_name not in self.commands and cmd_name in commands.COMMANDS:
            command = commands.load(cmd_name)
            share_global_options(command)
            self.add_command(command)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: it prints them and exits with its codes (usage = 2)
        except SentinelError as exc:
            if debugging():
                traceback.print_exc()
            click.echo(render(exc), err=True)
            sys.exit(exit_code(exc))
        except KeyboardInterrupt as exc:
            click.echo("Interrupted.", err=True)
            sys.exit(exit_code(exc))
        except BrokenPipeError:
            # `sentinel … | head`: the reader left. Not an error; keep Python's
            # shutdown from complaining about the closed stdout.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_OK)
        except Exception as exc:  # a bug: say so in one line, traceback on request
            if debugging():
                traceback.print_exc()
            detail = " ".join(str(exc).split())[:300]
            click.echo(
                f"Internal error: {type(exc).__name__}: {detail}\n"
                f"  This is a bug in sentinel. Run again with {DEBUG_ENV}=1 for the "
                "traceback, and please report it.",
                err=True,
            )
            sys.exit(exit_code(exc))


class _StderrWarnings(logging.Handler):
    """Warnings from the library (e.g. a plugin that fails to load) as `warning: …` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


def _log_warnings() -> None:
    # Warnings stay on with --quiet: they say something is wrong, they are not chatter.
    logger = logging.getLogger("sentinel")
    if not any(isinstance(h, _StderrWarnings) for h in logger.handlers):
        logger.addHandler(_StderrWarnings())
    logger.setLevel(logging.WARNING)
    # Still propagates: a host that configured logging (pytest, a service) sees them too.


@click.group(
    cls=SentinelGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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

    Exit codes: 0 success, 1 partial result (see each command), 2 usage or
    configuration error, 3 runtime failure. SENTINEL_DEBUG=1 shows tracebacks.

    Without a command, opens the dashboard (`sentinel tui`) on a terminal and prints
    this help otherwise.

    Example: sentinel --workspace ./ws ingest /var/log/litellm/
    """
    _log_warnings()
    ctx.obj = {"workspace": workspace, "quiet": quiet}
    if ctx.invoked_subcommand is None:
        tui = cli.get_command(ctx, "tui") if sys.stdin.isatty() and sys.stdout.isatty() else None
        if tui is not None:
            ctx.invoke(tui)
        else:
            click.echo(ctx.get_help())


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
    cli(prog_name="sentinel")


if __name__ == "__main__":  # `python -m sentinel.cli.main`, as `python -m sentinel`
    main()
