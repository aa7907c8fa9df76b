"""Working through an incident's playbook: what is next, running, finishing, approving.

Progress lives in `state.db` (`store.progress`), so a responder can stop at any point
and anyone can carry on later, from the CLI or the TUI.

Rules the runner enforces:
- A step runs or finishes only when every step in its `after:` list is finished
  (done, skipped or approved).
- `run` executes automatic steps (query, notify, command) in order and stops at the
  first step that needs a person (manual, approval, an unconfirmed command) or whose
  gates are not met. A failed step is recorded and the run goes on with the steps that
  do not depend on it: a webhook that is down never blocks the response.
- A command runs only when the caller's `confirm` callback says yes to its exact argv.
- An approval is requested by whoever reaches it (`run`), and granted only by one of its
  named approvers who is not that requester.
- Skipping needs a note; so does marking a failed automatic step done by hand.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sentinel.exceptions import PlaybookError
from sentinel.lake.query import open_lake
from sentinel.respond import params
from sentinel.respond.playbook import Deadline, DeadlineState, Playbook, load_playbooks
from sentinel.respond.steps import ApprovalStep, CommandStep, Step, StepContext
from sentinel.store import audit, progress
from sentinel.store import incidents as store
from sentinel.store.triage import mask_free_text
from sentinel.workspace import Workspace

Confirm = Callable[[Step, list[str]], bool]


@dataclass(frozen=True)
class Ran:
    step_id: str
    state: str
    """done, failed, requested, or waiting (needs a person / confirmation / gates)."""
    message: str


def playbook_for(ws: Workspace, con: sqlite3.Connection, incident_id: int) -> Playbook:
    case = store.get(con, incident_id)
    if not case.playbook:
        raise PlaybookError(
            f"incident {incident_id} has no playbook; set one with "
            f"`sentinel playbook show {incident_id} --use NAME`"
        )
    books = load_playbooks(ws)
    if case.playbook not in books:
        raise PlaybookError(f"incident {incident_id} uses playbook {case.playbook!r}, not found")
    return books[case.playbook]


def blocking(step: Step, states: dict[str, progress.StepState]) -> list[str]:
    """The gates of `step` that are not finished yet."""
    return [g for g in step.after if not (g in states and states[g].finished)]


def next_step(book: Playbook, states: dict[str, progress.StepState]) -> Step | None:
    """The first unfinished step (gated or not): what the responder looks at next."""
    for step in book.steps:
        if not (step.id in states and states[step.id].finished):
            return step
    return None


def run(
    ws: Workspace,
    con: sqlite3.Connection,
    incident_id: int,
    *,
    step_id: str | None = None,
    actor: str | None = None,
    confirm: Confirm | None = None,
) -> list[Ran]:
    """Run the next automatic steps (or just `step_id`); see the module docstring."""
    book = playbook_for(ws, con, incident_id)
    todo = [book.step(step_id)] if step_id else list(book.steps)
    done: list[Ran] = []
    values: dict[str, Any] | None = None
    for step in todo:
        states = progress.states(con, incident_id)
        current = states.get(step.id)
        if current and current.finished:
            if step_id:
                raise PlaybookError(f"step {step.id} is already {current.state}")
            continue
        gates = blocking(step, states)
        if gates and step_id:
            raise PlaybookError(f"step {step.id} waits for {', '.join(gates)}")
        if gates:
            done.append(Ran(step.id, "waiting", f"waits for {', '.join(gates)}"))
            break
        if isinstance(step, ApprovalStep):
            if not current or current.state != "requested":
                progress.save_step(con, incident_id, playbook=book.name, step_id=step.id,
                                   kind=step.kind, state="requested", actor=actor)
            who = ", ".join(step.approvers)
            done.append(Ran(step.id, "requested", f"approval requested from {who}"))
            break
        if not step.automatic:
            done.append(Ran(step.id, "waiting", "a manual step: finish it with done or skip"))
            break
        if values is None:
            values = params.incident_values(ws, con, incident_id)
        confirmed = False
        if isinstance(step, CommandStep):
            argv = step.command_line(values)
            confirmed = confirm is not None and confirm(step, argv)
            if not confirmed:
                done.append(Ran(step.id, "waiting", "not confirmed; the command did not run"))
                break
        ctx = StepContext(values, lambda: open_lake(ws),
                          {h.name: h for h in ws.config.incidents.webhooks}, confirmed, ws.root)
        try:
            outcome = step.execute(ctx)
        except PlaybookError as exc:
            outcome_state, detail, evidence = "failed", {"error": exc.message}, []
        else:
            outcome_state, detail = outcome.state, outcome.detail
            evidence = [(e.kind, e.title, e.content, e.rows) for e in outcome.evidence]
        progress.save_step(con, incident_id, playbook=book.name, step_id=step.id,
                           kind=step.kind, state=outcome_state, detail=detail,
                           evidence=evidence, actor=actor)
        message = str(detail.get("error", "")) or f"{len(evidence)} evidence item(s) attached"
        done.append(Ran(step.id, outcome_state, message))
        if step_id:
            break
    return done


def finish(
    ws: Workspace,
    con: sqlite3.Connection,
    incident_id: int,
    step_id: str,
    state: str,
    *,
    note: str = "",
    actor: str | None = None,
    checked: list[str] | None = None,
) -> int:
    """Mark a step `done` or `skipped` by hand; returns the timeline entry."""
    book = playbook_for(ws, con, incident_id)
    step = book.step(step_id)
    states = progress.states(con, incident_id)
    current = states.get(step.id)
    if current and current.finished:
        raise PlaybookError(f"step {step.id} is already {current.state}")
    if state not in ("done", "skipped"):
        raise PlaybookError(f"a step is finished as done or skipped, not {state!r}")
    if isinstance(step, ApprovalStep) and state == "done":
        raise PlaybookError(f"step {step.id} is an approval: one of "
                            f"{', '.join(step.approvers)} runs `sentinel playbook approve`")
    if step.automatic and state == "done" and not note.strip():
        raise PlaybookError(f"step {step.id} is a {step.kind} step: `run` it, or say in a note "
                            "how it was done instead")
    if state == "skipped" and not note.strip():
        raise PlaybookError("skipping a step needs a note saying why (--note)")
    gates = blocking(step, states)
    if gates:
        raise PlaybookError(f"step {step.id} waits for {', '.join(gates)}")
    detail: dict[str, Any] = {}
    if checked is not None:
        detail["checklist"] = checked
    return progress.save_step(con, incident_id, playbook=book.name, step_id=step.id,
                              kind=step.kind, state=state, note=mask_free_text(note),
                              detail=detail, actor=actor)


def approve(
    ws: Workspace,
    con: sqlite3.Connection,
    incident_id: int,
    step_id: str,
    *,
    actor: str | None = None,
    note: str = "",
) -> int:
    book = playbook_for(ws, con, incident_id)
    step = book.step(step_id)
    if not isinstance(step, ApprovalStep):
        raise PlaybookError(f"step {step.id} is a {step.kind} step, not an approval")
    who = actor or audit.whoami()
    states = progress.states(con, incident_id)
    current = states.get(step.id)
    if current is None or current.state != "requested":
        state = current.state if current else "not requested"
        raise PlaybookError(f"step {step.id} is {state}; `sentinel playbook run "
                            f"{incident_id}` requests the approval first")
    if who not in step.approvers:
        raise PlaybookError(f"{who} may not approve step {step.id}; approvers: "
                            f"{', '.join(step.approvers)} (use --as NAME)")
    if who == current.actor:
        raise PlaybookError(f"{who} requested step {step.id} and cannot also approve it")
    return progress.save_step(con, incident_id, playbook=book.name, step_id=step.id,
                              kind=step.kind, state="approved", note=mask_free_text(note),
                              detail={"requested_by": current.actor}, actor=who)


def deadlines(
    con: sqlite3.Connection, book: Playbook, incident_id: int
) -> list[DeadlineState]:
    case = store.get(con, incident_id)
    return deadlines_of(con, {book.name: book}, [case])[incident_id]


class DeadlineCase(Protocol):
    """What `deadlines_of` reads of an incident (a `store.Incident` or a lighter row)."""

    @property
    def incident_id(self) -> int: ...
    @property
    def playbook(self) -> str | None: ...
    @property
    def created_at(self) -> str: ...
    @property
    def first_seen(self) -> str: ...


def deadlines_of(
    con: sqlite3.Connection, books: dict[str, Playbook], cases: Sequence[DeadlineCase]
) -> dict[int, list[DeadlineState]]:
    """`deadlines` of many incidents (each with its playbook from `books`) in two queries.

    The TUI's queue shows the nearest deadline of every open incident; one query per
    incident would cost seconds at 10,000. Incidents without a known playbook are left out.
    """
    cases = [c for c in cases if c.playbook is not None and c.playbook in books]
    if not cases:
        return {}
    ids = json.dumps([c.incident_id for c in cases])
    finished: dict[int, set[str]] = {}
    for incident_id, step_id, state in con.execute(
        "SELECT incident_id, step_id, state FROM playbook_steps "
        "WHERE incident_id IN (SELECT value FROM json_each(?))", (ids,),
    ):
        if state in progress.FINISHED:
            finished.setdefault(incident_id, set()).add(step_id)
    acknowledged: dict[int, str] = {}
    for incident_id, ts in con.execute(
        "SELECT incident_id, ts FROM audit WHERE action = 'incident.status' "
        "AND json_extract(detail, '$.to') = 'acknowledged' "
        "AND incident_id IN (SELECT value FROM json_each(?)) ORDER BY seq", (ids,),
    ):
        acknowledged.setdefault(incident_id, ts)
    result: dict[int, list[DeadlineState]] = {}
    for case in cases:
        starts: dict[str, str | None] = {
            "detection": case.created_at, "first_seen": case.first_seen,
            "acknowledged": acknowledged.get(case.incident_id),
        }
        done = finished.get(case.incident_id, set())
        states = []
        for deadline in books[str(case.playbook)].deadlines:
            within, start = Deadline.split_due(deadline.due)
            begun = starts[start]
            due: datetime | None = store.parse_ts(begun) + within if begun else None
            states.append(DeadlineState(deadline.label, due, bool(deadline.step in done)))
        result[case.incident_id] = states
    return result
