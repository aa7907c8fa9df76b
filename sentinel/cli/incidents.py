"""`sentinel incidents`: list, read and work cases (status, assignee, notes, merge, split, export).

Every change is one call into `sentinel.store.triage` and lands in the case's timeline
with the actor: the OS user, or the name given with `--as` (the OS user is recorded too).
Everything printed goes through `output.emit`, so PII is masked.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import pyarrow as pa

from sentinel.output import emit, json_line, plain, printable
from sentinel.store import audit, incidents, ledger, triage
from sentinel.store.db import open_db
from sentinel.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "json", "csv")


def actor_option(func: F) -> F:
    """`--as NAME`: who is acting, when it is not the OS user (e.g. an approver's role)."""
    return click.option(
        "--as", "actor", metavar="NAME", help="Act as NAME in the timeline (default: OS user)."
    )(func)


def format_option(func: F) -> F:
    return click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
        help="Output format.",
    )(func)


@contextmanager
def case_store(ctx: click.Context) -> Iterator[tuple[Workspace, sqlite3.Connection]]:
    ws = Workspace.open(ctx.obj["workspace"])
    con = open_db(ws.state_db)
    try:
        yield ws, con
    finally:
        con.close()


def rows_table(rows: list[dict[str, Any]], columns: list[str]) -> pa.Table:
    """Rows as an Arrow table; lists and dicts as JSON text, everything else as is."""
    data = {c: [_cell(r.get(c)) for r in rows] for c in columns}
    return pa.table({c: pa.array(v, type=_type(v)) for c, v in data.items()})


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _type(values: list[Any]) -> pa.DataType:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.int64()
    for index, value in enumerate(values):
        if value is not None and not isinstance(value, str):
            values[index] = str(value)
    return pa.string()


def heading(fmt: str, text: str) -> None:
    if fmt == "table":
        click.echo(f"\n{printable(text)}")


LIST_COLUMNS = [
    "incident_id", "status", "severity", "title", "group_key", "first_seen", "last_seen",
    "alert_count", "event_count", "assignee", "playbook",
]


@click.group("incidents")
def incidents_group() -> None:
    """Cases opened from alerts: one per real problem, with evidence and a timeline.

    Example: sentinel incidents list --open
    """


@incidents_group.command("list")
@click.option("--status", type=click.Choice(incidents.STATUSES), help="Only this status.")
@click.option("--open", "open_only", is_flag=True, help="Only new, acknowledged, contained.")
@format_option
@click.pass_context
def list_cmd(ctx: click.Context, status: str | None, open_only: bool, fmt: str) -> None:
    """List incidents, newest first (merged ones are shown inside their target).

    Example: sentinel incidents list --status new
    """
    with case_store(ctx) as (_, con):
        found = incidents.list_incidents(con, status=status, include_closed=not open_only)
    emit(rows_table([c.as_dict() for c in found], LIST_COLUMNS), fmt=fmt)


@incidents_group.command("show")
@click.argument("incident_id", type=int)
@format_option
@click.pass_context
def show(ctx: click.Context, incident_id: int, fmt: str) -> None:
    """Show one incident: summary, alerts, events, exposure ledger, playbook, timeline.

    Example: sentinel incidents show <ID>
    """
    from sentinel.respond.bundle import case_document, mask_deep

    with case_store(ctx) as (ws, con):
        doc = case_document(ws, con, incident_id)
        exposure = ledger.exposure(ws, con, incident_id)
        related = ledger.related_incidents(ws, con, incident_id)
        merged = [incident_id, *doc["merged_from"]]
        timeline = [e.__dict__ for e in audit.entries(con, merged)]
    if fmt == "json":
        doc["ledger"] = exposure.drop_columns(["digests"]).to_pylist()
        doc["timeline"] = timeline
        doc["related"] = related
        click.echo(json_line(mask_deep(plain(doc))))
        return
    case = doc["incident"]
    summary = [{"field": k, "value": None if v is None else str(_cell(v))} for k, v in case.items()]
    emit(rows_table(summary, ["field", "value"]), fmt=fmt)
    heading(fmt, "Alerts")
    emit(rows_table(doc["alerts"], ["alert_id", "rule_id", "level", "first_ts", "last_ts",
                                    "event_count"]), fmt=fmt)
    heading(fmt, "Events (provenance)")
    emit(rows_table(doc["events"], ["event_id", "ts", "source", "source_file",
                                    "source_offset", "lake_file"]), fmt=fmt)
    heading(fmt, "Exposure ledger (counts and digests, never values)")
    emit(exposure.drop_columns(["digests"]), fmt=fmt)
    if related:
        heading(fmt, "Related incidents (a shared address, user or key within a day)")
        emit(rows_table(related, ["incident_id", "title", "shared"]), fmt=fmt)
    if doc["playbook"]:
        heading(fmt, f"Playbook {doc['playbook']['name']}")
        emit(rows_table(doc["playbook"]["deadlines"], ["label", "due_at", "met"]), fmt=fmt)
        emit(rows_table(doc["playbook"]["steps"], ["id", "kind", "state", "by", "title"]),
             fmt=fmt)
    heading(fmt, "Timeline")
    emit(rows_table(timeline, ["seq", "ts", "actor", "action", "incident_id", "detail"]),
         fmt=fmt)


