"""`sentinel audit`: the tamper-evident timeline: its head, a full check, and bundle checks.

Exit codes: 0 intact; 1 verification failed (the problems are printed, first the first
tampered or missing entry); 2/3 usage or runtime errors as for every command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sentinel.exceptions import SentinelError
from sentinel.output import printable
from sentinel.store import audit
from sentinel.store.db import open_db
from sentinel.workspace import Workspace

EXIT_TAMPERED = 1


@click.group("audit")
def audit_group() -> None:
    """The keyed, hash-chained audit trail and incident timelines.

    Example: sentinel audit verify
    """


@audit_group.command("head")
@click.pass_context
def head(ctx: click.Context) -> None:
    """Print the chain's head as SEQ:HASH, to log somewhere sentinel cannot write.

    A later `audit verify --anchor SEQ:HASH` then detects deleted or rewritten entries.

    Example: sentinel audit head
    """
    ws = Workspace.open(ctx.obj["workspace"])
    con = open_db(ws.state_db)
    try:
        click.echo(audit.head(con).anchor())
    finally:
        con.close()


@audit_group.command("verify")
@click.option("--anchor", metavar="SEQ:HASH", help="A head printed earlier by `audit head`.")
@click.pass_context
def verify(ctx: click.Context, anchor: str | None) -> None:
    """Recompute the whole chain; name the first tampered or missing entry.

    Example: sentinel audit verify
    """
    ws = Workspace.open(ctx.obj["workspace"])
    con = open_db(ws.state_db)
    try:
        report = audit.check(con, anchor)
    finally:
        con.close()
    if report.legacy:
        click.echo(f"note: {report.legacy} entries predate the keyed chain "
                   "(verified with the old unkeyed hash)", err=True)
    if report.ok:
        click.echo(f"ok: {report.entries} entries, head {report.head.anchor()}"
                   + (", anchor found" if anchor else ""))
        return
    click.echo(f"TAMPERED: first bad entry {report.first_bad}", err=True)
    for problem in report.problems:
        click.echo(printable(problem))
    sys.exit(EXIT_TAMPERED)


@audit_group.command("verify-bundle")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.pass_context
def verify_bundle(ctx: click.Context, directory: Path) -> None:
    """Check an exported evidence bundle against its manifest (and the workspace key).

    Every file's SHA-256 must match the manifest; when the bundle was exported from this
    workspace, each timeline entry's keyed hash is recomputed too.

    Example: sentinel incidents export <ID> -o case/ && sentinel audit verify-bundle case/
    """
    from sentinel.respond.bundle import verify_bundle as check_bundle

    key = None
    try:
        ws = Workspace.open(ctx.obj["workspace"])
        con = open_db(ws.state_db)
        try:
            key = audit.chain_key(con)
        finally:
            con.close()
    except SentinelError:  # no workspace or key here: check the manifest alone
        key = None
    problems = check_bundle(directory, key)
    if problems:
        for problem in problems:
            click.echo(printable(problem))
        sys.exit(EXIT_TAMPERED)
    scope = "files and timeline entries" if key else "files (no workspace key: entries unchecked)"
    click.echo(f"ok: {scope} match the manifest")
