"""File identity and checkpoints: which file is this, and how far have we read it?

A file is known by its content, never by its path alone: a fingerprint of its first
4 KiB (decompressed for gzip), checked at the checkpoint against the 4 KiB read just
before it, with device+inode and path as tie-breakers. So a rotated (renamed) file keeps
its progress, a copy (plain or gzipped) of an already-ingested file adds nothing and
resumes where the original stopped, two files that merely start alike are two files,
and a truncated-and-rewritten file (copytruncate) is a new file. The checkpoint row in
`state.db` is the truth; watcher events only trigger reading.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sentinel.ingest.streams import GZIP_MAGIC, LogFile
from sentinel.store.db import transaction

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
    tail: str | None = None
    """`LENGTH:SHA256` of the content just before `offset` (lines framing): a file whose
    first bytes match is only the same file if these match too."""
    label: str | None = None
    """What this file's events carry as `source_file` (see `source_label`)."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(path: Path, length: int) -> str:
    """SHA-256 of the first `length` bytes of the content (decompressed for gzip)."""
    with LogFile.open(path) as log:
        return _sha(log.head(length))


def tail_digest(tail: bytes) -> str:
    return f"{len(tail)}:{_sha(tail)}"


def identify(con: sqlite3.Connection, file: LogFile | Path) -> FileState:
    """The stored state of the open file `log` if it was seen before, else a fresh state.

    Candidates share its device+inode, its path or the fingerprint of its first 4 KiB of
    content (decompressed for gzip, so a compressed copy or a rotated-then-compressed
    file is the same file). A candidate is this file only when its first bytes match,
    and, for JSON lines read up to a checkpoint, when the content just before the
    checkpoint matches too: two files that merely start alike are told apart, and a
    file truncated below its checkpoint (copytruncate) is a new file.
    """
    if not isinstance(file, LogFile):
        with LogFile.open(file) as opened:
            return identify(con, opened)
    log = file
    info = log.stat
    head = log.head(FINGERPRINT_BYTES)
    head_len = len(head)
    fingerprint = _sha(head)
    resolved = str(log.path.resolve())
    rows = con.execute(
        """
        SELECT file_id, path, device, inode, fingerprint, fingerprint_len, source, framing,
               offset, records, quarantined, disk_size, tail_fingerprint
        FROM files
        WHERE (device = ? AND inode = ?) OR path = ? OR (fingerprint = ? AND fingerprint_len = ?)
        ORDER BY (device = ? AND inode = ?) DESC, (path = ?) DESC, file_id DESC
        """,
        (info.st_dev, info.st_ino, resolved, fingerprint, head_len, info.st_dev, info.st_ino,
         resolved),
    ).fetchall()
    for row in rows:
        stored_len = row[5]
        if stored_len > head_len:
            continue  # the content is now shorter than what we fingerprinted: truncated
        current = fingerprint if stored_len == head_len else _sha(head[:stored_len])
        if current != row[4]:
            continue  # same inode or path, different content: a new file
        unchanged = (row[2], row[3], row[11]) == (info.st_dev, info.st_ino, info.st_size)
        if row[7] == "lines" and not unchanged and not _tail_matches(log, row[8], row[12]):
            continue  # same first bytes, different content before the checkpoint
        return FileState(
            file_id=row[0], path=resolved, device=info.st_dev, inode=info.st_ino,
            fingerprint=row[4], fingerprint_len=stored_len, size=info.st_size,
            source=row[6], framing=row[7], offset=row[8], records=row[9], quarantined=row[10],
            disk_size=row[11], tail=row[12],
        )
    return FileState(
        file_id=None, path=resolved, device=info.st_dev, inode=info.st_ino,
        fingerprint=fingerprint, fingerprint_len=head_len, size=info.st_size,
    )


def _tail_matches(log: LogFile, offset: int, tail: str | None) -> bool:
    if not offset or not tail:
        return True
    if not log.gz and offset > log.size:
        return False  # shorter than the checkpoint: truncated, or another file
    length_text, _, digest = tail.partition(":")
    length = int(length_text)
    return _sha(log.content_range(offset - length, length)) == digest


def register(con: sqlite3.Connection, state: FileState) -> None:
    """Give a newly seen file its row (offset 0) so its id can label its events."""
    if state.file_id is None:
        with transaction(con):
            save(con, state)


def source_label(con: sqlite3.Connection, state: FileState) -> str:
    """The `source_file` of this file's events: the path its bytes are read under.

    After rotation a path names several files over time (`app.log` today is not the
    `app.log` of yesterday, now `app.log.1`), so the first file read under a path is
    labelled by the path and any later one by `PATH#FILE_ID`: `(source_file,
    source_offset)` then names one record, and still says where it was read. The
    label a file got under a path is kept for all its batches under that path.
    """
    row = con.execute(
        "SELECT source_file FROM batches WHERE file_id = ? AND path = ? "
        "AND source_file IS NOT NULL LIMIT 1",
        (state.file_id, state.path),
    ).fetchone()
    if row:
        return str(row[0])
    other = con.execute(
        "SELECT 1 FROM batches WHERE path = ? AND file_id <> ? LIMIT 1",
        (state.path, state.file_id),
    ).fetchone()
    return f"{state.path}#{state.file_id}" if other else state.path


def save(con: sqlite3.Connection, state: FileState) -> None:
    """Insert or update the checkpoint row; call inside the batch's transaction."""
    now = datetime.now(UTC).isoformat()
    if state.file_id is None:
        cur = con.execute(
            """
            INSERT INTO files (path, device, inode, fingerprint, fingerprint_len, source, framing,
                               offset, records, quarantined, disk_size, tail_fingerprint,
                               first_seen, updated_at)
            VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
            """,
            (
                state.path, state.device, state.inode, state.fingerprint, state.fingerprint_len,
                state.source, state.framing, state.offset, state.records, state.quarantined,
                state.disk_size, state.tail, now, now,
            ),
        )
        state.file_id = cur.lastrowid
    else:
        con.execute(
            """
            UPDATE files SET path = ?, device = ?, inode = ?, source = ?, framing = ?,
                             offset = ?, records = ?, quarantined = ?, disk_size = ?,
                             tail_fingerprint = ?, updated_at = ?
            WHERE file_id = ?
            """,
            (
                state.path, state.device, state.inode, state.source, state.framing,
                state.offset, state.records, state.quarantined, state.disk_size, state.tail,
                now, state.file_id,
            ),
        )


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC
