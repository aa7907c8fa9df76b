"""The append-only, keyed, hash-chained audit trail: reveals, exports and every incident change.

Every row is one entry: who (`actor`, the OS user unless a responder passed `--as`, and
always the real `os_user`), when, what (`action` and a JSON `detail`), for which incident
(`incident_id`, NULL for workspace-wide actions such as a reveal in `sentinel sql`). An
incident's timeline is its entries.

Invariants:
- Each entry's `hash` is an HMAC-SHA256 over its own fields, its sequence number and the
  previous entry's hash. The HMAC key is derived from the workspace's `secret.key` (with a
  label of its own, so it is never the key of the PII digests) and is not stored in
  `state.db`: someone who can write `state.db` but not read `secret.key` can neither edit
  an entry nor recompute the chain after it.
- Appending reads the head and inserts inside one `BEGIN IMMEDIATE` transaction, so
  concurrent writers (daemon, cron scans, CLI, TUI) serialise and the chain never forks.
- Deleting the newest entries leaves a valid shorter chain; only an anchor catches that.
  `head()` gives the sequence and hash to log elsewhere, and `check(con, anchor)` fails
  when the anchored entry is missing or changed.
- Rows written before the chain was keyed (`alg = 'sha256'`) verify with the old unkeyed
  hash, only as a prefix of the trail, and are reported as not tamper-evident.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.exceptions import StoreError
from sentinel.store.db import transaction

GENESIS = "0" * 64
KEYED = "hmac-sha256"
LEGACY = "sha256"
_KEY_LABEL = b"sentinel audit chain v1"
# Every statement is literal SQL: the column list is spelt out once per statement.
_INSERT = (
    "INSERT INTO audit (seq, ts, actor, os_user, action, incident_id, detail, prev_hash, hash,"
    " alg) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_SELECT = (
    "SELECT seq, ts, actor, os_user, action, incident_id, detail, prev_hash, hash, alg"
    " FROM audit"
)
_SELECT_ALL = _SELECT + " ORDER BY seq"
# An entry's detail as stored and hashed; one encoder (`json.dumps` with options builds
# one per call, a third of appending thousands of entries).
_DETAIL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)
_SELECT_OF_INCIDENTS = (
    _SELECT + " WHERE incident_id IN (SELECT value FROM json_each(?)) ORDER BY seq"
)


@dataclass(frozen=True)
class Entry:
    seq: int
    ts: str
    actor: str
    os_user: str
    action: str
    incident_id: int | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str
    alg: str = KEYED


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str

    def anchor(self) -> str:
        """The anchor to log elsewhere: `SEQ:HASH`."""
        return f"{self.seq}:{self.hash}"


@dataclass
class ChainReport:
    entries: int = 0
    head: Head = field(default_factory=lambda: Head(0, GENESIS))
    problems: list[str] = field(default_factory=list)
    first_bad: int | None = None
    """Sequence number of the first tampered or missing entry."""
    legacy: int = 0
    """Entries written before the chain was keyed (not tamper-evident)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, seq: int, message: str) -> None:
        if self.first_bad is None:
            self.first_bad = seq
        self.problems.append(message)


def whoami() -> str:
    """The OS user running sentinel."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def chain_key(con: sqlite3.Connection) -> bytes:
    """The HMAC key of the chain, derived from the `secret.key` beside `state.db`."""
    path = Path(database_path(con)).parent / "secret.key"
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot key the audit trail: cannot read {path}: {exc}") from exc
    return hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()


def database_path(con: sqlite3.Connection) -> str:
    for _, name, path in con.execute("PRAGMA database_list"):
        if name == "main" and path:
            return str(path)
    raise StoreError("the audit trail needs a state.db file, not an in-memory database")


def record(
    con: sqlite3.Connection,
    action: str,
    detail: dict[str, Any],
    *,
    actor: str | None = None,
    incident_id: int | None = None,
) -> int:
    """Append one entry in its own transaction and return its sequence number."""
    key = chain_key(con)
    with transaction(con):
        return append(con, action, detail, actor=actor, incident_id=incident_id, key=key).seq


def append(
    con: sqlite3.Connection,
    action: str,
    detail: dict[str, Any],
    *,
    actor: str | None = None,
    incident_id: int | None = None,
    key: bytes | None = None,
) -> Entry:
    """Append one entry inside the caller's open transaction (which must hold the lock)."""
    return append_many(con, [(action, detail, incident_id)], actor=actor, key=key)[0]


def append_many(
    con: sqlite3.Connection,
    items: list[tuple[str, dict[str, Any], int | None]],
    *,
    actor: str | None = None,
    key: bytes | None = None,
    keep: bool = True,
) -> list[Entry]:
    """Append `(action, detail, incident_id)` entries, in order, inside the caller's open
    transaction: the same entries as one `append` each, with one read of the head and
    one `executemany` (the incident intake appends thousands in one transaction).
    Returns them, or nothing with `keep=False` (a caller that does not read them)."""
    if not con.in_transaction:
        raise StoreError("audit.append needs an open transaction (use store.db.transaction)")
    if not items:
        return []
    key = key if key is not None else chain_key(con)
    os_user = whoami()
    actor = actor or os_user
    row = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0], row[1]) if row else (0, GENESIS)
    made: list[Entry] = []
    rows: list[tuple[Any, ...]] = []
    for action, detail, incident_id in items:
        seq += 1
        ts = datetime.now(UTC).isoformat()
        body = _DETAIL.encode(detail)
        # `keyed_hash`, with OpenSSL's one-shot HMAC (no Python object per entry).
        payload = _payload(prev, seq, ts, actor, os_user, action, incident_id, body)
        digest = hmac.digest(key, payload, "sha256").hex()
        if keep:
            made.append(Entry(seq, ts, actor, os_user, action, incident_id, detail, prev, digest))
        rows.append((seq, ts, actor, os_user, action, incident_id, body, prev, digest, KEYED))
        prev = digest
    con.executemany(_INSERT, rows)
    return made


