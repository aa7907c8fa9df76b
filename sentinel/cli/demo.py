"""`sentinel demo`: a workspace full of realistic logs and planted incidents, in seconds.

The first thing a new user runs (`make run`). It generates the deterministic demo data
set into `<workspace>/demo-logs/`, ingests it like any other logs, and says what to type
next. Re-running with the same seed adds nothing: the files are byte-identical and
ingest is exactly-once.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime

import click

from sentinel.workspace import Workspace

NEXT_STEPS = (
    "scan --stats",
    'sql "SELECT source, count(*) FROM events GROUP BY 1"',
    "hunt --type credit_card",
    "rules test",
)


@click.command()
@click.option("--seed", type=int, default=7, show_default=True,
              help="Random seed: the same seed writes byte-identical logs.")
@click.option("--events", type=click.IntRange(min=1000), default=50_000, show_default=True,
              help="Inference events to generate (LiteLLM + Bedrock).")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Day after the last day of data (UTC).  [default: 2026-11-20]")
@click.option("--no-ingest", is_flag=True, help="Only write the log files.")
@click.pass_context
def demo(
    ctx: click.Context, seed: int, events: int, end: datetime | None, no_ingest: bool
) -> None:
    """Generate two weeks of demo AI-usage logs with planted incidents, and ingest them.

    Writes LiteLLM, Bedrock, CloudTrail and OpenAI audit logs into <workspace>/demo-logs
    (see MANIFEST.md there for the files and the planted incidents), creates the
    workspace if needed, and loads the logs into its lake.

    Example: sentinel --workspace ./sentinel-data demo --seed 7
    """
    from sentinel.demo import generate

    quiet = ctx.obj["quiet"]
    ws = Workspace.init(ctx.obj["workspace"])
    if ws.demo_dir.exists():
        shutil.rmtree(ws.demo_dir)  # ours alone; stale files of a larger run would linger
    started = time.monotonic()
    manifest = generate(ws.demo_dir, seed=seed, events=events,
                        end=end.replace(tzinfo=UTC) if end else None)
    records = sum(manifest.counts.values())
    click.echo(
        f"Wrote {records:,} records ({manifest.inference_events:,} inference events) in "
        f"{len(manifest.files)} files to {ws.demo_dir} in {time.monotonic() - started:.1f}s"
    )
    click.echo(
        f"  {manifest.users} users, {manifest.teams} teams, {manifest.keys} API keys, "
        f"{manifest.start:%Y-%m-%d} to {manifest.end:%Y-%m-%d}; "
        f"{len(manifest.incidents)} planted incidents (see MANIFEST.md)"
    )
    if not no_ingest:
        from sentinel.cli.progress import ingest_progress
        from sentinel.cli.workspace_cmds import echo_file_problems, summary_lines
        from sentinel.ingest.engine import ingest_paths
        from sentinel.runtime import Runtime

        # The log files themselves, not the directory: MANIFEST.md is not a log.
        with Runtime(ws) as rt:
            report = ingest_paths(rt, manifest.paths, progress=ingest_progress(quiet))
        for line in summary_lines(report):
            click.echo(line)
        echo_file_problems(report, quiet)
        _scan_summary(ws, quiet)
    click.echo(f"Workspace: {ws.root}")
    click.echo("Next, try:")
    prefix = "sentinel "
    if _non_default(ctx):
        prefix += f"--workspace {ctx.obj['workspace']} "
    steps = ([f"ingest {ws.demo_dir}"] if no_ingest else []) + list(NEXT_STEPS)
    for step in steps:
        click.echo(f"  {prefix}{step}")


def _scan_summary(ws: Workspace, quiet: bool) -> None:
    """Scan what was ingested and print the alerts per rule (what `make run` shows)."""
    from sentinel.cli.progress import scan_progress
    from sentinel.scan import run_scan, summarise

    report = run_scan(ws, progress=scan_progress(quiet))
    click.echo(
        f"Scanned with {len(report.stats)} rules: {len(report.alerts)} new alerts, "
        f"{report.incidents_opened} incidents opened in {report.seconds:.1f}s"
    )
    for level, title, alerts, events in summarise(report):
        click.echo(f"  {level:<13} {alerts:>4} alerts {events:>6} events  {title}")
    for problem in report.problems:
        click.echo(f"error: {problem}", err=True)


def _non_default(ctx: click.Context) -> bool:
    """Whether --workspace/SENTINEL_HOME was given (then the hints must repeat it)."""
    if ctx.parent is None:
        return False
    source = ctx.parent.get_parameter_source("workspace")
    return source is not None and source.name != "DEFAULT"
