"""The workspace's playbooks, parsed again only when one of their files changed.

Parsing every playbook (YAML, validation) costs tens of milliseconds a file; the watcher
opens incidents after every per-event scan (a scan a second or two under load) and the
TUI refreshes its queue whenever an incident changes, so both keep one `Playbooks` and
ask it each time. It checks the playbook directories' listing (name, inode, size, mtime
of every `*.yml`/`*.yaml`): any file added, removed, edited or replaced is noticed at
the next `load`, and only then is everything parsed again.

Invariants:
- `load` returns what `load_playbooks` would return now, or raises what it would raise:
  a cache never serves a playbook whose file has since changed (up to the file system's
  mtime resolution for an edit that keeps the size, inode and mtime);
- `strict=False` (the TUI): a broken playbook file gives no playbooks rather than an
  error (no deadlines rather than no queue); `strict=True` (incident intake): the
  `PlaybookError` of the broken files, raised again on each `load` until they change,
  without parsing them again;
- the directories come from the workspace's config when the cache is made; a new config
  (the daemon's SIGHUP) takes a new cache.
- `routes` is `load`'s playbooks as the intake's routes: the watcher's lanes hand the
  cache itself to the intake (a `respond.routes.RouteSource`), so what they route by
  changes exactly when `load` does.
"""

from __future__ import annotations

import os
import threading

from sentinel.exceptions import SentinelError
from sentinel.respond.playbook import Playbook, load_playbooks, routes_of
from sentinel.respond.routes import Route, playbook_dirs, playbook_files
from sentinel.workspace import Workspace

Signature = tuple[tuple[str, int, int, int], ...]


def signature(ws: Workspace | None) -> Signature:
    """What changes when a playbook file is added, removed, edited or replaced."""
    stamp: list[tuple[str, int, int, int]] = []
    for directory in playbook_dirs(ws):
        for path in playbook_files(directory):
            try:
                st = os.stat(path)
            except OSError:
                continue  # removed since the listing: the next load sees it gone
            stamp.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


class Playbooks:
    """The playbooks of one workspace (config), parsed again only when a file changed."""

    def __init__(self, ws: Workspace | None, *, strict: bool = False) -> None:
        self.ws, self.strict = ws, strict
        self._lock = threading.Lock()
        self._signature: Signature | None = None
        self._books: dict[str, Playbook] = {}
        self._error: SentinelError | None = None
        self.parses = 0
        """How many times the files were parsed (for tests and `--stats`)."""

    def load(self) -> dict[str, Playbook]:
        """Every playbook by name (see the module for what a broken file gives)."""
        current = signature(self.ws)
        with self._lock:
            if current != self._signature:
                self.parses += 1
                try:
                    self._books, self._error = load_playbooks(self.ws), None
                except SentinelError as exc:
                    self._books, self._error = {}, exc
                self._signature = current
            if self._error is not None and self.strict:
                raise self._error
            return dict(self._books)

    def routes(self) -> dict[str, Route]:
        """What the incident intake needs of `load()` (`respond.routes`), raising alike."""
        return routes_of(self.load())
