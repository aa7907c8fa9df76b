"""`sentinel status`: is the daemon running, and how far behind is each watched file?

The daemon's state comes from its lock (held while it runs, released by the kernel when
it dies) and its heartbeat file; a heartbeat without the lock is a daemon that was
stopped or killed, reported as such. Per file, the checkpoint in `state.db` is compared
with the file as it is now: `lag` is the bytes not yet read (plain files), or the whole
file when a compressed or single-document file is still waiting for its one read.
Detection is read from the store: the last scan, the alerts, and the open incidents
(newest first, `OPEN_SHOWN` of them) with their severity and rule title.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sentinel.ingest import files as file_store
from sentinel.store.db import open_db
from sentinel.store.incidents import OPEN_STATUSES
from sentinel.watch.lock import daemon_running, read_status
from sentinel.watch.targets import targets_of
from sentinel.workspace import Workspace


@dataclass
class FileStatus:
    path: str
    size: int
    offset: int
    lag: int
    source: str | None = None
    last_batch_at: str | None = None
    quarantined: int = 0
    state: str = "new"
    """new (never read), reading (lag > 0), done (read to its end)."""


OPEN_SHOWN = 10


@dataclass
class IncidentLine:
    incident_id: int
    severity: str
    title: str
    status: str
    event_count: int
    last_seen: str


@dataclass
class Detection:
    last_scan_at: str | None = None
    alerts: int = 0
    open_incidents: int = 0
    newest: list[IncidentLine] = field(default_factory=list)


@dataclass
class Status:
    running: bool
    pid: int | None = None
    since: str | None = None
    """Started at (running) or stopped at (stopped)."""
    heartbeat: str | None = None
    events: int = 0
    quarantined: int = 0
    last_batch_at: str | None = None
    store_paused: bool = False
    files: list[FileStatus] = field(default_factory=list)
    detection: Detection = field(default_factory=Detection)

    @property
    def lag(self) -> int:
        return sum(f.lag for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lag"] = self.lag
        return data


def daemon_state(ws: Workspace) -> Status:
    """The daemon as its lock and heartbeat file tell it, without the files and the
    detection (no `state.db` read: the TUI's Sources screen asks this every refresh)."""
    pid = daemon_running(ws)
    beat = read_status(ws) or {}
    running = pid is not None
    return Status(
        running=running,
        pid=pid if running and pid and pid > 0 else None,
        since=beat.get("started_at") if running else beat.get("stopped_at"),
        heartbeat=beat.get("heartbeat"),
        events=int(beat.get("events") or 0) if running else 0,
        quarantined=int(beat.get("quarantined") or 0) if running else 0,
        last_batch_at=beat.get("last_batch_at"),
        store_paused=bool(beat.get("store_paused")) and running,
    )


def collect(ws: Workspace) -> Status:
    """`daemon_state`, with each watched file's lag and the detection from `state.db`."""
    status = daemon_state(ws)
    con = open_db(ws.state_db)
    try:
        status.detection = _detection(con)
        seen: set[Path] = set()
        for target in targets_of(ws):
            for path in target.list_files():
                if path not in seen:
                    seen.add(path)
                    status.files.append(_file_status(con, path))
    finally:
        con.close()
    return status


_OPEN = "WHERE merged_into IS NULL AND status IN (SELECT value FROM json_each(?))"
"""Open incidents (not merged away); the statuses are bound as one JSON array."""


def _detection(con: sqlite3.Connection) -> Detection:
    result = Detection()
    row = con.execute("SELECT max(finished_at) FROM scans").fetchone()
    result.last_scan_at = row[0] if row else None
    result.alerts = int(con.execute("SELECT count(*) FROM alerts").fetchone()[0])
    statuses = json.dumps(OPEN_STATUSES)  # bound as one parameter: the SQL stays literal
    result.open_incidents = int(
        con.execute(
            "SELECT count(*) FROM incidents " + _OPEN, (statuses,)
        ).fetchone()[0]
    )
    result.newest = [
        IncidentLine(*row) for row in con.execute(
            "SELECT incident_id, severity, title, status, event_count, last_seen "
            "FROM incidents " + _OPEN + " ORDER BY incident_id DESC LIMIT ?",
            (statuses, OPEN_SHOWN),
        )
    ]
    return result


def _file_status(con: sqlite3.Connection, path: Path) -> FileStatus:
    try:
        state = file_store.identify(con, path)
        gzipped = file_store.is_gzip(path) if state.size else False
    except OSError:
        return FileStatus(str(path), 0, 0, 0, state="gone")
    result = FileStatus(str(path), state.size, state.offset, state.size, source=state.source)
    if state.file_id is None:
        return result
    row = con.execute(
        "SELECT max(committed_at) FROM batches WHERE file_id = ?", (state.file_id,)
    ).fetchone()
    result.last_batch_at = row[0] if row else None
    result.quarantined = state.quarantined
    whole = gzipped or state.framing == "document"
    if whole:
        result.lag = 0 if state.disk_size == state.size else state.size
    else:
        result.lag = max(state.size - state.offset, 0)
    result.state = "reading" if result.lag else "done"
    return result
