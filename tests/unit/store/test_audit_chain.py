"""The keyed audit chain: every kind of tampering is caught and named."""

from __future__ import annotations

import json
import sqlite3

import pytest

from sentinel.exceptions import StoreError
from sentinel.store import audit
from sentinel.workspace import Workspace


def fill(con: sqlite3.Connection, n: int = 5) -> None:
    for i in range(n):
        audit.record(con, "incident.note", {"note": f"note {i}"}, incident_id=1 + i % 2)


def test_intact_chain_verifies_with_its_anchor(con: sqlite3.Connection) -> None:
    fill(con)
    head = audit.head(con)
    assert head.seq == 5
    report = audit.check(con, anchor=head.anchor())
    assert report.ok and report.entries == 5 and report.head == head
    # A bare hash works as an anchor too.
    assert audit.check(con, anchor=head.hash).ok


def test_record_keeps_its_old_signature_and_actor(con: sqlite3.Connection) -> None:
    seq = audit.record(con, "reveal", {"query": "x"})
    entry = audit.entries(con)[0]
    assert seq == entry.seq == 1
    assert entry.actor == entry.os_user == audit.whoami()
    audit.record(con, "incident.note", {}, actor="alice")
    assert audit.entries(con)[1].actor == "alice"
    assert audit.entries(con)[1].os_user == audit.whoami()


def test_one_edited_byte_is_found(con: sqlite3.Connection) -> None:
    fill(con)
    con.execute("UPDATE audit SET detail = replace(detail, 'note 2', 'note 3') WHERE seq = 3")
    report = audit.check(con)
    assert not report.ok and report.first_bad == 3
    assert "entry 3: content does not match its hash" in report.problems[0]


def test_rewriting_with_recomputed_unkeyed_hashes_is_found(con: sqlite3.Connection) -> None:
    """The old hole: edit a row, recompute every later hash without the key."""
    fill(con)
    con.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
    rows = con.execute("SELECT seq, ts, actor, action, detail FROM audit ORDER BY seq").fetchall()
    prev = con.execute("SELECT hash FROM audit WHERE seq = 1").fetchone()[0]
    for seq, ts, actor, action, detail in rows[1:]:
        digest = audit.legacy_hash(prev, ts, actor, action, detail)
        con.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    report = audit.check(con)
    assert report.first_bad == 2  # the forged hashes fail the keyed check from there on
    assert report.problems[0] == "entry 2: content does not match its hash (edited)"
    # Relabelling the rows as pre-key "legacy" ones does not help against the anchor.
    anchor = audit.head(con).anchor()
    con.execute("UPDATE audit SET alg = 'sha256'")
    prev = audit.GENESIS
    for seq, ts, actor, action, detail in rows:
        digest = audit.legacy_hash(prev, ts, actor, action, detail)
        con.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    relabelled = audit.check(con, anchor=anchor)
    assert relabelled.legacy == 5
    assert not relabelled.ok and "anchor" in relabelled.problems[-1]


def test_deleting_the_last_row_is_caught_by_the_anchor(con: sqlite3.Connection) -> None:
    fill(con)
    anchor = audit.head(con).anchor()
    con.execute("DELETE FROM audit WHERE seq = 5")
    assert audit.check(con).ok  # a shorter chain is still a chain: hence the anchor
    report = audit.check(con, anchor=anchor)
    assert not report.ok and report.first_bad == 5
    assert "anchor entry 5 is missing" in report.problems[0]
    # Appending after the truncation does not hide it: entry 5 is now another entry.
    audit.record(con, "incident.note", {"note": "cover-up"})
    report = audit.check(con, anchor=anchor)
    assert not report.ok
    assert report.problems == [
        "entry 5: does not match the anchor (rewritten, or deleted and replaced by later "
        "entries)"
    ]
    assert report.first_bad == 5


def test_deleting_a_middle_row_is_named(con: sqlite3.Connection) -> None:
    fill(con)
    con.execute("DELETE FROM audit WHERE seq = 3")
    report = audit.check(con)
    assert report.first_bad == 3
    assert report.problems[0] == "entry 3: missing (deleted)"


def test_renumbering_after_a_delete_is_found(con: sqlite3.Connection) -> None:
    fill(con)
    con.execute("DELETE FROM audit WHERE seq = 3")
    con.execute("UPDATE audit SET seq = seq - 1 WHERE seq > 3")
    report = audit.check(con)
    assert report.first_bad == 3
    assert "entry 3: chain broken" in report.problems[0]


def test_reordering_rows_is_found(con: sqlite3.Connection) -> None:
    fill(con)
    con.execute("UPDATE audit SET seq = 100 WHERE seq = 2")
    con.execute("UPDATE audit SET seq = 2 WHERE seq = 3")
    con.execute("UPDATE audit SET seq = 3 WHERE seq = 100")
    report = audit.check(con)
    assert not report.ok and report.first_bad == 2


def test_legacy_rows_verify_as_a_prefix(con: sqlite3.Connection) -> None:
    prev = audit.GENESIS
    for i in range(2):
        ts, body = f"2024-01-0{i + 1}T00:00:00+00:00", json.dumps({"i": i})
        digest = audit.legacy_hash(prev, ts, "bob", "reveal", body)
        con.execute(
            "INSERT INTO audit (seq, ts, actor, action, detail, prev_hash, hash, alg) "
            "VALUES (?,?,?,?,?,?,?, 'sha256')", (i + 1, ts, "bob", "reveal", body, prev, digest),
        )
        prev = digest
    audit.record(con, "reveal", {"i": 2})
    report = audit.check(con)
    assert report.ok and report.legacy == 2 and report.entries == 3


def test_the_key_is_not_in_state_db_and_is_needed(
    con: sqlite3.Connection, workspace: Workspace
) -> None:
    fill(con, 2)
    secret = workspace.secret_key()
    dump = "\n".join(con.iterdump()).encode()
    assert secret.hex().encode() not in dump
    assert audit.chain_key(con) not in dump
    assert audit.chain_key(con) != secret  # domain-separated from the PII digest key
    (workspace.root / "secret.key").unlink()
    with pytest.raises(StoreError, match="cannot key the audit trail"):
        audit.check(con)


@pytest.mark.parametrize("bad", ["nothing", "12:abc", "x:" + "0" * 64])
def test_bad_anchor_is_a_clear_error(con: sqlite3.Connection, bad: str) -> None:
    with pytest.raises(StoreError, match="bad anchor"):
        audit.check(con, anchor=bad)


def test_append_outside_a_transaction_is_refused(con: sqlite3.Connection) -> None:
    with pytest.raises(StoreError, match="open transaction"):
        audit.append(con, "x", {})
