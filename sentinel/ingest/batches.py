"""Exactly-once batches: stage, commit, publish, recover.

A batch is a range of one source file. Its outputs (Parquet parts and a quarantine
file) are first written to `lake/.staging/` and fsynced. Committing is one SQLite
transaction that records the batch (with its outputs, marked pending) and advances the
file's checkpoint. Publishing renames the staged files into the lake and clears
`pending`. Recovery, run under the ingest lock before any new batch:

- a staged file with no batch row (crash before the commit) is deleted: the checkpoint
  never moved, so the range is read again;
- a pending batch (crash after the commit) is published: the checkpoint moved, so its
  files must appear.

Readers only ever see `lake/events/`, which changes by atomic renames of committed
batches. This is the ARCHITECTURE.md protocol with the order of rename and commit
swapped (roll forward instead of roll back), so that a concurrent reader can never
see a batch that a crash later removes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sentinel.ingest import files as file_store
from sentinel.ingest import quarantine
from sentinel.ingest.framing import Rejected
from sentinel.lake.writer import fsync_path
from sentinel.store.db import transaction
from sentinel.workspace import Workspace, workspace_lock


@dataclass(frozen=True)
class Output:
    staging_name: str
    final_path: str
    """Relative to the workspace root."""


def new_batch_id() -> str:
    """Time-sortable and unique: `20250124T092046-<12 hex>`."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"


@contextmanager
def ingest_lock(ws: Workspace) -> Iterator[None]:
    """One ingesting process per workspace; readers never take it."""
    with workspace_lock(ws, "ingest"):
        yield


def stage_quarantine(
    ws: Workspace, batch_id: str, source_file: str, source: str | None, rejected: list[Rejected],
    key: bytes | None = None,
) -> list[Output]:
    """Write the batch's rejected records as JSON lines into staging.

    What each line keeps of the rejected text follows `[privacy] store_text`, and runs
    of rejected lines are merged (see `quarantine`).
    """
    if not rejected:
        return []
    name = f"{batch_id}.quarantine.jsonl"
    path = ws.staging_dir / name
    quarantined_at = datetime.now(UTC).isoformat()
    entries = quarantine.coalesce(rejected)
    with path.open("w", encoding="utf-8", errors="backslashreplace") as handle:
        for fields in quarantine.entry_fields(entries, ws.config, key or ws.secret_key()):
            entry = {"file": source_file, "source": source, "quarantined_at": quarantined_at,
                     **fields}
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return [Output(name, f"quarantine/{batch_id}.jsonl")]


def commit(
    con: sqlite3.Connection,
    state: file_store.FileState,
    batch_id: str,
    start: int,
    outputs: list[Output],
    events: int,
    quarantined: int,
) -> None:
    """Record the batch and advance the checkpoint, atomically."""
    with transaction(con):
        record(con, state, batch_id, start, outputs, events, quarantined)


def record(
    con: sqlite3.Connection,
    state: file_store.FileState,
    batch_id: str,
    start: int,
    outputs: list[Output],
    events: int,
    quarantined: int,
) -> None:
    """`commit`'s statements, inside the caller's transaction (several files' batches
    committed together: `smallfiles`)."""
    file_store.save(con, state)
    con.execute(
        """
        INSERT INTO batches (batch_id, file_id, start_offset, end_offset, outputs, pending,
                             events, quarantined, committed_at, path, source_file)
        VALUES (?,?,?,?,?,?,?,?,?,?,?)
        """,
        (
            batch_id, state.file_id, start, state.offset,
            json.dumps([[o.staging_name, o.final_path] for o in outputs]),
            1 if outputs else 0, events, quarantined, datetime.now(UTC).isoformat(),
            state.path, state.label,
        ),
    )


def publish(con: sqlite3.Connection, ws: Workspace, batch_id: str, outputs: list[Output]) -> None:
    """Rename a committed batch's staged files into place and clear its pending flag."""
    directories = set()
    for output in outputs:
        staged = ws.staging_dir / output.staging_name
        final = ws.root / output.final_path
        if staged.exists():
            _mkdirs(final.parent, ws.root)
            os.replace(staged, final)
            directories.add(final.parent)
    for directory in directories:
        fsync_path(directory)
    if outputs:
        with relaxed(con):
            con.execute("UPDATE batches SET pending = 0 WHERE batch_id = ?", (batch_id,))


@contextmanager
def relaxed(con: sqlite3.Connection) -> Iterator[None]:
    """Commit without an fsync, for bookkeeping that recovery can redo if it is lost.

    In WAL mode the next durable commit syncs these frames too; losing them to a power
    cut only makes recovery publish a batch again (a no-op) or re-read a checkpointed
    file (which finds nothing new).
    """
    con.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        con.execute("PRAGMA synchronous = FULL")


def recover(con: sqlite3.Connection, ws: Workspace) -> tuple[int, int]:
    """Finish or undo what a crashed ingest left; returns (published, discarded)."""
    published = 0
    for batch_id, outputs_json in con.execute(
        "SELECT batch_id, outputs FROM batches WHERE pending = 1"
    ).fetchall():
        outputs = [Output(name, final) for name, final in json.loads(outputs_json)]
        publish(con, ws, batch_id, outputs)
        published += 1
    discarded = 0
    for staged in ws.staging_dir.iterdir():
        staged.unlink()
        discarded += 1
    return published, discarded


def _mkdirs(directory: Path, root: Path) -> None:
    """Create partition directories owner-only (umask is not enough for library use)."""
    missing = []
    while not directory.exists() and directory != root:
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
