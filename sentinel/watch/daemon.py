"""The watch loop: hints and rescans in, exactly-once ingest and detection out.

One pass: take the file events gathered since the last pass (or list every watched
path when the rescan is due), ask the tracker which files are due, and read each from
its checkpoint under the workspace's ingest lock; small files (S3-sync trees) are read
in groups, one normalise query per group (`ingest.smallfiles`). Every committed batch
pokes the detection threads (`detection.Detector`), which run the incremental scan
beside the reads. One `Runtime` serves the daemon's whole life: the config in force,
the DuckDB ingest session with its bound queries, the PII pool, the read buffers and
`state.db`; its memory is bounded and handed back as it is freed (`memory`).
Invariants:

- a checkpoint only moves inside the transaction that commits its batch (`batches`),
  so a SIGKILL at any moment loses nothing and duplicates nothing;
- a failure to write the workspace (full disk, I/O error) pauses all reading and is
  retried with a growing delay: nothing is skipped, no offset runs ahead;
- a file that cannot be read is reported once and not retried until it changes;
- SIGTERM/SIGINT stop between batches (the batch being written is committed first);
  SIGHUP reloads `sentinel.toml` through the Runtime, keeping the old config (and
  logging why) if the new one is invalid; rules and filters are compiled again;
- every part of the daemon reads one config snapshot (`Pinned`): editing
  `sentinel.toml` changes nothing until SIGHUP, and a broken edit never stops ingest
  or detection;
- one read pass lasts about `READ_PASS_SECONDS` at most (a file growing as fast as it
  is read would otherwise hold the loop): a file cut short stays due for the next pass;
- a read pass and a per-event scan take turns (`turns`): their memory peaks never add up.
"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from sentinel.config import Config
from sentinel.exceptions import ConfigError, SentinelError, StoreError
from sentinel.ingest import batches, smallfiles
from sentinel.ingest.engine import FileReport, Tail, formats_for, ingest_file, ingest_files
from sentinel.runtime import Runtime
from sentinel.watch import lock as daemon_lock
from sentinel.watch import memory
from sentinel.watch.detection import Detector
from sentinel.watch.log import EventLog, library_warnings
from sentinel.watch.notify import notify
from sentinel.watch.observe import Hints, Observers
from sentinel.watch.recovery import quarantine_unreadable, skip_to_end_once, verify_checkpoint
from sentinel.watch.targets import Target, targets_of
from sentinel.watch.tracker import Tracked, Tracker, Work
from sentinel.watch.turns import Turns
from sentinel.workspace import Workspace, workspace_lock

HEARTBEAT_SECONDS = 2.0
MAX_WAIT_SECONDS = 1.0
READ_PASS_SECONDS = 2.0
SMALL_FILES_PER_CALL = 200
"""Small files checked and handed to one grouped read at a time: a pass over thousands
of new files makes progress in slices rather than checking them all before reading."""
STORE_RETRY_MAX = 30.0
_STORE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}


@dataclass(frozen=True)
class Pinned(Workspace):
    """A workspace whose config is the daemon's snapshot, not the file as it is now."""

    pinned: Config | None = field(default=None, compare=False, repr=False)

    @property
    def config(self) -> Config:
        assert self.pinned is not None
        return self.pinned


