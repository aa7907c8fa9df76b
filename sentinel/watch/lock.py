"""One daemon per workspace: an flock'd lock file, and the status file beside it.

`daemon.lock` is locked with flock for the daemon's whole life. The kernel releases
the lock when the process dies, however it dies, so a SIGKILLed daemon never blocks a
restart; the pid written inside is only for the message. `daemon.json` is the
daemon's heartbeat, replaced atomically (write, rename) so a reader never sees
half of it; `sentinel status` trusts it only while the lock is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentinel.exceptions import SentinelError
from sentinel.workspace import Workspace

LOCK_NAME = "daemon.lock"
STATUS_NAME = "daemon.json"


class DaemonError(SentinelError):
    title = "Watcher error"


@dataclass
class DaemonLock:
    fd: int
    path: Path

    @classmethod
    def acquire(cls, ws: Workspace) -> DaemonLock:
        """Take the workspace's daemon lock, or explain who holds it."""
        path = ws.root / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # A few tries: `sentinel status` probes the lock for a moment.
        for attempt in range(5):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 4:
                    pid = _read_pid(fd)
                    os.close(fd)
                    holder = f" (pid {pid})" if pid else ""
                    raise DaemonError(
                        f"another `sentinel watch`{holder} is already running on workspace "
                        f"{ws.root}; stop it first (one daemon per workspace)"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


def daemon_running(ws: Workspace) -> int | None:
    """The pid of the daemon holding the lock, or None when no daemon runs."""
    path = ws.root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


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
