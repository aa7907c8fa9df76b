"""Working through a playbook: gating, query evidence, approvals, commands, resumability."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.exceptions import PlaybookError
from sentinel.ingest.engine import ingest_paths
from sentinel.respond import runner
from sentinel.respond.intake import open_incidents
from sentinel.respond.steps import Step
from sentinel.store import audit, progress
from sentinel.store.db import open_db
from sentinel.store.incidents import Alert, AlertEvent
from sentinel.workspace import Workspace
from tests.conftest import litellm_line, write_lines

PLAYBOOK = f"""\
name: test-book
title: Test
applies_to:
  titles: ["*card*"]
priority: 100
deadlines:
  - label: GDPR Art. 33 notification
    due: 72h from detection
    step: decide
steps:
  - id: scope
    kind: query
    title: Scope
    sql: |
      SELECT event_id, actor_user, prompt_text FROM events
      WHERE actor_key = :actor_key AND ts >= :first_seen ORDER BY event_id
  - id: contain
    kind: manual
    title: Contain
    instructions: Block the key.
    checklist: [blocked]
    after: [scope]
  - id: sign-off
    kind: approval
    title: Sign off
    approvers: [dpo]
    after: [contain]
  - id: echo
    kind: command
    title: Echo the key
    argv: ["{sys.executable}", "-c", "import sys; print('blocked', sys.argv[1])", "{{actor_key}}"]
    after: [sign-off]
  - id: decide
    kind: manual
    title: Decide
    instructions: Decide.
