"""The append-only, hash-chained audit trail of sensitive actions (e.g. `--reveal`).

Each row's hash covers the previous row's hash, so deleting or editing a row breaks
the chain and `verify()` reports where.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def _row_hash(prev_hash: str, ts: str, actor: str, action: str, detail: str) -> str:
    payload = "\x1f".join((prev_hash, ts, actor, action, detail)).encode()
    return hashlib.sha256(payload).hexdigest()


def record(con: sqlite3.Connection, action: str, detail: dict[str, Any]) -> int:
    """Append one audit row (who = the OS user) and return its sequence number."""
    actor = _whoami()
    ts = datetime.now(UTC).isoformat()
    body = json.dumps(detail, sort_keys=True, ensure_ascii=False)
    con.execute("BEGIN IMMEDIATE")
    try:
        row = con.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS
        cur = con.execute(
            "INSERT INTO audit (ts, actor, action, detail, prev_hash, hash) VALUES (?,?,?,?,?,?)",
            (ts, actor, action, body, prev, _row_hash(prev, ts, actor, action, body)),
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(cur.lastrowid or 0)


def verify(con: sqlite3.Connection) -> list[str]:
    """Problems found in the chain (empty when intact)."""
    problems = []
    prev = GENESIS
    for seq, ts, actor, action, detail, prev_hash, digest in con.execute(
        "SELECT seq, ts, actor, action, detail, prev_hash, hash FROM audit ORDER BY seq"
    ):
        if prev_hash != prev:
            problems.append(f"audit row {seq}: chain broken (previous row missing or changed)")
        if _row_hash(prev_hash, ts, actor, action, detail) != digest:
            problems.append(f"audit row {seq}: content does not match its hash")
        prev = digest
    return problems


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
