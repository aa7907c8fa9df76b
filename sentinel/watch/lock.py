"""One daemon per workspace: an flock'd lock file, and the status file beside it.

`daemon.lock` is the workspace's one lock implementation (`workspace.LockFile`, an
flock), held for the daemon's whole life. The kernel releases the lock when the process
dies, however it dies, so a SIGKILLed daemon never blocks a restart; the pid written
inside is only for the message. `daemon.json` is the
daemon's heartbeat, replaced atomically (write, rename) so a reader never sees
half of it; `sentinel status` trusts it only while the lock is held.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from sentinel.exceptions import SentinelError
from sentinel.workspace import LockFile, Workspace

LOCK_NAME = "daemon.lock"
STATUS_NAME = "daemon.json"


class DaemonError(SentinelError):
    title = "Watcher error"


class DaemonLock:
    """The daemon's `LockFile`, held for its whole life, with its pid inside."""

    def __init__(self, lock: LockFile) -> None:
        self.lock = lock

    @property
    def path(self) -> Path:
        return self.lock.path

    @classmethod
    def acquire(cls, ws: Workspace) -> DaemonLock:
        """Take the workspace's daemon lock, or explain who holds it."""
        lock = LockFile(ws.root / LOCK_NAME)
        # A few tries: `sentinel status` probes the lock (shared) for a moment.
        for attempt in range(5):
            if lock.acquire(wait=False):
                break
            if attempt == 4:
                pid = lock.holder()
                holder = f" (pid {pid})" if pid and pid > 0 else ""
                raise DaemonError(
                    f"another `sentinel watch`{holder} is already running on workspace "
                    f"{ws.root}; stop it first (one daemon per workspace)"
                )
            time.sleep(0.05)
        lock.write_holder()
        return cls(lock)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.lock.release()


def daemon_running(ws: Workspace) -> int | None:
    """The pid of the daemon holding the lock (-1 if unknown), or None when none runs."""
    return LockFile(ws.root / LOCK_NAME).holder()


def write_status(ws: Workspace, status: dict[str, Any]) -> None:
    """Replace `daemon.json` atomically (owner-only)."""
    final = ws.root / STATUS_NAME
    temporary = final.with_name(f".{STATUS_NAME}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(status, handle)
    os.replace(temporary, final)


def read_status(ws: Workspace) -> dict[str, Any] | None:
    try:
        data = json.loads((ws.root / STATUS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