"""


@pytest.fixture()
def case(workspace: Workspace, tmp_path: Path) -> Iterator[tuple[Workspace, sqlite3.Connection]]:
    (workspace.root / "books").mkdir()
    (workspace.root / "books" / "test.yml").write_text(PLAYBOOK)
    workspace.config_path.write_text('[incidents]\nplaybooks = "books"\n')
    ws = Workspace.open(workspace.root)
    lines = [litellm_line(i, f"card 4111 1111 1111 1111 for order {i}") for i in range(3)]
    ingest_paths(ws, [write_lines(tmp_path / "gw.jsonl", lines)])
    con = open_db(ws.state_db)
    alert = Alert(
        "a1", "rule-card", "Payment card number sent", "high", "team-a-key",
        "2025-01-24T09:20:46+00:00", "2025-01-24T09:20:48+00:00", 3, ("attack.t1567",),
        tuple(AlertEvent(f"chatcmpl-{i:08d}", f"2025-01-24T09:20:4{6 + i}+00:00", "litellm")
              for i in range(3)),
    )
    [outcome] = open_incidents(ws, con, [alert])
    assert outcome.opened
    yield ws, con
    con.close()


def test_a_responder_works_through_the_whole_playbook(
    case: tuple[Workspace, sqlite3.Connection]
) -> None:
    ws, con = case
    book = runner.playbook_for(ws, con, 1)
    assert book.name == "test-book"
    [ran] = runner.run(ws, con, 1, actor="alice")[:1]
    assert (ran.step_id, ran.state) == ("scope", "done")
    [evidence] = progress.evidence_of(con, [1])
    assert evidence.rows == 3 and "chatcmpl-00000000" in evidence.content
    assert "4111 1111 1111 1111" not in evidence.content  # masked before it is stored
    # Gates: the approval waits for the manual step, so nobody can have requested it.
    with pytest.raises(PlaybookError, match="not requested; `sentinel playbook run 1`"):
        runner.approve(ws, con, 1, "sign-off", actor="dpo")
    with pytest.raises(PlaybookError, match="waits for sign-off"):
        runner.run(ws, con, 1, step_id="echo", confirm=lambda step, argv: True)
    runner.finish(ws, con, 1, "contain", "done", actor="alice", note="key blocked",
                  checked=["blocked"])
    ran = runner.run(ws, con, 1, actor="alice")
    assert [(r.step_id, r.state) for r in ran] == [("sign-off", "requested")]
    with pytest.raises(PlaybookError, match="alice may not approve"):
        runner.approve(ws, con, 1, "sign-off", actor="alice")
    with pytest.raises(PlaybookError, match="approval: one of dpo"):
        runner.finish(ws, con, 1, "sign-off", "done")
    runner.approve(ws, con, 1, "sign-off", actor="dpo", note="ok")
    # The command runs only with a confirmation of its exact argv.
    ran = runner.run(ws, con, 1, actor="alice", confirm=lambda step, argv: False)
    assert [(r.step_id, r.state) for r in ran] == [("echo", "waiting")]
    seen: list[list[str]] = []

    def yes(step: Step, argv: list[str]) -> bool:
        seen.append(argv)
        return True

    ran = runner.run(ws, con, 1, actor="alice", confirm=yes)
    assert [(r.step_id, r.state) for r in ran][0] == ("echo", "done")
    assert seen[0][-1] == "team-a-key"
    assert "blocked team-a-key" in progress.evidence_of(con, [1])[-1].content
    assert runner.deadlines(con, book, 1)[0].met is False
    with pytest.raises(PlaybookError, match="needs a note"):
        runner.finish(ws, con, 1, "decide", "skipped")
    runner.finish(ws, con, 1, "decide", "skipped", note="not personal data after all")
    assert runner.deadlines(con, book, 1)[0].met is True
    assert runner.next_step(book, progress.states(con, 1)) is None
    steps = [e for e in audit.entries(con, [1]) if e.action == "playbook.step"]
    assert [(e.detail["step"], e.detail["state"], e.actor) for e in steps] == [
        ("scope", "done", "alice"), ("contain", "done", "alice"),
        ("sign-off", "requested", "alice"), ("sign-off", "approved", "dpo"),
        ("echo", "done", "alice"), ("decide", "skipped", audit.whoami()),
    ]
    assert steps[0].detail["evidence"][0]["sha256"] == progress.evidence_of(con, [1])[0].sha256
    assert audit.check(con).ok


def test_a_requester_cannot_approve_their_own_request(
    case: tuple[Workspace, sqlite3.Connection]
) -> None:
    ws, con = case
    runner.run(ws, con, 1, actor="dpo")
    runner.finish(ws, con, 1, "contain", "done", actor="dpo")
    runner.run(ws, con, 1, actor="dpo")
    with pytest.raises(PlaybookError, match="dpo requested step sign-off and cannot also"):
        runner.approve(ws, con, 1, "sign-off", actor="dpo")


def test_a_finished_step_is_not_run_again(case: tuple[Workspace, sqlite3.Connection]) -> None:
    ws, con = case
    runner.run(ws, con, 1, step_id="scope")
    with pytest.raises(PlaybookError, match="already done"):
        runner.run(ws, con, 1, step_id="scope")
    with pytest.raises(PlaybookError, match="did you mean 'scope'"):
        runner.run(ws, con, 1, step_id="scop")


def test_an_option_like_value_is_not_passed_to_a_command(
    case: tuple[Workspace, sqlite3.Connection]
) -> None:
    ws, con = case
    step = runner.playbook_for(ws, con, 1).step("echo")
    with pytest.raises(PlaybookError, match="starts with '-'"):
        step.command_line({"actor_key": "--delete-everything"})  # type: ignore[attr-defined]
    assert sys.executable in step.command_line({"actor_key": "k"})  # type: ignore[attr-defined]


def test_a_record_alert_on_a_card_incident_upgrades_its_playbook(
    workspace: Workspace,
) -> None:
    con = open_db(workspace.state_db)
    event = (AlertEvent("e1", "2025-01-24T09:20:46+00:00", "litellm"),)
    card = Alert("c1", "rule-card", "Payment card number sent to an AI model", "high", "k",
                 "2025-01-24T09:20:46+00:00", "2025-01-24T09:20:46+00:00", 1,
                 ("attack.t1567",), event)
    record = Alert("r1", "rule-record", "A full customer record sent to an AI model", "high",
                   "k", "2025-01-24T09:20:46+00:00", "2025-01-24T09:20:46+00:00", 1,
                   ("attack.t1567",), event)
    first, second = open_incidents(workspace, con, [card, record])
    assert first.opened and second.shared_events and second.incident_id == first.incident_id
    assert runner.store.get(con, 1).playbook == "bulk-customer-data"
    con.close()
