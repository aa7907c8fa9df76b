"""`sentinel init` and `sentinel ingest`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from sentinel.cli.exits import EXIT_PARTIAL
from sentinel.workspace import Workspace

if TYPE_CHECKING:
    from sentinel.ingest.engine import IngestReport


@click.command()
@click.argument("directory", required=False)
@click.pass_context
def init(ctx: click.Context, directory: str | None) -> None:
    """Create a workspace: commented sentinel.toml, lake, case store, secret key.

    Owner-only permissions (0700/0600): the workspace holds customer data. Running it
    again on an existing workspace completes it, checks its sentinel.toml (exit 2 on a
    problem, as `sentinel config check`) and changes nothing else. A non-empty
    directory that is not a workspace is refused.

    Example: sentinel init ./sentinel-data
    """
    from sentinel.pii.catalog import check_config_file

    notes: list[str] = []
    ws = Workspace.init(directory or ctx.obj["workspace"], notes)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    problems = check_config_file(ws.config_path)
    for problem in problems:
        click.echo(problem.message, err=True)
    if problems:
        click.echo(f"Workspace at {ws.root}, but its config has {len(problems)} problem(s): "
                   "fix them, then run `sentinel config check`", err=True)
        sys.exit(2)
    click.echo(f"Workspace ready at {ws.root}")
    click.echo(f"  config:  {ws.config_path}")
    click.echo(f"Next: sentinel --workspace {ws.root} ingest /path/to/logs")


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--source", "-s", metavar="NAME", help="Force the log format instead of recognising it."
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Summary format on stdout.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[str, ...], source: str | None, fmt: str) -> None:
    """Load log files (files, directories, globs, .gz) into the lake, exactly once.

    Re-ingesting a file adds nothing; appended lines are picked up. Malformed records
    go to the quarantine with file, offset and reason. Files met in a directory or glob
    that are not logs (README, empty, binary) are ignored with a note. Exit code 0 when
    every log was read, 1 when a named file or a log could not be read whole
    (unreadable, unknown format, damaged .gz, not a regular file), 2 on usage errors
    (e.g. an unknown --source).

    Example: sentinel ingest /var/log/litellm/ 'exports/*.json.gz' --source litellm
    """
    from sentinel.cli.progress import ingest_progress
    from sentinel.exceptions import SourceError
    from sentinel.ingest.engine import ingest_paths, resolve_formats
    from sentinel.runtime import Runtime

    if source is not None:
        try:
            resolve_formats(Workspace.open(ctx.obj["workspace"]), source)
        except SourceError as exc:
            raise click.BadParameter(exc.message, param_hint="'--source'") from exc
    quiet = ctx.obj["quiet"]
    with Runtime.open(ctx.obj["workspace"]) as rt:
        report = ingest_paths(rt, paths, source=source, progress=ingest_progress(quiet))
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for line in summary_lines(report):
            click.echo(line)
    echo_file_problems(report, quiet)
    if report.failed:
        sys.exit(EXIT_PARTIAL)


def echo_file_problems(report: IngestReport, quiet: bool) -> None:
    """Files not (wholly) ingested, on stderr: ignored ones (not logs) and held last
    lines unless quiet; skipped and incomplete files always."""
    if not quiet:
        for ignored in report.ignored:
            click.echo(f"ignored {ignored.path}: {ignored.skipped}", err=True)
        for held in report.held:
            click.echo(
                f"waiting {held.path}: its last line ({held.held:,} bytes) has no newline yet "
                "and is not a whole JSON record; it is read once complete", err=True,
            )
    for skipped in report.skipped:
        click.echo(f"skipped {skipped.path}: {skipped.skipped}", err=True)
    for incomplete in report.incomplete:
        click.echo(
            f"incomplete {incomplete.path}: {incomplete.incomplete} "
            f"({incomplete.events:,} events loaded before it)", err=True,
        )


def summary_lines(report: IngestReport) -> list[str]:
    """Human summary of an IngestReport (shared with `sentinel demo`)."""
    lines = [
        f"Ingested {report.events:,} events from "
        f"{len(report.files) - len(report.skipped) - len(report.ignored)} "
        f"file(s) in {report.seconds:.1f}s"
    ]
    for source, count in sorted(report.events_by_source.items()):
        lines.append(f"  {source:<14} {count:>10,}")
    lines.append(f"PII/secret findings: {report.pii_findings:,}")
    if report.quarantined:
        lines.append(
            f"Quarantined {report.quarantined:,} record(s): see the quarantine/ folder "
            "(file, offset and reason for each)"
        )
    return lines
