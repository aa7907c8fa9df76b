"""Playbook progress and evidence of an incident, in `state.db`.

A step's state (`requested`, `done`, `skipped`, `failed`, `approved`) is one row per
incident and step; the history of every change is in the timeline. Evidence (a masked
query result, a command's masked output) is stored with its SHA-256, which the timeline
entry of the step also carries, so an edited evidence row no longer matches the chain.

Invariant: a step's new state, its evidence and its timeline entry commit together.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sentinel.store import audit
from sentinel.store.db import transaction
from sentinel.store.incidents import get, now

FINISHED = ("done", "skipped", "approved")


@dataclass(frozen=True)
class StepState:
    step_id: str
    state: str
    actor: str
    note: str
    detail: dict[str, Any]
    updated_at: str

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


@dataclass(frozen=True)
class EvidenceRow:
    evidence_id: int
    step_id: str | None
    kind: str
    title: str
    content: str
    sha256: str
    rows: int
    actor: str
    created_at: str


def states(con: sqlite3.Connection, incident_id: int) -> dict[str, StepState]:
    rows = con.execute(
        "SELECT step_id, state, actor, note, detail, updated_at FROM playbook_steps "
        "WHERE incident_id = ?", (incident_id,),
    ).fetchall()
    return {
        r[0]: StepState(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows
    }


def save_step(
    con: sqlite3.Connection,
    incident_id: int,
    *,
    playbook: str,
    step_id: str,
    kind: str,
    state: str,
    note: str = "",
    detail: dict[str, Any] | None = None,
    evidence: Sequence[tuple[str, str, str, int]] = (),
    actor: str | None = None,
) -> int:
    """Record a step's new state with its evidence (kind, title, content, rows)."""
    key = audit.chain_key(con)
    detail = detail or {}
    who = actor or audit.whoami()
    with transaction(con):
        get(con, incident_id)
        attached = []
        for ev_kind, title, content, rows in evidence:
            digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
            cur = con.execute(
                "INSERT INTO evidence (incident_id, step_id, kind, title, content, sha256, rows, "
                "actor, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (incident_id, step_id, ev_kind, title, content, digest, rows, who, now()),
            )
            attached.append({"evidence_id": cur.lastrowid, "sha256": digest, "title": title})
        con.execute(
            "INSERT INTO playbook_steps (incident_id, step_id, state, actor, note, detail, "
            "updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (incident_id, step_id) DO UPDATE "
            "SET state = excluded.state, actor = excluded.actor, note = excluded.note, "
            "detail = excluded.detail, updated_at = excluded.updated_at",
            (incident_id, step_id, state, who, note, json.dumps(detail, default=str), now()),
        )
        entry = {
            "playbook": playbook, "step": step_id, "kind": kind, "state": state, "note": note,
            "detail": detail, "evidence": attached,
        }
        return audit.append(con, "playbook.step", entry, actor=actor, incident_id=incident_id,
                            key=key).seq


def evidence_of(con: sqlite3.Connection, incident_ids: list[int]) -> list[EvidenceRow]:
    marks = ",".join("?" * len(incident_ids))
    rows = con.execute(
        "SELECT evidence_id, step_id, kind, title, content, sha256, rows, actor, created_at "
        f"FROM evidence WHERE incident_id IN ({marks}) ORDER BY evidence_id", incident_ids,
    ).fetchall()
    return [EvidenceRow(*r) for r in rows]