class Daemon:
    def __init__(self, rt: Runtime, log: EventLog) -> None:
        self.rt, self.log = rt, log
        self.config: Config = rt.config
        self.ws: Workspace = Pinned(rt.workspace.root, pinned=self.config)
        self.wake = threading.Event()
        self.hints = Hints(self.wake)
        self.stopping = False
        self.reload_requested = False
        self.tracker = Tracker(self.config.daemon)
        self.targets: list[Target] = targets_of(self.ws)
        self.observers: Observers | None = None
        self.formats: dict[str | None, Any] = {}
        self.started_at = _now()
        self.totals = {"events": 0, "quarantined": 0, "batches_passes": 0}
        self.last_batch_at: str | None = None
        self.store_retry_at = 0.0
        self.store_delay = 0.0
        self.next_rescan = 0.0
        self.last_heartbeat = 0.0
        self.read_until = 0.0
        self.turns = Turns()
        """Read passes and per-event scans take turns (`turns`: their peaks never add up)."""
        self.detector = Detector(self.ws, log, turns=self.turns)

    # -- lifecycle -------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code (0 on a clean stop)."""
        lock = daemon_lock.DaemonLock.acquire(self.ws)
        previous = self._install_signals()
        self.con = self.rt.state_db()
        self.duck = self.rt.ingest_session()
        memory.bound_duckdb(self.duck.con, self.config.daemon)
        try:
            self.detector.start()
            self.log.info(
                "daemon.started", pid=os.getpid(), workspace=str(self.ws.root),
                watches=len(self.targets), detection="on",
            )
            if not self.targets:
                self.log.warning("watch.none", note="no [[watch]] table in sentinel.toml")
            self.observers = Observers(self.targets, self.hints, self.log)
            self._rescan(first=True)
            notify("READY=1")
            self._heartbeat("running", force=True)
            while not self.stopping:
                self._pass()
                self._heartbeat("running")
                if not self.stopping:
                    self.wake.wait(self._wait_seconds())
                    self.wake.clear()
        finally:
            notify("STOPPING=1")
            if self.observers is not None:
                self.observers.stop()
            if not self.detector.stop():
                self.log.warning("detect.interrupted",
                                 note="the scan in progress resumes at the next start")
            self.tracker.close_all()
            self._heartbeat("stopped", force=True)
            self.log.info("daemon.stopped", events=self.totals["events"])
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            lock.release()
        return 0

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous  # embedded (tests): the owner stops it with `request_stop`
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload_requested = True
        else:
            self.stopping = True
        self.wake.set()

    def request_stop(self) -> None:
        """What SIGTERM does, for a daemon run in a thread."""
        self.stopping = True
        self.wake.set()

    def _wait_seconds(self) -> float:
        now = time.monotonic()
        wait = min(self.tracker.next_deadline(now), self.next_rescan - now, MAX_WAIT_SECONDS)
        if self.store_retry_at > now:
            wait = max(wait, min(self.store_retry_at - now, MAX_WAIT_SECONDS))
        return max(wait, 0.01)

    # -- one pass --------------------------------------------------------------------
    def _pass(self) -> None:
        if self.reload_requested:
            self.reload_requested = False
            self._reload()
        now = time.monotonic()
        paths, rescan = self.hints.take()
        if rescan or now >= self.next_rescan:
            self._rescan()
        else:
            for path in paths:
                self.tracker.see(path, self._target_of(path))
        if now < self.store_retry_at:
            return  # the store is failing: read nothing until the retry time
        work = self.tracker.due(time.monotonic())
        if work:
            self._read(work)
            memory.trim()  # the pass's buffers are freed: their pages go back now
        now = time.monotonic()
        for tracked in list(self.tracker.files.values()):
            self.tracker.settle(tracked, now)

    def _target_of(self, path: Path) -> Target | None:
        return next((t for t in self.targets if t.matches(path)), None)

    def _rescan(self, first: bool = False) -> None:
        listed = []
        for target in self.targets:
            try:
                files = list(target.list_files())
            except OSError as exc:
                self.log.warning("watch.list_failed", path=target.config.path, reason=str(exc))
                continue
            if first and target.config.start_at == "end":
                skipped = skip_to_end_once(self.con, target, files)
                if skipped:
                    self.log.info("watch.start_at_end", path=target.config.path, files=skipped)
            for path in files:
                if self.tracker.see(path, target) is not None:
                    listed.append(path)
        self.tracker.forget_unlisted(listed)
        interval = self.config.daemon.rescan_interval
        if self.observers is not None and self.observers.unobserved:
            interval = min(interval, 5.0)  # no events for some targets: rescan more often
        self.next_rescan = time.monotonic() + interval

    def _read(self, work: list[Work]) -> None:
        sources: set[str] = set()
        # The lock `sentinel ingest` takes, without waiting for it (see `batches`).
        with workspace_lock(self.ws, "ingest", wait=False) as locked, self.turns.turn("ingest"):
            if not locked:
                return  # a `sentinel ingest` is running: its turn, ours next pass
            self.read_until = time.monotonic() + READ_PASS_SECONDS  # from the turn on
            try:
                batches.recover(self.con, self.ws)
            except (OSError, sqlite3.Error, SentinelError) as exc:
                self._store_failed(exc)
                return
            small = [item for item in work if smallfiles.grouped(item.file.read_path)]
            if len(small) > 1:
                alone = self._read_small(small, sources)
                if alone is None:
                    return  # the store failed
                grouped = {id(item) for item in small}  # by identity: thousands of items
                work = alone + [item for item in work if id(item) not in grouped]
            for item in work:
                if self.stopping or time.monotonic() >= self.read_until:
                    break  # the rest stays due: read at the next pass
                if not self._read_one(item, sources):
                    break

    def _stopper(self) -> tuple[Callable[[], bool], Callable[[], bool]]:
        """`stop` for a read (asked between batches and files), and whether it cut the
        read short because the pass's time was up."""
        cut = False

        def stop() -> bool:
            # Asked between batches: the previous one is handed to its commit, so the
            # scan thread may look now; past the pass's time the rest waits its turn.
            nonlocal cut
            self.detector.poke()
            cut = cut or time.monotonic() >= self.read_until
            return self.stopping or cut

        return stop, lambda: cut and not self.stopping

    def _read_small(self, items: list[Work], sources: set[str]) -> list[Work] | None:
        """Read small files in groups (`smallfiles`: one normalise query per group);
        the items left to read alone, or None when the store failed."""
        alone: list[Work] = []
        groups: dict[tuple[int, bool], list[Work]] = {}
        for item in items:
            groups.setdefault((id(item.file.target), item.finish), []).append(item)
        slices = [
            (finish, group[i : i + SMALL_FILES_PER_CALL])
            for (_, finish), group in groups.items()
            for i in range(0, len(group), SMALL_FILES_PER_CALL)
        ]
        for finish, group in slices:
            if self.stopping or time.monotonic() >= self.read_until:
                break  # the rest stays due: read at the next pass
            ready = []
            for item in group:
                # Not held open (`tracker.before_read`): a small file is read whole in one
                # go, and with thousands of them the fd budget's bookkeeping dominated.
                try:
                    verify_checkpoint(self.con, item.file.read_path, self.log)
                    ready.append(item)
                except Exception:  # noqa: BLE001 - read alone: the usual path says why
                    alone.append(item)
            stop, _ = self._stopper()
            tail = Tail(finish=finish, batch_bytes=self.config.daemon.batch_bytes, stop=stop)
            try:
                reports = ingest_files(
                    self.ws, self.con, self.duck, [i.file.read_path for i in ready],
                    self._formats(group[0].file.target), self._key, tail, runtime=self.rt,
                    config=self.config,
                )
            except Exception as exc:  # noqa: BLE001 - classified: store vs the files' input
                if _is_store_failure(exc, self.ws.root):
                    self._store_failed(exc)
                    return None
                alone += ready  # one of them is bad: each alone, so it costs no other
                continue
            self._store_ok()
            for item, report in zip(ready, reports, strict=False):
                # A small file is one batch: reported means read to its end (the files
                # the pass had no time for got no report and stay due).
                self._after_read(item, report, sources, False)
        return alone

    def _read_one(self, item: Work, sources: set[str]) -> bool:
        """Read one file; False when the store failed (stop this pass)."""
        tracked = item.file
        self.tracker.before_read(tracked)
        path = tracked.read_path
        stop, cut = self._stopper()
        tail = Tail(finish=item.finish, batch_bytes=self.config.daemon.batch_bytes, stop=stop)
        try:
            verify_checkpoint(self.con, path, self.log)
            report = ingest_file(
                self.ws, self.con, self.duck, path, self._formats(tracked.target), self._key,
                tail, runtime=self.rt, config=self.config,
            )
        except FileNotFoundError:
            self.tracker.drop(tracked)  # gone between the stat and the read
            return True
        except Exception as exc:  # noqa: BLE001 - classified: store vs this file's input
            if _is_store_failure(exc, self.ws.root):
                self._store_failed(exc)
                return False
            self._file_failed(tracked, item, exc)
            return True
        self._store_ok()
        self._after_read(item, report, sources, cut())
        return True

    def _after_read(self, item: Work, report: FileReport, sources: set[str], cut: bool) -> None:
        tracked = item.file
        self.tracker.after_read(item, time.monotonic(), cut=cut)
        self.detector.poke()
        if report.skipped and not report.ignored:
            if report.skipped != "empty file":  # a log just created by rotation: not news
                self.log.warning("file.skipped", path=str(tracked.path), reason=report.skipped)
            tracked.failed = tracked.seen
        if report.events or report.quarantined:
            self.totals["events"] += report.events
            self.totals["quarantined"] += report.quarantined
            self.last_batch_at = _now()
            self.log.info(
                "ingested", path=str(tracked.path), source=report.source, events=report.events,
                quarantined=report.quarantined, finished=item.finish,
            )
            if report.events and report.source:
                sources.add(report.source)

    @property
    def _key(self) -> bytes:
        return self.ws.secret_key()

    def _formats(self, target: Target) -> Any:
        source = target.config.source
        if source not in self.formats:
            self.formats[source] = formats_for(self.ws, source)
        return self.formats[source]

    def _file_failed(self, tracked: Tracked, item: Work, exc: BaseException) -> None:
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        tracked.failed = tracked.seen
        self.log.error("file.failed", path=str(tracked.path), reason=reason)
        if item.finish:
            # Idle and still unreadable (a truncated or corrupt .gz): quarantined once
            # with the reason, then left alone until the file changes.
            quarantine_unreadable(self.ws, self.con, tracked.read_path, tracked.path, reason)
            self.log.warning("file.quarantined", path=str(tracked.path), reason=reason)

    def _store_failed(self, exc: BaseException) -> None:
        self.store_delay = min(max(self.store_delay * 2, 1.0), STORE_RETRY_MAX)
        self.store_retry_at = time.monotonic() + self.store_delay
        self.log.error(
            "store.paused", reason=str(exc) or type(exc).__name__, retry_in=self.store_delay,
            note="reading paused; checkpoints stay at the last committed batch",
        )

    def _store_ok(self) -> None:
        if self.store_delay:
            self.log.info("store.resumed")
        self.store_delay = 0.0

    # -- reload and status -----------------------------------------------------------
    def _reload(self) -> None:
        try:
            config = self.rt.reload_config()
            ws = Pinned(self.ws.root, pinned=config)
            targets = targets_of(ws)
        except ConfigError as exc:
            self.log.error("config.invalid", reason=exc.message, note="keeping the old config")
            return
        self.ws, self.config, self.targets = ws, config, targets
        self.tracker.config = config.daemon
        memory.bound_duckdb(self.duck.con, config.daemon)
        self.formats = {}
        self.detector.reload(ws)
        if self.observers is not None:
            self.observers.stop()
        self.observers = Observers(self.targets, self.hints, self.log)
        self._rescan()
        self.log.info("config.reloaded", watches=len(targets))

    def _heartbeat(self, state: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_heartbeat < HEARTBEAT_SECONDS:
            return
        self.last_heartbeat = now
        status = {
            "state": state, "pid": os.getpid(), "started_at": self.started_at,
            "heartbeat": _now(), "watching": len(self.tracker.files),
            "open_files": self.tracker.open_files, "events": self.totals["events"],
            "quarantined": self.totals["quarantined"], "last_batch_at": self.last_batch_at,
            "store_paused": self.store_delay > 0,
            "detect": {
                "scans": self.detector.scans, "alerts": self.detector.alerts,
                "incidents_opened": self.detector.incidents_opened,
                "scanning": self.detector.busy,
            },
        }
        if state == "stopped":
            status["stopped_at"] = status["heartbeat"]
        try:
            daemon_lock.write_status(self.ws, status)
        except OSError as exc:
            self.log.warning("status.write_failed", reason=str(exc))
        if state == "running":
            notify("WATCHDOG=1")


def _is_store_failure(exc: BaseException, root: Path) -> bool:
    """A failure to write the workspace (retry later), as opposed to a bad input file."""
    if isinstance(exc, StoreError | sqlite3.Error):
        return True
    if isinstance(exc, OSError):
        if exc.errno in _STORE_ERRNOS:
            return True
        name = exc.filename
        return isinstance(name, str) and Path(name).is_relative_to(root)
    return "No space left on device" in str(exc)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def run_daemon(workspace: str | os.PathLike[str], log_format: str = "text") -> int:
    """`sentinel watch`: tail the configured paths until stopped; the exit code."""
    log = EventLog(log_format)
    memory.tune_malloc()  # before the Runtime starts its threads
    # A broken config fails here, before the lock is taken.
    with Runtime(Workspace.open(workspace)) as rt, library_warnings(log):
        return Daemon(rt, log).run()
