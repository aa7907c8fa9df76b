"""Which files to read now, and how: the daemon's memory of the files it tails.

Files are tracked by device+inode, not by path, so a renamed file is the same file and
a new file under an old name is a new one. This memory is only a trigger: it decides
*when* to call ingest (a batch is closed once `batch_bytes` are waiting or the oldest
unread byte has waited `batch_seconds`; a partial last line is finished once the file
has been idle `idle_timeout`). What is read, and from where, is always decided by the
checkpoint in `state.db`, so forgetting everything here (a restart) loses nothing.

A file being read is held open (up to `max_open_files`) so that, once rotated away or
deleted, it is still read to its end through the handle (`/proc/self/fd/N`). Idle,
finished files are closed; with 10,000 files watched only the active ones are open.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

from sentinel.config import DaemonConfig
from sentinel.watch.targets import Target

PROC_FD = Path("/proc/self/fd")
KEEP_OPEN_SECONDS = 30.0
"""A finished file stays open this long after its last change (longer than the idle
timeout): a writer that pauses, then appends and rotates, is still read through it."""
Key = tuple[int, int]


@dataclass
class Tracked:
    key: Key
    path: Path
    target: Target
    fd: int | None = None
    read_size: int = -1
    """Size at the last read (-1: never read by this process)."""
    read_mtime: int = -1
    seen: tuple[int, int] = (-1, -1)
    """(size, mtime_ns) at the last stat."""
    unread_since: float | None = None
    changed_at: float = field(default_factory=time.monotonic)
    finished: bool = False
    """Read to its very end, partial last line included, at `read_size`."""
    orphan: bool = False
    """No watched path names it any more (rotated away, deleted): read it out, drop it."""
    failed: tuple[int, int] | None = None
    """(size, mtime_ns) at which reading failed: not retried until the file changes."""

    @property
    def read_path(self) -> Path:
        """Where to read it: the open handle when held (survives rename and unlink)."""
        if self.fd is not None:
            return PROC_FD / str(self.fd)
        return self.path


@dataclass
class Work:
    file: Tracked
    finish: bool


class Tracker:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.files: dict[Key, Tracked] = {}
        self.by_path: dict[Path, Key] = {}
        self.hold = PROC_FD.is_dir()

    @property
    def open_files(self) -> int:
        return sum(1 for f in self.files.values() if f.fd is not None)

    def see(self, path: Path, target: Target | None) -> Tracked | None:
        """Note that `path` exists (or vanished): start tracking it, notice rotation."""
        try:
            stat = os.stat(path)
        except OSError:
            self._forget_path(path)
            return None
        if not S_ISREG(stat.st_mode):
            return None  # directories, FIFOs, devices: never tailed
        key = (stat.st_dev, stat.st_ino)
        old = self.by_path.get(path)
        if old is not None and old != key:
            self._forget_path(path)  # the name now belongs to another file (rotation)
        tracked = self.files.get(key)
        if tracked is None:
            if target is None:
                return None
            tracked = Tracked(key, path, target)
            self.files[key] = tracked
        tracked.path, tracked.orphan = path, False
        self.by_path[path] = key
        return tracked

    def _forget_path(self, path: Path) -> None:
        key = self.by_path.pop(path, None)
        tracked = self.files.get(key) if key else None
        if tracked is not None and tracked.path == path:
            tracked.orphan = True
            if tracked.fd is None:
                del self.files[tracked.key]  # out of reach: its checkpoint stays in state.db

    def due(self, now: float) -> list[Work]:
        """Files to read now, oldest waiting first."""
        work: list[Work] = []
        for tracked in list(self.files.values()):
            stat = self._stat(tracked)
            if stat is None:
                continue
            seen = (stat.st_size, stat.st_mtime_ns)
            if seen != tracked.seen:
                tracked.seen, tracked.changed_at = seen, now
                if tracked.unread_since is None:
                    tracked.unread_since = now
                tracked.finished = False
            if tracked.failed is not None:
                if tracked.failed == seen:
                    continue
                tracked.failed = None
            config = self.config
            if tracked.unread_since is not None and (
                stat.st_size - max(tracked.read_size, 0) >= config.batch_bytes
                or now - tracked.unread_since >= config.batch_seconds
            ):
                work.append(Work(tracked, finish=False))
            elif not tracked.finished and now - tracked.changed_at >= config.idle_timeout:
                work.append(Work(tracked, finish=True))
        work.sort(key=lambda w: w.file.unread_since or w.file.changed_at)
        return work

    def _stat(self, tracked: Tracked) -> os.stat_result | None:
        try:
            if tracked.fd is not None:
                stat = os.fstat(tracked.fd)
                if stat.st_nlink == 0:
                    tracked.orphan = True  # deleted: read the rest through the handle
                return stat
            stat = os.stat(tracked.path)
        except OSError:
            self.drop(tracked)
            return None
        if (stat.st_dev, stat.st_ino) != tracked.key:
            self.drop(tracked)
            return None
        return stat

    def before_read(self, tracked: Tracked) -> None:
        """Hold the file open while it is active (within the budget)."""
        if tracked.fd is None and self.hold and self._room():
            try:
                fd = os.open(tracked.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError:
                return
            stat = os.fstat(fd)
            if (stat.st_dev, stat.st_ino) != tracked.key:
                os.close(fd)  # renamed over since the stat: read it by path this time
                return
            tracked.fd = fd

    def _room(self) -> bool:
        """Whether one more file may be held open; closes the stalest finished one if not."""
        if self.open_files < self.config.max_open_files:
            return True
        idle = [f for f in self.files.values() if f.fd is not None and f.finished and not f.orphan]
        if not idle:
            return False
        self._close(min(idle, key=lambda f: f.changed_at))
        return True

    def after_read(self, work: Work, now: float, cut: bool = False) -> None:
        tracked = work.file
        if cut:
            # Stopped part-way (the pass's time was up): due again at once, but behind
            # the files that have waited longer, so one busy file cannot starve the rest.
            tracked.unread_since = now - self.config.batch_seconds
            return
        tracked.read_size, tracked.read_mtime = tracked.seen
        tracked.unread_since = None
        if work.finish:
            tracked.finished = True
        else:
            tracked.changed_at = now  # the idle timeout counts from the last read of new data
        self.settle(tracked, now)

    def settle(self, tracked: Tracked, now: float) -> None:
        """Close a finished file idle for long; forget a finished orphan."""
        if not tracked.finished:
            return
        if tracked.orphan:
            self.drop(tracked)
        elif tracked.fd is not None and now - tracked.changed_at >= KEEP_OPEN_SECONDS:
            self._close(tracked)

    def drop(self, tracked: Tracked) -> None:
        self._close(tracked)
        self.files.pop(tracked.key, None)
        if self.by_path.get(tracked.path) == tracked.key:
            del self.by_path[tracked.path]

    def _close(self, tracked: Tracked) -> None:
        if tracked.fd is not None:
            with contextlib.suppress(OSError):
                os.close(tracked.fd)
            tracked.fd = None

    def forget_unlisted(self, listed: Iterable[Path]) -> None:
        """After a full rescan: paths no longer listed are gone or no longer watched."""
        keep = set(listed)
        for path in [p for p in self.by_path if p not in keep]:
            self._forget_path(path)

    def close_all(self) -> None:
        for tracked in list(self.files.values()):
            self._close(tracked)

    def next_deadline(self, now: float) -> float:
        """Seconds until some file becomes due (capped by the caller)."""
        config, wait = self.config, 3600.0
        for tracked in self.files.values():
            if tracked.failed is not None:
                continue
            if tracked.unread_since is not None:
                wait = min(wait, tracked.unread_since + config.batch_seconds - now)
            elif not tracked.finished:
                wait = min(wait, tracked.changed_at + config.idle_timeout - now)
        return max(wait, 0.0)
