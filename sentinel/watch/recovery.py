"""What the daemon does with damaged state and damaged input, so that nothing is lost.

- A corrupt checkpoint row (an offset that is not a number, negative, past the end of
  the file or inside a line; a fingerprint that is not a SHA-256) is reported and
  repaired from what is known for sure: the file is re-identified by device+inode and
  re-fingerprinted, and the offset is taken from the last committed batch. It is never
  silently restarted from 0; when nothing tells where reading stopped, the file is held
  back with the reason until an operator decides.
- A file that stays unreadable once idle (a truncated or corrupt `.gz`) gets one
  quarantine entry with the reason, remembered in `meta` so that a restart does not
  quarantine it again, and is not retried until it changes.
- `start_at = "end"` records a checkpoint at the last complete line of the files that
  exist when the daemon first starts with that watch entry (plain files only).
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from sentinel.exceptions import SourceError
from sentinel.ingest import batches
from sentinel.ingest import files as file_store
from sentinel.ingest.engine import complete_end
from sentinel.ingest.framing import Rejected
from sentinel.store.db import transaction
from sentinel.watch.log import EventLog
from sentinel.watch.targets import Target
from sentinel.workspace import Workspace

_SHA256 = re.compile(r"[0-9a-f]{64}")


def verify_checkpoint(con: sqlite3.Connection, path: Path, log: EventLog) -> None:
    """Check (and repair, or refuse) the checkpoint rows that could claim `path`."""
    stat = path.stat()
    size = stat.st_size
    resolved = str(path.resolve())
    rows = con.execute(
        "SELECT file_id, path, device, inode, fingerprint, fingerprint_len, framing, offset "
        "FROM files WHERE (device = ? AND inode = ?) OR path = ?",
        (stat.st_dev, stat.st_ino, resolved),
    ).fetchall()
    for file_id, stored_path, device, inode, fingerprint, length, framing, offset in rows:
        problem = _fingerprint_problem(fingerprint, length)
        if problem:
            if (device, inode) != (stat.st_dev, stat.st_ino):
                continue  # cannot be matched to this file anyway
            length = min(size, file_store.FINGERPRINT_BYTES)
            fingerprint = _refingerprint(con, file_id, path, length)
            log.error("checkpoint.corrupt", path=stored_path, problem=problem,
                      repair="re-identified by device+inode and fingerprinted again")
        if length > size or file_store.fingerprint(path, length) != fingerprint:
            continue  # another file's row (rotated, truncated, replaced): not claimed
        lines = framing == "lines" and not file_store.is_gzip(path)
        problem = _offset_problem(path, offset, size if lines else None)
        if not problem:
            continue
        committed = _last_committed_end(con, file_id)
        if committed == offset and lines and isinstance(offset, int) and offset > size:
            # A consistent checkpoint past the end: the file was cut short in place.
            resume = complete_end(path, size)
            _set_offset(con, file_id, resume)
            log.warning("file.truncated", path=stored_path, size=size, resume_at=resume)
            continue
        if committed == offset and not (isinstance(offset, int) and offset > size):
            continue  # a finished partial last line: the batch ended mid-line
        if committed is None or _offset_problem(path, committed, size if lines else None):
            raise SourceError(
                f"checkpoint of {stored_path} is corrupt ({problem}) and no committed "
                "batch tells where reading stopped; held back rather than read again "
                f"from 0 (delete row file_id={file_id} in state.db to re-read it)"
            )
        _set_offset(con, file_id, committed)
        log.error("checkpoint.corrupt", path=stored_path, problem=problem,
                  repair=f"offset {committed} from the last committed batch")


def _fingerprint_problem(fingerprint: object, length: object) -> str | None:
    if not isinstance(fingerprint, str) or not _SHA256.fullmatch(fingerprint):
        return "fingerprint is not a SHA-256"
    if not isinstance(length, int) or not 0 <= length <= file_store.FINGERPRINT_BYTES:
        return f"fingerprint length {length!r} out of range"
    return None


def _offset_problem(path: Path, offset: object, size: int | None) -> str | None:
    """What is wrong with `offset`; `size` given for plain line files (checked further)."""
    if not isinstance(offset, int) or isinstance(offset, bool):
        return f"offset {offset!r} is not a number"
    if offset < 0:
        return f"offset {offset} is negative"
    if size is None:
        return None
    if offset > size:
        return f"offset {offset} is past the end of the file ({size} bytes)"
    if offset > 0:
        with path.open("rb") as handle:
            handle.seek(offset - 1)
            if handle.read(1) != b"\n":
                return f"offset {offset} is inside a line"
    return None


def _last_committed_end(con: sqlite3.Connection, file_id: int) -> int | None:
    row = con.execute(
        "SELECT end_offset FROM batches WHERE file_id = ? ORDER BY committed_at DESC, rowid DESC "
        "LIMIT 1",
        (file_id,),
    ).fetchone()
    return int(row[0]) if row and isinstance(row[0], int) else None


def _refingerprint(con: sqlite3.Connection, file_id: int, path: Path, length: int) -> str:
    digest = file_store.fingerprint(path, length)
    _write(con, "UPDATE files SET fingerprint = ?, fingerprint_len = ? WHERE file_id = ?",
           (digest, length, file_id))
    return digest


def _set_offset(con: sqlite3.Connection, file_id: int, offset: int) -> None:
    _write(con, "UPDATE files SET offset = ? WHERE file_id = ?", (offset, file_id))


def _write(con: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> None:
    with transaction(con):
        con.execute(sql, params)


def quarantine_unreadable(
    ws: Workspace, con: sqlite3.Connection, read_path: Path, path: Path, reason: str
) -> bool:
    """One quarantine entry for a file that cannot be read; False if already recorded."""
    try:
        stat = os.stat(read_path)
    except OSError:
        return False
    key = f"watch.unreadable:{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"
    if con.execute("SELECT 1 FROM meta WHERE key = ?", (key,)).fetchone():
        return False
    batch_id = batches.new_batch_id()
    # No raw bytes: a corrupt archive's content is neither text nor safe to copy around.
    entry = Rejected(0, f"unreadable file: {reason}", "", truncated=True)
    outputs = batches.stage_quarantine(ws, batch_id, str(path), None, [entry])
    batches.publish(con, ws, batch_id, outputs)
    _write(con, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, reason))
    return True


def skip_to_end_once(con: sqlite3.Connection, target: Target, files: list[Path]) -> int:
    """`start_at = "end"`: checkpoint existing plain files at their end, once per entry."""
    key = f"watch.start_at_end:{target.pattern}"
    if con.execute("SELECT 1 FROM meta WHERE key = ?", (key,)).fetchone():
        return 0
    skipped = 0
    with transaction(con):
        for path in files:
            try:
                state = file_store.identify(con, path)
                if state.file_id is not None or state.size == 0 or file_store.is_gzip(path):
                    continue
                state.offset = complete_end(path, state.size)
            except OSError:
                continue
            state.framing, state.disk_size = "lines", state.size
            file_store.save(con, state)
            skipped += 1
        con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, 'done')", (key,))
    return skipped
