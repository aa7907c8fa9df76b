"""File events from watchdog, turned into hints for the daemon's next pass.

inotify (or the platform's equivalent) for local paths; watchdog's PollingObserver for
`poll = true` targets (NFS and SMB deliver no inotify events for changes made by other
machines). A target whose root does not exist yet, or that hits the inotify watch
limit, is left to the periodic rescan, with a warning: events make the daemon quick,
the rescan makes it correct.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from sentinel.watch.log import EventLog
from sentinel.watch.targets import Target

POLL_SECONDS = 1.0


class Hints:
    """Paths named by file events since the last pass (thread-safe)."""

    def __init__(self, wake: threading.Event) -> None:
        self.lock = threading.Lock()
        self.paths: set[Path] = set()
        self.rescan = False
        self.wake = wake

    def add(self, *paths: Path, rescan: bool = False) -> None:
        with self.lock:
            self.paths.update(paths)
            self.rescan = self.rescan or rescan
        self.wake.set()

    def take(self) -> tuple[set[Path], bool]:
        with self.lock:
            paths, rescan = self.paths, self.rescan
            self.paths, self.rescan = set(), False
        return paths, rescan


class _Handler(FileSystemEventHandler):
    def __init__(self, hints: Hints) -> None:
        self.hints = hints

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [Path(_text(event.src_path))]
        if getattr(event, "dest_path", ""):
            paths.append(Path(_text(event.dest_path)))
        # A new or moved-in directory (an S3 sync creating a prefix) may already hold
        # files whose events came before its watch: have the next pass list it.
        self.hints.add(*paths, rescan=event.is_directory and event.event_type != "modified")


def _text(path: bytes | str) -> str:
    return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path


class Observers:
    """The running observers for one set of targets (rebuilt on reload)."""

    def __init__(self, targets: list[Target], hints: Hints, log: EventLog) -> None:
        self.observers: list[BaseObserver] = []
        self.unobserved: list[Target] = []
        handler = _Handler(hints)
        native: BaseObserver | None = None
        polling: BaseObserver | None = None
        for target in targets:
            if not target.root.is_dir():
                log.warning("watch.missing", path=target.config.path,
                            note="not there yet; found by the periodic rescan")
                self.unobserved.append(target)
                continue
            # Started before scheduling, so that scheduling adds the watches now and a
            # limit reached raises here, for this target.
            if target.config.poll:
                polling = polling or self._started(PollingObserver(timeout=POLL_SECONDS))
                observer = polling
            else:
                native = native or self._started(Observer())
                observer = native
            try:
                observer.schedule(handler, str(target.root), recursive=target.recursive)
            except OSError as exc:
                limit = exc.errno in (errno.ENOSPC, errno.EMFILE)
                log.warning(
                    "watch.events_unavailable", path=target.config.path,
                    reason="inotify watch limit reached (fs.inotify.max_user_watches)"
                    if limit else str(exc),
                    note="falling back to periodic rescans",
                )
                self.unobserved.append(target)

    def _started(self, observer: BaseObserver) -> BaseObserver:
        observer.daemon = True
        observer.start()
        self.observers.append(observer)
        return observer

    def stop(self, on_stopped: Callable[[], None] | None = None) -> None:
        for observer in self.observers:
            observer.stop()
        for observer in self.observers:
            observer.join(timeout=2)
        self.observers = []
        if on_stopped:
            on_stopped()
