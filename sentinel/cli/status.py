"""`sentinel status`: the daemon's state and the lag of every watched file."""

from __future__ import annotations

import json
import sys

import click

from sentinel.output import printable
from sentinel.workspace import Workspace


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Text for people, JSON for monitoring.")
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Show whether `sentinel watch` runs, how far it has read, and what it found.

    Per file: bytes read (offset) against its size, the lag between them, the time of
    its last committed batch and its quarantined records. Then detection: the last
    scan, the alerts, and the newest open incidents. Exit code 0 when the daemon
    runs, 1 when it does not (for monitoring checks).

    Example: sentinel status --format json
    """
    from sentinel.watch.status import collect

    report = collect(Workspace.open(ctx.obj["workspace"]))
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        if report.running:
            pid = f" (pid {report.pid})" if report.pid else ""
            click.echo(f"daemon: running{pid} since {report.since}, "
                       f"last heartbeat {report.heartbeat}")
            click.echo(f"        {report.events:,} events and {report.quarantined:,} "
                       f"quarantined since start; last batch {report.last_batch_at or '-'}"
                       + ("; STORE PAUSED (see the daemon's log)" if report.store_paused else ""))
        else:
            since = f" since {report.since}" if report.since else ""
            click.echo(f"daemon: stopped{since}")
        click.echo(f"files: {len(report.files)} watched, {report.lag:,} bytes behind")
        found = report.detection
        click.echo(f"detection: last scan {found.last_scan_at or '-'}; {found.alerts:,} "
                   f"alerts, {found.open_incidents:,} open incidents")
        for case in found.newest:
            click.echo(f"  #{case.incident_id} {case.severity:<8} {case.status:<12} "
                       f"{case.event_count:>6,} events  {printable(case.title)}")
        if report.files:
            rows = [("FILE", "SOURCE", "OFFSET", "SIZE", "LAG", "LAST BATCH", "QUARANTINED")]
            rows += [
                (printable(f.path), f.source or "-", f"{f.offset:,}", f"{f.size:,}",
                 f"{f.lag:,}", f.last_batch_at or "-", str(f.quarantined))
                for f in report.files
            ]
            widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
            for row in rows:
                click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                          strict=True)).rstrip())
    sys.exit(0 if report.running else 1)
