"""A responder works a case from the CLI: every step of a playbook, export, tamper checks.

The incident is opened the way a scan opens it (`respond.intake.open_incidents` on an
alert over real ingested events); everything after that goes through the real CLI.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from sentinel.ingest.engine import ingest_paths
from sentinel.respond.intake import open_incidents
from sentinel.store.db import open_db
from sentinel.store.incidents import Alert, AlertEvent
from sentinel.workspace import Workspace
from tests.conftest import RunCli, litellm_line, write_lines
from tests.conftest import cli_ok as ok

CARD = "4111 1111 1111 1111"


@pytest.fixture()
def case(workspace: Workspace, tmp_path: Path) -> Workspace:
    lines = [litellm_line(i, f"refund card {CARD} order {i}") for i in range(3)]
    ingest_paths(workspace, [write_lines(tmp_path / "gw.jsonl", lines)])
    alert = Alert(
        "A1", "0f4c2a61-5d1e-4f0b-9a57-3c1de2a0b101", "Payment card number sent to an AI model",
        "high", "team-a-key", "2025-01-24T09:20:46+00:00", "2025-01-24T09:20:48+00:00", 3,
        ("attack.exfiltration", "attack.t1567"),
        tuple(AlertEvent(f"chatcmpl-{i:08d}", f"2025-01-24T09:20:4{6 + i}+00:00", "litellm",
                         str(tmp_path / "gw.jsonl"), 0) for i in range(3)),
    )
    con = open_db(workspace.state_db)
    try:
        assert open_incidents(workspace, con, [alert])[0].opened
    finally:
        con.close()
    return workspace


def test_a_responder_completes_a_playbook_from_the_cli(
    case: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    assert "customer-pii-to-vendor" in ok(run_cli, "incidents", "list")
    ok(run_cli, "incidents", "ack", "1", "--as", "alice")
    ok(run_cli, "incidents", "assign", "1", "alice")
    ran = ok(run_cli, "playbook", "run", "1", "--as", "alice")
    assert "scope-exposure: done" in ran and "contain: waiting" in ran
    assert "Stop more data flowing" in ok(run_cli, "playbook", "step", "1", "contain")
    for step in ("contain", "vendor-terms", "request-deletion"):
        ok(run_cli, "playbook", "done", "1", step, "--note", f"{step} done", "--as", "alice")
    ran = ok(run_cli, "playbook", "run", "1", "--as", "alice")
    assert "page-privacy: failed" in ran  # no webhook configured: recorded, not fatal
    ok(run_cli, "playbook", "skip", "1", "page-privacy", "--note", "phoned", "--as", "alice")
    ok(run_cli, "playbook", "done", "1", "decide-notification", "--as", "alice",
       "--note", f"notify: card {CARD} affected")
    assert "dpo-sign-off: requested" in ok(run_cli, "playbook", "run", "1", "--as", "alice")
    refused = run_cli("playbook", "approve", "1", "dpo-sign-off", "--as", "alice")
    assert refused.returncode == 3 and "alice may not approve" in refused.stderr
    ok(run_cli, "playbook", "approve", "1", "dpo-sign-off", "--as", "dpo")
    ok(run_cli, "playbook", "done", "1", "document", "--note", "written", "--as", "alice")
    assert "Every step is finished" in ok(run_cli, "playbook", "step", "1")
    shown = ok(run_cli, "playbook", "show", "1", "--format", "json")
    states = {json.loads(line).get("step"): json.loads(line).get("state")
              for line in shown.splitlines()}
    assert states["dpo-sign-off"] == "approved" and states["page-privacy"] == "skipped"
    ok(run_cli, "incidents", "contain", "1")
    ok(run_cli, "incidents", "resolve", "1", "--note", "done")
    document = json.loads(ok(run_cli, "incidents", "show", "1", "--format", "json"))
    assert document["incident"]["status"] == "resolved"
    assert [r["pii_type"] for r in document["ledger"]] == ["credit_card"] * 3
    everything = json.dumps(document) + ok(run_cli, "incidents", "show", "1")
    assert CARD not in everything and "card ****1111" in everything
    actors = {(e["action"], e["actor"]) for e in document["timeline"]}
    assert ("incident.status", "alice") in actors and ("playbook.step", "dpo") in actors
    assert ok(run_cli, "audit", "verify").startswith("ok: ")

    bundle = tmp_path / "bundle"
    ok(run_cli, "incidents", "export", "1", "--output", str(bundle))
    assert sorted(p.name for p in bundle.iterdir()) == [
        "case.json", "evidence.jsonl", "ledger.jsonl", "manifest.json", "timeline.jsonl"
    ]
    assert CARD not in "".join(p.read_text() for p in bundle.iterdir())
    assert "ok:" in ok(run_cli, "audit", "verify-bundle", str(bundle))
    evidence = bundle / "evidence.jsonl"
    evidence.write_text(evidence.read_text().replace("team-a-key", "team-b-key"))
    tampered = run_cli("audit", "verify-bundle", str(bundle))
    assert tampered.returncode == 1
    assert "evidence.jsonl: SHA-256 does not match the manifest" in tampered.stdout
    # Rewriting a timeline entry and the manifest with it: the keyed hash still names it.
    timeline = bundle / "timeline.jsonl"
    timeline.write_text(timeline.read_text().replace('"alice"', '"mallory"', 1))
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    tampered = run_cli("audit", "verify-bundle", str(bundle))
    assert tampered.returncode == 1
    assert "does not match its hash" in tampered.stdout and "timeline.jsonl:" in tampered.stdout


def test_audit_verify_names_an_edited_or_deleted_entry(case: Workspace, run_cli: RunCli) -> None:
    ok(run_cli, "incidents", "note", "1", "first look")
    ok(run_cli, "incidents", "note", "1", "second look")
    anchor = ok(run_cli, "audit", "head").strip()
    assert anchor.startswith("3:")
    assert "anchor found" in ok(run_cli, "audit", "verify", "--anchor", anchor)
    con = sqlite3.connect(case.state_db)
    with con:
        con.execute("UPDATE audit SET detail = replace(detail, 'first', 'frist') WHERE seq = 2")
    result = run_cli("audit", "verify", "--anchor", anchor)
    assert result.returncode == 1
    assert "entry 2: content does not match its hash (edited)" in result.stdout
    assert "first bad entry 2" in result.stderr
    with con:
        con.execute("UPDATE audit SET detail = replace(detail, 'frist', 'first') WHERE seq = 2")
        con.execute("DELETE FROM audit WHERE seq = 3")
    con.close()
    assert run_cli("audit", "verify").returncode == 0  # the shorter chain alone looks fine
    result = run_cli("audit", "verify", "--anchor", anchor)
    assert result.returncode == 1
    assert "anchor entry 3 is missing: entries after 2 were deleted" in result.stdout


def test_bad_input_is_a_clear_error(case: Workspace, run_cli: RunCli) -> None:
    for args, message in [
        (("incidents", "show", "99"), "no incident 99"),
        (("incidents", "resolve", "1"), None),
        (("incidents", "ack", "1"), "is resolved; it cannot become acknowledged"),
        (("playbook", "done", "1", "nope"), "has no step 'nope'"),
        (("audit", "verify", "--anchor", "junk"), "bad anchor"),
    ]:
        result = run_cli(*args)
        assert "Traceback" not in result.stderr
        if message:
            assert result.returncode in (2, 3) and message in result.stderr, result.stderr
