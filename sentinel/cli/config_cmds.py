"""`sentinel config check`: every problem of a `sentinel.toml`, before anything runs on it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sentinel.workspace import CONFIG_NAME

EXIT_OK, EXIT_PROBLEMS = 0, 2


@click.group("config")
def config() -> None:
    """Check the workspace configuration (sentinel.toml).

    Example: sentinel config check
    """


@click.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def check(ctx: click.Context, path: Path | None) -> None:
    """Validate sentinel.toml: keys, types, and every custom [[pii.detectors]] pattern.

    Reports every problem as `file:line: what is wrong` on stderr (with a "did you mean"
    where one fits) and exits 2; exits 0 when the file is valid. PATH defaults to the
    workspace's sentinel.toml. Custom patterns are compiled with RE2, the engine that
    runs them, so a pattern that passes here cannot fail at ingest.

    Example: sentinel config check ./sentinel-data/sentinel.toml
    """
    from sentinel.pii.catalog import check_config_file

    target = path or Path(ctx.obj["workspace"]) / CONFIG_NAME
    if not target.is_file():
        raise click.BadParameter(f"{target} is not a file", param_hint="PATH")
    problems = check_config_file(target)
    for problem in problems:
        click.echo(problem.message, err=True)
    if problems:
        click.echo(f"{target}: {len(problems)} problem(s)", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"{target}: OK")


config.add_command(check)
