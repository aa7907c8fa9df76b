"""The case document, and the self-contained evidence bundle `incidents export` writes.

A bundle is a directory:

    case.json        the incident, its alerts, linked events (provenance), playbook
                     progress and deadlines
    timeline.jsonl   its timeline entries, each with seq, prev_hash and hash
    ledger.jsonl     the exposure ledger (types × vendor …, counts and digests)
    evidence.jsonl   the masked evidence rows attached by playbook steps
    manifest.json    SHA-256 of every file above, the audit chain's head at export
                     time, who exported it and when

Invariants:
- Everything in it is masked: the case's strings go through `mask_text`, the ledger
  holds digests only, evidence was masked before it was stored. Files are 0600 in a
  0700 directory.
- `verify_bundle` checks every file against the manifest, and with the workspace key
  recomputes each timeline entry's keyed hash, so an edited entry is named.
- The export itself is a timeline entry carrying the manifest's SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.exceptions import SentinelError
from sentinel.output import json_line, open_private, plain
from sentinel.store import audit, ledger, progress
from sentinel.store import incidents as store
from sentinel.store.db import transaction
from sentinel.workspace import Workspace

FILES = ("case.json", "timeline.jsonl", "ledger.jsonl", "evidence.jsonl")


class BundleError(SentinelError):
    title = "Evidence bundle error"


def mask_deep(value: Any) -> Any:
    """Every string inside `value` masked."""
    from sentinel.pii.masking import mask_text

    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_deep(v) for v in value]
    return value


def case_document(ws: Workspace, con: sqlite3.Connection, incident_id: int) -> dict[str, Any]:
    """Everything about one incident, masked, as JSON-ready data."""
    from sentinel.respond.playbook import load_playbooks
    from sentinel.respond.runner import deadlines

    case = store.get(con, incident_id)
    merged = [r[0] for r in con.execute(
        "SELECT incident_id FROM incidents WHERE merged_into = ?", (incident_id,))]
    doc: dict[str, Any] = {
        "incident": case.as_dict(),
        "merged_from": merged,
        "alerts": store.alerts_of(con, incident_id),
        "events": store.events_of(con, incident_id),
        "playbook": None,
    }
    steps = progress.states(con, incident_id)
    if case.playbook:
        book = load_playbooks(ws).get(case.playbook)
        doc["playbook"] = {
            "name": case.playbook,
            "title": book.title if book else None,
            "deadlines": [
                {"label": d.label, "due_at": d.due_at.isoformat() if d.due_at else None,
                 "met": d.met}
                for d in (deadlines(con, book, incident_id) if book else [])
            ],
            "steps": [
                {"id": s.id, "kind": s.kind, "title": s.title,
                 "state": steps[s.id].state if s.id in steps else "pending",
                 "by": steps[s.id].actor if s.id in steps else None,
                 "note": steps[s.id].note if s.id in steps else None}
                for s in (book.steps if book else [])
            ],
        }
    return dict(mask_deep(plain(doc)))


def export_bundle(
    ws: Workspace, con: sqlite3.Connection, incident_id: int, out_dir: Path, *,
    actor: str | None = None,
) -> dict[str, Any]:
    """Write the bundle to `out_dir` (new or empty) and return its manifest."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BundleError(f"{out_dir} is not empty; export into a new directory")
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(out_dir, 0o700)
    except OSError as exc:
        raise BundleError(f"cannot create {out_dir}: {exc}") from exc
    ids = [incident_id, *(r[0] for r in con.execute(
        "SELECT incident_id FROM incidents WHERE merged_into = ?", (incident_id,)))]
    doc = case_document(ws, con, incident_id)
    entries = audit.entries(con, ids)
    contents = {
        "case.json": json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
        "timeline.jsonl": "".join(json_line(e.__dict__) + "\n" for e in entries),
        "ledger.jsonl": "".join(
            json_line(r) + "\n" for r in ledger.exposure(ws, con, incident_id).to_pylist()
        ),
        "evidence.jsonl": "".join(
            json_line({k: v for k, v in e.__dict__.items()}) + "\n"
            for e in progress.evidence_of(con, ids)
        ),
    }
    head = audit.head(con)
    manifest: dict[str, Any] = {
        "incident_id": incident_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "exported_by": actor or audit.whoami(),
        "os_user": audit.whoami(),
        "audit_head": {"seq": head.seq, "hash": head.hash},
        "files": {},
    }
    try:
        for name, text in contents.items():
            data = text.encode("utf-8")
            with open_private(out_dir / name, binary=True) as handle:
                handle.write(data)
            manifest["files"][name] = hashlib.sha256(data).hexdigest()
        body = json.dumps(manifest, indent=2) + "\n"
        with open_private(out_dir / "manifest.json") as handle:
            handle.write(body)
    except OSError as exc:
        raise BundleError(f"cannot write the bundle in {out_dir}: {exc}") from exc
    key = audit.chain_key(con)
    detail = {
        "directory": str(out_dir), "audit_head": head.anchor(),
        "manifest_sha256": hashlib.sha256(body.encode()).hexdigest(),
    }
    with transaction(con):
        audit.append(con, "incident.exported", detail, actor=actor, incident_id=incident_id,
                     key=key)
    return manifest


def verify_bundle(directory: Path, key: bytes | None = None) -> list[str]:
    """Problems with the bundle (empty when every file matches and every entry verifies)."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        listed = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{directory}: no readable manifest.json ({exc})") from exc
    problems = []
    for name in FILES:
        if name not in listed:
            problems.append(f"{name}: not in the manifest")
    for name, want in sorted(listed.items()):
        path = directory / name
        if Path(name).name != name:
            problems.append(f"{name}: the manifest names a file outside the bundle")
            continue
        try:
            got = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            problems.append(f"{name}: missing")
            continue
        if got != want:
            problems.append(f"{name}: SHA-256 does not match the manifest (changed)")
    if key is not None and not problems:
        problems += _verify_entries(directory / "timeline.jsonl", key)
    return problems


def _verify_entries(path: Path, key: bytes) -> list[str]:
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        e = json.loads(line)
        body = json.dumps(e["detail"], sort_keys=True, ensure_ascii=False, default=str)
        digest = audit.keyed_hash(key, e["prev_hash"], e["seq"], e["ts"], e["actor"],
                                  e["os_user"], e["action"], e["incident_id"], body)
        if e.get("alg") == audit.KEYED and not hmac.compare_digest(digest, e["hash"]):
            problems.append(f"timeline.jsonl:{number}: entry {e['seq']} does not match its hash")
    return problems
