"""File identity and checkpoints: which file is this, and how far have we read it?

A file is known by a fingerprint of its first bytes, with device+inode and path as
tie-breakers, never by its path alone. So a rotated (renamed) file keeps its progress,
a copy of an already-ingested file adds nothing, and a truncated-and-rewritten file
(copytruncate) is a new file because its first bytes changed. The checkpoint row in
`state.db` is the truth; watcher events only trigger reading.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FINGERPRINT_BYTES = 4096


@dataclass
class FileState:
    """What the case store knows about one source file."""

    file_id: int | None
    path: str
    device: int
    inode: int
    fingerprint: str
    fingerprint_len: int
    size: int
    source: str | None = None
    framing: str | None = None
    offset: int = 0
    """Lines: bytes consumed (decompressed for gzip). Documents: records consumed."""
    records: int = 0
    quarantined: int = 0
    disk_size: int = 0
    """Size on disk when last read: an unchanged gzip or document file is skipped."""


def fingerprint(path: Path, length: int) -> str:
    with path.open("rb") as handle:
        return hashlib.sha256(handle.read(length)).hexdigest()


def identify(con: sqlite3.Connection, path: Path) -> FileState:
    """The stored state of `path` if it was seen before (by content), else a fresh state."""
    stat = path.stat()
    head_len = min(stat.st_size, FINGERPRINT_BYTES)
    head = fingerprint(path, head_len)
    resolved = str(path.resolve())
    rows = con.execute(
        """
        SELECT file_id, path, device, inode, fingerprint, fingerprint_len, source, framing,
               offset, records, quarantined, disk_size
        FROM files
        WHERE (device = ? AND inode = ?) OR path = ? OR (fingerprint = ? AND fingerprint_len = ?)
        ORDER BY (device = ? AND inode = ?) DESC, (path = ?) DESC, file_id DESC
        """,
        (stat.st_dev, stat.st_ino, resolved, head, head_len, stat.st_dev, stat.st_ino, resolved),
    ).fetchall()
    for row in rows:
        stored_len = row[5]
        if stored_len > stat.st_size:
            continue  # the file is now shorter than what we fingerprinted: truncated
        current = head if stored_len == head_len else fingerprint(path, stored_len)
        if current != row[4]:
            continue  # same inode or path, different content: a new file
        state = FileState(
            file_id=row[0], path=resolved, device=stat.st_dev, inode=stat.st_ino,
            fingerprint=row[4], fingerprint_len=stored_len, size=stat.st_size,
            source=row[6], framing=row[7], offset=row[8], records=row[9], quarantined=row[10],
            disk_size=row[11],
        )
        return state
    return FileState(
        file_id=None, path=resolved, device=stat.st_dev, inode=stat.st_ino,
        fingerprint=head, fingerprint_len=head_len, size=stat.st_size,
    )


def save(con: sqlite3.Connection, state: FileState) -> None:
    """Insert or update the checkpoint row; call inside the batch's transaction."""
    now = datetime.now(UTC).isoformat()
    if state.file_id is None:
        cur = con.execute(
            """
            INSERT INTO files (path, device, inode, fingerprint, fingerprint_len, source, framing,
                               offset, records, quarantined, disk_size, first_seen, updated_at)
            VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
            """,
            (
                state.path, state.device, state.inode, state.fingerprint, state.fingerprint_len,
                state.source, state.framing, state.offset, state.records, state.quarantined,
                state.disk_size, now, now,
            ),
        )
        state.file_id = cur.lastrowid
    else:
        con.execute(
            """
            UPDATE files SET path = ?, device = ?, inode = ?, source = ?, framing = ?,
                             offset = ?, records = ?, quarantined = ?, disk_size = ?,
                             updated_at = ?
            WHERE file_id = ?
            """,
            (
                state.path, state.device, state.inode, state.source, state.framing,
                state.offset, state.records, state.quarantined, state.disk_size, now,
                state.file_id,
            ),
        )


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def readable(path: Path) -> str | None:
    """None when `path` can be read, else the reason it cannot."""
    if not os.access(path, os.R_OK):
        return "permission denied"
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
