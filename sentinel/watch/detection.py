"""Detection on arrival: the incremental scan, run beside ingest as batches commit.

The scan itself (rules since their watermark -> alerts -> incidents) is `sentinel scan`'s
(`sentinel.scan.runner.run_scan`); the daemon runs it in two threads of its own, so
reading the next batch never waits for a scan and a scan never waits for a long read:

- **Per-event lane.** Detection rules (one event at a time: a card, a key, a blocked
  model) run after every commit and read only the new batches: their incidents follow
  the line within seconds. `poke()` (after every committed batch) wakes it; it also
  looks at `state.db` every `POLL_SECONDS`, so batches committed by a `sentinel ingest`
  beside the daemon are scanned too. Pokes that arrive during a scan coalesce into one
  more scan, which covers every batch committed meanwhile.
- **Lookback lane.** Correlations and baselines look back over their own window (up to
  an hour of events), which costs far more than a second of new events, so they run at
  most every `CORRELATE_SECONDS`, and never more than `CORRELATE_SHARE` of the time (a
  lookback scan that took 20 s is next due 180 s after it ended). Their watermarks
  simply stay behind meanwhile; the next lookback scan covers every batch since.
- The two lanes hold different scan locks (`runner.scan_lock`: one per rule class), so
  a per-event scan never waits behind a long lookback scan, while two scans of one
  class (the daemon's and a cron `sentinel scan`) still run one after the other and
  never count a batch twice.
- Each lane keeps one DuckDB (with the sentinel macros) and one playbook cache
  (`respond.books`) from scan to scan, in its own thread: opening a DuckDB and parsing
  the playbooks were a third of a per-event scan. Both are made again after a SIGHUP
  (new limits, new playbook directories) and after a failed scan (a failed query may
  leave its connection in any state).
- Each lane's DuckDB runs within `[daemon] duckdb_memory_mb` and the lookback lane's on
  one thread (`DuckLimits`), and hands freed memory back beyond `FLUSH_MB` instead of
  keeping it for the next scan: the daemon's memory stays bounded however long the
  lookback, and a lookback scan leaves the other core to ingest and the per-event lane.
- The lookback lane starts lower, at `LOOKBACK_MEMORY_MB`: its window queries spill to
  disk, and an hour's window read within 256 MB was the daemon's largest memory spike
  (+220 MB on 440,000 events, +93 MB within 64 MB).
- A lookback scan reads its backlog in steps of at most `LOOKBACK_EVENTS` events past
  its rules' oldest watermark (`run_scan(max_events=…)`; correlations keep their state
  between scans, so a step is an ordinary increment), and the next step follows on the
  lane's cadence. Without steps, a lookback that had fallen behind read everything at
  once: a whole 1,000,000-line burst, or the 177 batches (530,000 events) it was behind
  after five minutes at 2,000 events/s, ran out of 64 MB, and at 128 MB was the daemon's
  peak (887 and 583 MB). Replayed on a bench workspace, a step took all of its
  `memory_limit` and ~30-40 MB besides, from 1 to 100,000 new events: the rest is the
  correlations' state (two hourly sums over every event; not the daemon's to shrink).
  A step that runs out of memory is retried at half the events, down to
  `MIN_LOOKBACK_EVENTS`, then at twice the limit, up to `duckdb_memory_mb`. The lane
  keeps the smaller step and the higher limit until the next SIGHUP: a window that
  outgrows the start never stops the correlations.
- The compiled rule pack is kept between scans and rebuilt only when a rule or filter
  file changes (name, size, mtime) or the config is reloaded (SIGHUP): compiling the
  pack (YAML, pySigma) costs more than scanning a second of events.
- The watermark and the alerts of a rule commit together, so a scan cut short by
  SIGKILL or a stop is simply taken up again by the next one, and an alert is never
  recorded twice (its id is derived from its content).
- A failing scan is logged and retried with a growing delay (up to `RETRY_MAX`);
  ingest and the other lane go on meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from sentinel.exceptions import SentinelError
from sentinel.respond.books import Playbooks
from sentinel.scan.lakefiles import newest_seq
from sentinel.scan.runner import (
    DuckLimits,
    ScanReport,
    compile_rules,
    connect,
    rule_paths,
    run_scan,
)
from sentinel.store.db import open_db
from sentinel.watch import memory
from sentinel.watch.log import EventLog
from sentinel.watch.turns import Turns
from sentinel.workspace import Workspace

POLL_SECONDS = 1.0
CORRELATE_SECONDS = 30.0
"""At most this often (from the end of the last one) a lookback scan."""
CORRELATE_SHARE = 0.1
"""… and at most this share of the time spent in lookback scans (they cost a core)."""
RETRY_MAX = 30.0
FLUSH_MB = 16
"""A lane's DuckDB keeps at most this much freed memory for reuse (DuckDB's default:
128 MB per task, which a connection kept for months would hold on to)."""
LOOKBACK_MEMORY_MB = 64
"""Where the lookback lane's `memory_limit` starts (see the module docstring)."""
LOOKBACK_EVENTS = 100_000
"""The most events one lookback scan reads (its step; halved when it runs out of memory)
…"""
MIN_LOOKBACK_EVENTS = LOOKBACK_EVENTS // 4
"""… down to this; then its `memory_limit` is raised instead."""
STOP_GRACE_SECONDS = 3.0
"""How long a stop waits for the scans in progress before leaving them (they resume from
their watermarks at the next start)."""