def keyed_hash(
    key: bytes, prev: str, seq: int, ts: str, actor: str, os_user: str, action: str,
    incident_id: int | None, detail: str,
) -> str:
    payload = _payload(prev, seq, ts, actor, os_user, action, incident_id, detail)
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _payload(
    prev: str, seq: int, ts: str, actor: str, os_user: str, action: str,
    incident_id: int | None, detail: str,
) -> bytes:
    # A JSON array keeps field boundaries unambiguous whatever the fields contain.
    return json.dumps([prev, seq, ts, actor, os_user, action, incident_id, detail]).encode()


def legacy_hash(prev_hash: str, ts: str, actor: str, action: str, detail: str) -> str:
    """The unkeyed hash of entries written before the chain was keyed."""
    payload = "\x1f".join((prev_hash, ts, actor, action, detail)).encode()
    return hashlib.sha256(payload).hexdigest()


def head(con: sqlite3.Connection) -> Head:
    row = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return Head(int(row[0]), str(row[1])) if row else Head(0, GENESIS)


def entries(con: sqlite3.Connection, incident_ids: list[int] | None = None) -> list[Entry]:
    """Entries in order; only those of `incident_ids` when given."""
    if incident_ids is None:
        rows = con.execute(_SELECT_ALL).fetchall()
    else:
        rows = con.execute(_SELECT_OF_INCIDENTS, (json.dumps(incident_ids),)).fetchall()
    return [_entry(row) for row in rows]


def _entry(row: tuple[Any, ...]) -> Entry:
    seq, ts, actor, os_user, action, incident_id, detail, prev, digest, alg = row
    try:
        parsed = json.loads(detail)
    except ValueError:
        parsed = {"unparsed": detail}
    return Entry(seq, ts, actor, os_user or "", action, incident_id, parsed, prev, digest, alg)


def parse_anchor(text: str) -> tuple[int | None, str]:
    """`SEQ:HASH` or a bare `HASH`; raises StoreError on anything else."""
    seq_text, _, digest = text.strip().rpartition(":")
    digest = digest.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise StoreError(f"bad anchor {text!r}: expected SEQ:HASH from `sentinel audit head`")
    if not seq_text:
        return None, digest
    if not seq_text.isdigit():
        raise StoreError(f"bad anchor {text!r}: the sequence before ':' must be a number")
    return int(seq_text), digest


def check(con: sqlite3.Connection, anchor: str | None = None) -> ChainReport:
    """Recompute the whole chain; report the first tampered or missing entry."""
    key = chain_key(con)
    want_seq, want_hash = parse_anchor(anchor) if anchor else (None, "")
    report = ChainReport()
    prev, expected_seq, keyed_seen, anchor_seen = GENESIS, 1, False, False
    cursor = con.execute(_SELECT_ALL)
    for seq, ts, actor, os_user, action, incident_id, detail, prev_hash, digest, alg in cursor:
        report.entries += 1
        if seq != expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            report.fail(expected_seq, f"entry {missing}: missing (deleted)")
        elif prev_hash != prev:
            report.fail(seq, f"entry {seq}: chain broken (previous entry changed or reordered)")
        if alg == KEYED:
            keyed_seen = True
            good = keyed_hash(key, prev_hash, seq, ts, actor, os_user, action, incident_id, detail)
        elif alg == LEGACY and not keyed_seen:
            report.legacy += 1
            good = legacy_hash(prev_hash, ts, actor, action, detail)
        else:
            good = ""
        if not hmac.compare_digest(good, digest):
            report.fail(seq, f"entry {seq}: content does not match its hash (edited)")
        if digest == want_hash and (want_seq is None or want_seq == seq):
            anchor_seen = True
        prev, expected_seq = digest, seq + 1
        report.head = Head(seq, digest)
    if anchor and not anchor_seen:
        if want_seq is not None and want_seq > report.head.seq:
            report.fail(
                report.head.seq + 1,
                f"anchor entry {want_seq} is missing: entries after {report.head.seq} "
                "were deleted",
            )
        elif want_seq is not None:
            report.fail(
                want_seq,
                f"entry {want_seq}: does not match the anchor (rewritten, or deleted and "
                "replaced by later entries)",
            )
        else:
            report.fail(report.head.seq, "anchor not found: no entry has the anchored hash")
    return report


def verify(con: sqlite3.Connection, anchor: str | None = None) -> list[str]:
    """Problems found in the chain (empty when intact)."""
    return check(con, anchor).problems
