"""Detection on arrival: the incremental scan, run beside ingest as batches commit.

The scan itself (rules since their watermark -> alerts -> incidents) is `sentinel scan`'s
(`sentinel.scan.runner.run_scan`); the daemon runs it in its own thread, so reading the
next batch never waits for a scan and a scan never waits for a long read:

- `poke()` (after every committed batch) wakes the thread; it also looks at `state.db`
  every `POLL_SECONDS`, so batches committed by a `sentinel ingest` beside the daemon
  are scanned too. Pokes that arrive during a scan coalesce into one more scan, which
  covers every batch committed meanwhile.
- Two cadences. Detection rules (one event at a time: a card, a key, a blocked model)
  run after every commit and read only the new batches: their incidents follow the
  line within seconds. Correlations look back over their own window (up to an hour of
  events), which costs far more than a second of new events, so they run at most every
  `CORRELATE_SECONDS`, and never more than `CORRELATE_SHARE` of the time (a full scan
  that took 20 s is next due 180 s after it ended): both go through the one scan lock,
  and the per-event scans wait while a full scan runs. Their watermarks simply stay
  behind meanwhile; the next full scan covers every batch since.
- The compiled rule pack is kept between scans and rebuilt only when a rule or filter
  file changes (name, size, mtime) or the config is reloaded (SIGHUP): compiling the
  pack (YAML, pySigma) costs more than scanning a second of events.
- The scan only reads the batches committed since each rule's watermark, i.e. only the
  sources that received events; the watermark and the alerts commit together, so a
  scan cut short by SIGKILL or a stop is simply taken up again by the next one, and an
  alert is never recorded twice (its id is derived from its content).
- A failing scan is logged and retried with a growing delay (up to `RETRY_MAX`);
  ingest goes on meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentinel.exceptions import SentinelError
from sentinel.scan.lakefiles import newest_seq
from sentinel.scan.runner import ScanReport, compile_rules, rule_paths, run_scan
from sentinel.store.db import open_db
from sentinel.watch.log import EventLog
from sentinel.workspace import Workspace

POLL_SECONDS = 1.0
CORRELATE_SECONDS = 30.0
"""At most this often (from the end of the last one) a full scan: correlations too."""
CORRELATE_SHARE = 0.1
"""… and at most this share of the time spent in full scans (they block the others)."""
RETRY_MAX = 30.0
STOP_GRACE_SECONDS = 3.0
"""How long a stop waits for a scan in progress before leaving it (it resumes from its
watermarks at the next start)."""

Stamp = tuple[tuple[str, int, int], ...]


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
    """How long after a full scan that took `seconds` the next one is due."""
    return max(CORRELATE_SECONDS, seconds * (1 - CORRELATE_SHARE) / CORRELATE_SHARE)


class Detector:
    """The daemon's scan thread (see the module docstring)."""

    def __init__(
        self, ws: Workspace, log: EventLog, scan: Callable[..., ScanReport] = run_scan
    ) -> None:
        self.ws, self.log, self._run_scan = ws, log, scan
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._pack: Any = None
        self._fast: Any = None
        """The pack's detection rules alone (the scan after every commit)."""
        self._next_full = 0.0
        self._stamp: Stamp | None = None
        self._thread: threading.Thread | None = None
        self.scanned = -1
        """The newest batch rowid the detection rules have covered."""
        self.scanned_full = -1
        """… and the correlations (every rule)."""
        self.scans = 0
        self.alerts = 0
        self.incidents_opened = 0
        self.last_scan_at: float | None = None
        self.busy = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sentinel-detect", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """New batches were committed: scan them soon."""
        self._wake.set()

    def reload(self, ws: Workspace) -> None:
        """A new config (SIGHUP): rules, filters and variables are compiled again."""
        with self._lock:
            self.ws, self._pack, self._stamp = ws, None, None
            self._next_full = 0.0
        self.poke()

    def stop(self) -> bool:
        """Stop after the scan in progress, waiting at most `STOP_GRACE_SECONDS`.

        Returns False when a scan was left running (it holds no batch; its rules that
        finished are committed, the others are scanned again at the next start)."""
        self._stopping = True
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(STOP_GRACE_SECONDS)
        return not self._thread.is_alive()

    # -- the thread -------------------------------------------------------------------
    def _loop(self) -> None:
        con = open_db(self.ws.state_db)
        delay = 0.0
        try:
            while not self._stopping:
                self._wake.wait(max(delay, POLL_SECONDS))
                self._wake.clear()
                if self._stopping:
                    break
                try:
                    newest = newest_seq(con)
                    full_due = time.monotonic() >= self._next_full
                    if newest <= self.scanned and not (full_due and newest > self.scanned_full):
                        continue
                    self._scan_once(full=full_due)
                    delay = 0.0
                except Exception as exc:  # noqa: BLE001 - retried from the watermarks
                    if self._stopping:
                        break  # interrupted by the stop: resumed at the next start
                    delay = min(max(delay * 2, 1.0), RETRY_MAX)
                    reason = exc.message if isinstance(exc, SentinelError) else repr(exc)
                    self.log.error("detect.failed", reason=reason, retry_in=delay,
                                   note="ingest goes on; the scan resumes at its watermarks")
        finally:
            con.close()

    def _scan_once(self, full: bool = True) -> None:
        with self._lock:
            ws = self.ws
        pack, fast = self._compiled(ws)
        self.busy = True
        started = time.monotonic()
        try:
            report = self._run_scan(ws, open_incidents=True, compiled_pack=pack if full else fast,
                                    baselines_too=full)
        finally:
            self.busy = False
        self.scanned = max(self.scanned, report.batch_seq)
        if full:
            self.scanned_full = report.batch_seq
            self._next_full = time.monotonic() + next_full_after(time.monotonic() - started)
        self.scans += 1
        self.alerts += len(report.alerts)
        self.incidents_opened += report.incidents_opened
        self.last_scan_at = time.time()
        if report.alerts:
            sources = sorted({e.source for a in report.alerts for e in a.events if e.source})
            self.log.info(
                "detect.alerts", alerts=len(report.alerts), full=full,
                incidents_opened=report.incidents_opened, sources=",".join(sources),
                batches=report.new_batches, seconds=round(time.monotonic() - started, 3),
            )

    def _compiled(self, ws: Workspace) -> tuple[Any, Any]:
        """The whole pack and its detection rules alone, compiled again on change."""
        stamp = rules_stamp(ws)
        with self._lock:
            if self._pack is not None and stamp == self._stamp:
                return self._pack, self._fast
        pack = compile_rules(ws, None)
        compiled, problems, taxonomy = pack
        fast = ([r for r in compiled if r.kind == "detection"], problems, taxonomy)
        for problem in problems:
            self.log.warning("detect.rule_problem", problem=str(problem))
        self.log.info("detect.rules", rules=len(compiled), per_event=len(fast[0]),
                      problems=len(problems))
        with self._lock:
            self._pack, self._fast, self._stamp = pack, fast, stamp
            self._next_full = 0.0  # new rules: a full scan first
        return pack, fast

