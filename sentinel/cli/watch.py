"""`sentinel watch`: the daemon in the foreground (for systemd, a container, a terminal)."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="One line per event on stderr: key=value text or JSON.")
@click.pass_context
def watch(ctx: click.Context, log_format: str) -> None:
    """Tail the [[watch]] paths of sentinel.toml into the lake and detect on arrival.

    Runs in the foreground until SIGTERM or SIGINT (finishes the batch being written,
    exits 0); SIGHUP reloads sentinel.toml (an invalid file is logged and the old
    config kept). One daemon per workspace: a second one exits with code 3. Fits
    systemd Type=notify (or simple); `sentinel status` shows what it is doing.

    Example: sentinel --workspace /var/lib/sentinel watch --log-format json
    """
    from sentinel.watch.daemon import run_daemon

    sys.exit(run_daemon(ctx.obj["workspace"], log_format))