Stamp = tuple[tuple[str, int, int], ...]
Pack = tuple[list[Any], list[Any], Any]


def rules_stamp(ws: Workspace) -> Stamp:
    """What changes when a rule or filter file is added, removed or edited."""
    paths = [*rule_paths(ws, None), *(ws.root / p for p in ws.config.detect.filters)]
    stamp: list[tuple[str, int, int]] = []
    for path in paths:
        files = [path] if not path.is_dir() else sorted(
            Path(d, name) for d, _, names in os.walk(path) for name in names
        )
        for file in files:
            try:
                st = file.stat()
            except OSError:
                continue
            stamp.append((str(file), st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def next_full_after(seconds: float) -> float:
    """How long after a lookback scan that took `seconds` the next one is due."""
    return max(CORRELATE_SECONDS, seconds * (1 - CORRELATE_SHARE) / CORRELATE_SHARE)


def limits_of(ws: Workspace, lookback: bool, memory_mb: int | None = None) -> DuckLimits:
    """The DuckDB limits of a lane's scans (`[daemon] duckdb_*`; `memory_mb`: the lane's
    own, never above `duckdb_memory_mb`)."""
    daemon = ws.config.daemon
    memory_mb = min(memory_mb or daemon.duckdb_memory_mb, daemon.duckdb_memory_mb)
    return DuckLimits(memory_mb, 1 if lookback else daemon.duckdb_threads, flush_mb=FLUSH_MB)


def out_of_memory(exc: BaseException | None) -> bool:
    """Whether a scan failed because its DuckDB reached its `memory_limit`."""
    while exc is not None:
        if isinstance(exc, duckdb.OutOfMemoryException) or "Out of Memory" in str(exc):
            return True
        exc = exc.__cause__
    return False


@dataclass
class Lane:
    """One scan thread: which rules it runs, and how far they have got."""

    lookback: bool
    wake: threading.Event = field(default_factory=threading.Event)
    scanned: int = -1
    """The newest batch rowid this lane's rules have covered."""
    next_due: float = 0.0
    busy: bool = False
    thread: threading.Thread | None = None
    duck: duckdb.DuckDBPyConnection | None = None
    playbooks: Playbooks | None = None
    generation: int = -1
    """The config generation `duck` and `playbooks` were made for (`Detector.reload`)."""
    opened: int = 0
    """How many DuckDB connections this lane has opened (one per config, or failure)."""
    memory_mb: int | None = None
    """This lane's `memory_limit` (None: `duckdb_memory_mb`)."""
    max_events: int | None = None
    """The most events one of this lane's scans reads (None: every new one)."""

    def __post_init__(self) -> None:
        self.reset_limits()

    def reset_limits(self) -> None:
        """The limits a lane starts with (and takes again after a SIGHUP)."""
        self.memory_mb = LOOKBACK_MEMORY_MB if self.lookback else None
        self.max_events = LOOKBACK_EVENTS if self.lookback else None

    @property
    def name(self) -> str:
        return "lookback" if self.lookback else "per-event"


class Detector:
    """The daemon's two scan threads (see the module docstring)."""

    def __init__(
        self, ws: Workspace, log: EventLog, scan: Callable[..., ScanReport] = run_scan,
        turns: Turns | None = None,
    ) -> None:
        self.ws, self.log, self._run_scan = ws, log, scan
        self.turns = turns or Turns()
        """Shared with the daemon's read passes: a per-event scan takes its turn."""
        self._stopping = False
        self._lock = threading.Lock()
        self._compiling = threading.Lock()
        """Both lanes may find the pack stale at once: one compiles it, the other waits."""
        self._packs: tuple[Pack, Pack] | None = None
        """The pack's detection rules, and its correlations (the two lanes' rules)."""
        self._stamp: Stamp | None = None
        self._generation = 0
        self.per_event = Lane(lookback=False)
        self.lookback = Lane(lookback=True)
        self.scans = 0
        self.alerts = 0
        self.incidents_opened = 0
        self.last_scan_at: float | None = None

    @property
    def lanes(self) -> tuple[Lane, Lane]:
        return self.per_event, self.lookback

    @property
    def busy(self) -> bool:
        return any(lane.busy for lane in self.lanes)

    @property
    def scanned(self) -> int:
        """The newest batch rowid the detection rules have covered."""
        return self.per_event.scanned

    @property
    def scanned_full(self) -> int:
        """… and the correlations and baselines."""
        return self.lookback.scanned

    def start(self) -> None:
        for lane in self.lanes:
            lane.thread = threading.Thread(
                target=self._loop, args=(lane,), name=f"sentinel-detect-{lane.name}",
                daemon=True,
            )
            lane.thread.start()

    def poke(self) -> None:
        """New batches were committed: scan them soon (the lookback lane keeps its pace)."""
        self.per_event.wake.set()

    def reload(self, ws: Workspace) -> None:
        """A new config (SIGHUP): rules, filters and variables are compiled again."""
        with self._lock:
            self.ws, self._packs, self._stamp = ws, None, None
            self._generation += 1
            self.lookback.next_due = 0.0
            self.lookback.reset_limits()
        for lane in self.lanes:
            lane.wake.set()

    def stop(self) -> bool:
        """Stop after the scans in progress, waiting at most `STOP_GRACE_SECONDS`.

        Returns False when a scan was left running (it holds no batch; its rules that
        finished are committed, the others are scanned again at the next start)."""
        self._stopping = True
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for lane in self.lanes:
            lane.wake.set()
        alive = False
        for lane in self.lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.0, deadline - time.monotonic()))
                alive = alive or lane.thread.is_alive()
        return not alive

    # -- the threads ------------------------------------------------------------------
    def _loop(self, lane: Lane) -> None:
        con = open_db(self.ws.state_db)
        delay = 0.0
        try:
            while not self._stopping:
                lane.wake.wait(max(delay, POLL_SECONDS))
                lane.wake.clear()
                if self._stopping:
                    break
                try:
                    if newest_seq(con) <= lane.scanned or time.monotonic() < lane.next_due:
                        continue
                    self._scan_once(lane.lookback)
                    delay = 0.0
                except Exception as exc:  # noqa: BLE001 - retried from the watermarks
                    if self._stopping:
                        break  # interrupted by the stop: resumed at the next start
                    delay = min(max(delay * 2, 1.0), RETRY_MAX)
                    reason = exc.message if isinstance(exc, SentinelError) else repr(exc)
                    self.log.error("detect.failed", lane=lane.name, reason=reason,
                                   retry_in=delay,
                                   note="ingest goes on; the scan resumes at its watermarks")
        finally:
            con.close()
            _release(lane)

    def _scan_once(self, lookback: bool = False) -> None:
        """One scan of a lane's rules (the lookback lane: with the baselines)."""
        lane = self.lookback if lookback else self.per_event
        with self._lock:
            ws, generation = self.ws, self._generation
        packs = self._compiled(ws)
        lane.busy = True
        started = time.monotonic()
        try:
            # The per-event scan waits its turn beside ingest's read passes (`turns`); the
            # lookback lane runs beside both, within its own bounds.
            with nullcontext() if lookback else self.turns.turn("per-event scan"):
                duck, playbooks = self._kept(lane, ws, generation)
                report = self._run_scan(
                    ws, open_incidents=True, compiled_pack=packs[lookback],
                    baselines_too=lookback, limits=limits_of(ws, lookback, lane.memory_mb),
                    duck=duck, playbooks=playbooks, max_events=lane.max_events,
                )
        except BaseException as exc:
            _release(lane)  # a failed query may leave its connection in any state
            if lane.memory_mb is not None and out_of_memory(exc):
                self._ran_out(lane, ws.config.daemon.duckdb_memory_mb)
            raise
        finally:
            lane.busy = False
            memory.trim()
        seconds = time.monotonic() - started
        lane.scanned = max(lane.scanned, report.batch_seq)
        if lookback:
            wait = next_full_after(seconds)
            lane.next_due = time.monotonic() + wait
            # At most every CORRELATE_SECONDS: what the lookback costs, seen in the log.
            self.log.info("detect.lookback", seconds=round(seconds, 3),
                          batches=report.new_batches, alerts=len(report.alerts),
                          memory_mb=lane.memory_mb, step=lane.max_events,
                          next_in=round(wait, 1))
        with self._lock:
            self.scans += 1
            self.alerts += len(report.alerts)
            self.incidents_opened += report.incidents_opened
            self.last_scan_at = time.time()
        if report.alerts:
            sources = sorted({s for a in report.alerts
                              for s in a.sources or [e.source for e in a.events] if s})
            self.log.info(
                "detect.alerts", alerts=len(report.alerts), lane=lane.name,
                incidents_opened=report.incidents_opened, sources=",".join(sources),
                batches=report.new_batches, seconds=round(seconds, 3),
            )

    def _ran_out(self, lane: Lane, cap: int) -> None:
        """A lookback scan ran out of memory: a smaller step, or else a higher limit."""
        if lane.max_events is not None and lane.max_events > MIN_LOOKBACK_EVENTS:
            lane.max_events = max(lane.max_events // 2, MIN_LOOKBACK_EVENTS)
            self.log.warning("detect.step_lowered", lane=lane.name, step=lane.max_events,
                             memory_mb=lane.memory_mb)
        elif lane.memory_mb is not None and lane.memory_mb < cap:
            lane.memory_mb = min(lane.memory_mb * 2, cap)
            self.log.warning("detect.memory_raised", lane=lane.name,
                             memory_mb=lane.memory_mb, cap_mb=cap)

    def _kept(
        self, lane: Lane, ws: Workspace, generation: int
    ) -> tuple[duckdb.DuckDBPyConnection, Playbooks]:
        """The lane's DuckDB and playbook cache, made again for a new config."""
        if lane.duck is None or lane.playbooks is None or lane.generation != generation:
            _release(lane)
            lane.duck = connect(ws, limits_of(ws, lane.lookback, lane.memory_mb))
            lane.playbooks = Playbooks(ws, strict=True)
            lane.generation = generation
            lane.opened += 1
        return lane.duck, lane.playbooks

    def _compiled(self, ws: Workspace) -> tuple[Pack, Pack]:
        """The pack split by lane, compiled again when a rule or filter file changes."""
        with self._compiling:
            return self._compile_if_changed(ws)

    def _compile_if_changed(self, ws: Workspace) -> tuple[Pack, Pack]:
        stamp = rules_stamp(ws)
        with self._lock:
            if self._packs is not None and stamp == self._stamp:
                return self._packs
        compiled, problems, taxonomy = compile_rules(ws, None)
        per_event = ([r for r in compiled if r.kind == "detection"], problems, taxonomy)
        lookback = ([r for r in compiled if r.kind != "detection"], problems, taxonomy)
        for problem in problems:
            self.log.warning("detect.rule_problem", problem=str(problem))
        self.log.info("detect.rules", rules=len(compiled), per_event=len(per_event[0]),
                      problems=len(problems))
        with self._lock:
            self._packs, self._stamp = (per_event, lookback), stamp
            self.lookback.next_due = 0.0  # new rules: a lookback scan first
        return per_event, lookback


def _release(lane: Lane) -> None:
    """Close a lane's DuckDB (made again at its next scan)."""
    duck, lane.duck, lane.playbooks = lane.duck, None, None
    if duck is not None:
        try:
            duck.close()
        except duckdb.Error:
            pass  # closing a broken connection: nothing more to free