def _status_command(name: str, status: str, summary: str) -> click.Command:
    @incidents_group.command(name)
    @click.argument("incident_id", type=int)
    @click.option("--note", default="", help="Why (kept in the timeline, masked).")
    @actor_option
    @click.pass_context
    def command(ctx: click.Context, incident_id: int, note: str, actor: str | None) -> None:
        with case_store(ctx) as (_, con):
            seq = triage.set_status(con, incident_id, status, actor=actor, note=note)
        click.echo(f"incident {incident_id}: {status} (timeline entry {seq})")

    command.help = f"{summary}\n\nExample: sentinel incidents {name} <ID> --note \"…\""
    return command


ack = _status_command("ack", "acknowledged", "Acknowledge an incident: someone is on it.")
contain = _status_command("contain", "contained", "Mark an incident contained.")
resolve = _status_command(
    "resolve", "resolved", "Resolve an incident (a recurrence opens a new one)."
)
false_positive = _status_command(
    "false-positive", "false_positive", "Close an incident as a false positive."
)


@incidents_group.command("assign")
@click.argument("incident_id", type=int)
@click.argument("assignee")
@actor_option
@click.pass_context
def assign(ctx: click.Context, incident_id: int, assignee: str, actor: str | None) -> None:
    """Assign an incident to a responder.

    Example: sentinel incidents assign <ID> alice
    """
    with case_store(ctx) as (_, con):
        seq = triage.assign(con, incident_id, assignee, actor=actor)
    click.echo(f"incident {incident_id}: assigned to {printable(assignee)} (entry {seq})")


@incidents_group.command("note")
@click.argument("incident_id", type=int)
@click.argument("text")
@actor_option
@click.pass_context
def note(ctx: click.Context, incident_id: int, text: str, actor: str | None) -> None:
    """Add a note to an incident's timeline (PII in it is masked before it is stored).

    Example: sentinel incidents note <ID> "vendor ticket 4711 opened"
    """
    with case_store(ctx) as (_, con):
        seq = triage.add_note(con, incident_id, text, actor=actor)
    click.echo(f"incident {incident_id}: note added (entry {seq})")


@incidents_group.command("merge")
@click.argument("target", type=int)
@click.argument("others", type=int, nargs=-1, required=True)
@actor_option
@click.pass_context
def merge(ctx: click.Context, target: int, others: tuple[int, ...], actor: str | None) -> None:
    """Merge incidents into TARGET (their alerts and events move; they point to it).

    Example: sentinel incidents merge <ID> <OTHER-ID>
    """
    with case_store(ctx) as (_, con):
        triage.merge(con, target, list(others), actor=actor)
    click.echo(f"merged {', '.join(map(str, others))} into incident {target}")


@incidents_group.command("split")
@click.argument("incident_id", type=int)
@click.argument("alert_ids", nargs=-1, required=True)
@actor_option
@click.pass_context
def split(
    ctx: click.Context, incident_id: int, alert_ids: tuple[str, ...], actor: str | None
) -> None:
    """Move some alerts (see `incidents show`) out into a new incident.

    Example: sentinel incidents split <ID> <ALERT-ID>
    """
    with case_store(ctx) as (_, con):
        new_id = triage.split(con, incident_id, list(alert_ids), actor=actor)
    click.echo(f"split into new incident {new_id}")


@incidents_group.command("export")
@click.argument("incident_id", type=int)
@click.option("--output", "-o", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="A new directory for the bundle (created 0700).")
@actor_option
@click.pass_context
def export(ctx: click.Context, incident_id: int, out_dir: Path, actor: str | None) -> None:
    """Write a self-contained, masked evidence bundle with a SHA-256 manifest.

    Check it later with `sentinel audit verify-bundle DIR`.

    Example: sentinel incidents export <ID> --output case-bundle/
    """
    from sentinel.respond.bundle import export_bundle

    with case_store(ctx) as (ws, con):
        manifest = export_bundle(ws, con, incident_id, out_dir, actor=actor)
    for name, digest in manifest["files"].items():
        click.echo(f"{digest}  {printable(str(out_dir / name))}")
    head = manifest["audit_head"]
    click.echo(f"audit head at export: {head['seq']}:{head['hash']}", err=True)
