"""`sentinel playbook`: see and work through an incident's response plan.

`show` lists the steps with their state and the deadlines; `step` shows what to do next;
`run` executes the automatic steps (queries, notifications, and commands after an
explicit confirmation); `done`, `skip` and `approve` finish the steps a person does.
Progress is stored per incident, so any responder can pick it up where it stopped.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from sentinel.cli.incidents import actor_option, case_store, format_option, heading, rows_table
from sentinel.output import emit, printable
from sentinel.respond import runner
from sentinel.respond.playbook import load_playbooks
from sentinel.respond.steps import ApprovalStep, CommandStep, ManualStep, QueryStep, Step
from sentinel.store import progress, triage


@click.group("playbook")
def playbook_group() -> None:
    """Work through an incident's playbook, step by step.

    Example: sentinel playbook show <ID>
    """


@playbook_group.command("show")
@click.argument("incident_id", type=int)
@click.option("--use", "use", metavar="NAME", help="Give the incident this playbook first.")
@format_option
@actor_option
@click.pass_context
def show(ctx: click.Context, incident_id: int, use: str | None, fmt: str,
         actor: str | None) -> None:
    """The incident's playbook: deadlines, and each step with its state.

    Example: sentinel playbook show <ID>
    """
    with case_store(ctx) as (ws, con):
        if use is not None:
            books = load_playbooks(ws)
            if use not in books:
                raise click.UsageError(f"no playbook {use!r}; known: {', '.join(sorted(books))}")
            triage.set_playbook(con, incident_id, use, actor=actor)
        book = runner.playbook_for(ws, con, incident_id)
        states = progress.states(con, incident_id)
        deadlines = runner.deadlines(con, book, incident_id)
    if fmt == "table":
        click.echo(f"{printable(book.name)}: {printable(book.title)}")
    now = datetime.now(UTC)
    emit(rows_table([
        {"deadline": d.label, "due_at": d.due_at.isoformat() if d.due_at else "(not started)",
         "state": "met" if d.met else ("OVERDUE" if d.due_at and d.due_at < now else "open")}
        for d in deadlines
    ], ["deadline", "due_at", "state"]), fmt=fmt)
    heading(fmt, "Steps")
    emit(rows_table([
        {"step": s.id, "kind": s.kind, "state": states[s.id].state if s.id in states else
         ("blocked" if runner.blocking(s, states) else "ready"),
         "by": states[s.id].actor if s.id in states else None, "title": s.title,
         "after": ", ".join(s.after) or None}
        for s in book.steps
    ], ["step", "kind", "state", "by", "title", "after"]), fmt=fmt)


@playbook_group.command("step")
@click.argument("incident_id", type=int)
@click.argument("step_id", required=False)
@click.pass_context
def step(ctx: click.Context, incident_id: int, step_id: str | None) -> None:
    """What to do for a step (default: the next unfinished one).

    Example: sentinel playbook step <ID>
    """
    with case_store(ctx) as (ws, con):
        book = runner.playbook_for(ws, con, incident_id)
        states = progress.states(con, incident_id)
        chosen = book.step(step_id) if step_id else runner.next_step(book, states)
    if chosen is None:
        click.echo("Every step is finished. Export the bundle and resolve the incident.")
        return
    click.echo(_describe(chosen, states, incident_id))


def _describe(step: Step, states: dict[str, progress.StepState], incident_id: int) -> str:
    state = states[step.id].state if step.id in states else "pending"
    lines = [f"{step.id} ({step.kind}, {state}): {step.title}"]
    gates = runner.blocking(step, states)
    if gates:
        lines.append(f"Waits for: {', '.join(gates)}")
    text = getattr(step, "instructions", "")
    if text:
        lines += ["", text.rstrip()]
    if isinstance(step, ManualStep) and step.checklist:
        lines += ["", *(f"[ ] {item}" for item in step.checklist)]
    if isinstance(step, QueryStep):
        lines += ["", "SQL (parameters bound from the incident):", step.sql.rstrip()]
    if isinstance(step, CommandStep):
        lines += ["", f"Command (asks before running): {step.argv}"]
    if isinstance(step, ApprovalStep):
        lines += ["", f"Approvers: {', '.join(step.approvers)}"]
    lines.append("")
    if isinstance(step, ApprovalStep):
        lines.append(f"Next: sentinel playbook run {incident_id}  (requests it), then "
                     f"sentinel playbook approve {incident_id} {step.id} --as {step.approvers[0]}")
    elif step.automatic:
        lines.append(f"Next: sentinel playbook run {incident_id} --step {step.id}")
    else:
        lines.append(f"Next: sentinel playbook done {incident_id} {step.id} --note \"…\"")
    return printable("\n".join(lines)).replace("\\n", "\n")


@playbook_group.command("run")
@click.argument("incident_id", type=int)
@click.option("--step", "step_id", metavar="STEP", help="Run only this step.")
@click.option("--yes", is_flag=True, help="Confirm command steps without asking.")
@actor_option
@click.pass_context
def run(ctx: click.Context, incident_id: int, step_id: str | None, yes: bool,
        actor: str | None) -> None:
    """Run the next automatic steps (queries, notifications, confirmed commands).

    Stops at a step that needs a person; requests an approval when it reaches one.

    Example: sentinel playbook run <ID>
    """

    def confirm(step: Step, argv: list[str]) -> bool:
        shown = " ".join(printable(a) for a in argv)
        if yes:
            click.echo(f"running: {shown}", err=True)
            return True
        if not sys.stdin.isatty():
            click.echo(f"step {step.id} would run: {shown}; confirm with --yes", err=True)
            return False
        return click.confirm(f"Run {shown}?", default=False, err=True)

    with case_store(ctx) as (ws, con):
        results = runner.run(ws, con, incident_id, step_id=step_id, actor=actor, confirm=confirm)
    for ran in results:
        click.echo(f"{ran.step_id}: {ran.state} ({printable(ran.message)})")


@playbook_group.command("done")
@click.argument("incident_id", type=int)
@click.argument("step_id")
@click.option("--note", default="", help="What was done (kept in the timeline, masked).")
@click.option("--check", "checked", multiple=True, metavar="ITEM", help="A checklist item done.")
@actor_option
@click.pass_context
def done(ctx: click.Context, incident_id: int, step_id: str, note: str,
         checked: tuple[str, ...], actor: str | None) -> None:
    """Mark a step done.

    Example: sentinel playbook done <ID> contain --note "key blocked at the gateway"
    """
    with case_store(ctx) as (ws, con):
        seq = runner.finish(ws, con, incident_id, step_id, "done", note=note, actor=actor,
                            checked=list(checked) or None)
    click.echo(f"{step_id}: done (timeline entry {seq})")


@playbook_group.command("skip")
@click.argument("incident_id", type=int)
@click.argument("step_id")
@click.option("--note", required=True, help="Why it is skipped (required).")
@actor_option
@click.pass_context
def skip(ctx: click.Context, incident_id: int, step_id: str, note: str,
         actor: str | None) -> None:
    """Skip a step, saying why.

    Example: sentinel playbook skip <ID> page-privacy --note "privacy team told by phone"
    """
    with case_store(ctx) as (ws, con):
        seq = runner.finish(ws, con, incident_id, step_id, "skipped", note=note, actor=actor)
    click.echo(f"{step_id}: skipped (timeline entry {seq})")


@playbook_group.command("approve")
@click.argument("incident_id", type=int)
@click.argument("step_id")
@click.option("--note", default="", help="The approver's remark (timeline, masked).")
@actor_option
@click.pass_context
def approve(ctx: click.Context, incident_id: int, step_id: str, note: str,
            actor: str | None) -> None:
    """Approve a requested approval step, as one of its named approvers.

    Example: sentinel playbook approve <ID> dpo-sign-off --as dpo
    """
    with case_store(ctx) as (ws, con):
        seq = runner.approve(ws, con, incident_id, step_id, actor=actor, note=note)
    click.echo(f"{step_id}: approved (timeline entry {seq})")
