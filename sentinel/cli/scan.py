"""`sentinel scan`: run the detection rules over the new events and print the new alerts.

A thin layer over `sentinel.scan.run_scan`. Alerts go to stdout (masked like every
output, see `sentinel.output`); rule problems, `--stats` and the summary go to stderr.

Exit codes: 0 no new alert at or above `--fail-on`; 1 new alerts at or above it; 2 usage
or configuration error (including a rule that does not compile, when nothing reached
the threshold); 3 runtime failure.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import click
import pyarrow as pa

from sentinel.cli.progress import scan_progress
from sentinel.output import emit
from sentinel.scan import ScanReport, parse_since, run_scan
from sentinel.store.alerts import LEVELS
from sentinel.workspace import Workspace

FAIL_ON = ("info", "low", "medium", "high", "critical")
ALERT_COLUMNS = (
    "alert_id", "level", "rule_title", "group_key", "first_ts", "last_ts", "event_count",
    "rule_id",
)
EXIT_ALERTS = 1
EXIT_USAGE = 2


def alerts_table(report: ScanReport) -> pa.Table:
    rows = [
        {
            "alert_id": a.alert_id, "level": a.level, "rule_title": a.rule_title,
            "group_key": a.group_key, "first_ts": a.first_ts, "last_ts": a.last_ts,
            "event_count": a.event_count, "rule_id": a.rule_id,
        }
        for a in sorted(
            report.alerts, key=lambda a: (-LEVELS.index(a.level) if a.level in LEVELS else 0,
                                          a.first_ts)
        )
    ]
    schema = pa.schema([(c, pa.int64() if c == "event_count" else pa.string())
                        for c in ALERT_COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def _print_stats(report: ScanReport) -> None:
    click.echo(f"{'rule':<44} {'kind':<11} {'seconds':>8} {'rows read':>10} "
               f"{'files':>5} {'matches':>8} {'alerts':>6} {'peak MB':>7}", err=True)
    for s in sorted(report.stats, key=lambda s: -s.seconds):
        click.echo(
            f"{s.title[:44]:<44} {s.kind:<11} {s.seconds:>8.3f} {s.rows_read:>10,} "
            f"{s.files_read:>5} {s.matches:>8,} {s.alerts:>6} {s.peak_mb:>7,.0f}", err=True,
        )
    if report.peaks:
        phases = ", ".join(f"{k} {v:,.0f} MB" for k, v in report.peaks.items())
        click.echo(f"  peak RSS after each phase: {phases} (peak MB: once that rule ran)",
                   err=True)
    if report.phases:
        phases = ", ".join(f"{k} {v:.2f} s" for k, v in report.phases.items())
        click.echo(f"  time per phase: {phases}", err=True)
    shared = sorted({s.shared for s in report.stats if s.shared and s.kind == "detection"})
    for note in shared:
        click.echo(f"  detection rules share one {note}: its time is shown for each", err=True)
    for s in report.stats:
        if s.kind == "correlation" and s.shared:
            click.echo(f"  {s.title[:60]}: {s.shared}", err=True)


@click.command("scan")
@click.option("--since", "since_text", metavar="DURATION|TIMESTAMP",
              help="Rescan events from then on (e.g. 36h, 7d, 2026-11-01T00:00), "
                   "whatever the rules' watermarks say.")
@click.option("--rules", "rules", type=click.Path(exists=True, path_type=Path), multiple=True,
              help="Run only these rule directories or files (repeatable). Default: the "
                   "bundled pack plus <workspace>/detections and [detect] rules.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "jsonl", "csv"]),
              default="table", show_default=True, help="How the new alerts are printed.")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default="high", show_default=True,
              help="Exit 1 when a new alert is at or above this level.")
@click.option("--stats", is_flag=True, help="Print per-rule time, rows read and matches.")
@click.pass_context
def scan(
    ctx: click.Context, since_text: str | None, rules: tuple[Path, ...], fmt: str,
    fail_on: str, stats: bool,
) -> None:
    """Run every enabled rule over the events ingested since it last ran.

    New alerts are recorded in state.db (the `alerts` view of `sentinel sql`) and opened
    as incidents; a second scan with nothing new ingested finds nothing and reads no
    lake file. Two scans started together run one after the other.

    Exit codes: 0 nothing new at or above --fail-on, 1 new alerts at or above it,
    2 usage or configuration error, 3 runtime failure.

    Example: sentinel scan --fail-on high --format jsonl
    """
    try:
        since = parse_since(since_text) if since_text else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    quiet = ctx.obj["quiet"]
    ws = Workspace.open(ctx.obj["workspace"])
    report = run_scan(
        ws, rules=list(rules) or None, since=since, progress=scan_progress(quiet)
    )
    for problem in report.problems:
        click.echo(f"error: {problem}", err=True)
    table = alerts_table(report)
    # No alert, no row to print (nor to mask: the masking engine is a start-up cost).
    if fmt == "json":
        buffer = io.StringIO()
        if table.num_rows:
            emit(table, fmt="json", stream=buffer)
        alerts = [json.loads(line) for line in buffer.getvalue().splitlines() if line]
        click.echo(json.dumps({"scan_id": report.scan_id, "alerts": alerts}, indent=2))
    elif fmt == "jsonl":
        if table.num_rows:
            emit(table, fmt="json")
    elif fmt == "csv":
        emit(table, fmt="csv")
    elif table.num_rows:
        emit(table, fmt="table", more_rows=0)
    if stats:
        _print_stats(report)
    if not quiet:
        click.echo(
            f"scan {report.scan_id}: {len(report.stats)} rules, {report.new_batches} new "
            f"batches, {report.files_read} files read, {len(report.alerts)} new alerts, "
            f"{report.incidents_opened} incidents opened, {report.seconds:.2f}s",
            err=True,
        )
    if report.at_or_above(fail_on):
        sys.exit(EXIT_ALERTS)
    if report.problems:
        sys.exit(EXIT_USAGE)
