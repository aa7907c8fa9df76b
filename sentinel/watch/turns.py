"""One heavy phase at a time: ingest's read pass and the per-event scan take turns.

Each of them briefly holds a batch's worth of buffers: a read pass frames, normalises,
PII-scans and writes 16 MiB batches (~100 MB of Arrow and DuckDB memory for one batch of
the bench's 4.5 KB lines), and a per-event scan reads the new batches' columns in its
DuckDB (~50 MB). Run side by side, as they were, the daemon's peak was their sum on top
of the lookback scan. They gain little from overlapping: the scan reads what the pass
committed, and the next pass only reads what arrived meanwhile. So they take turns:

- `Turns.turn()` is a FIFO ticket lock: a thread that releases the turn and asks again
  at once (the read loop) queues behind a scan that was already waiting, so neither side
  starves the other;
- a read pass is bounded in time (`daemon.READ_PASS_SECONDS`) and a per-event scan covers
  only the new batches, so the wait for a turn is short; the lookback lane does *not*
  take turns (its scans last tens of seconds; its memory is bounded by its own
  `memory_limit` and step, `detection`), nor do `sentinel ingest` or `sentinel scan`
  processes beside the daemon;
- `holder` names the phase in progress (tests, and the `watch.turns` log).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Turns:
    """A fair (first come, first served) lock for the daemon's heavy phases."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0
        self.holder: str | None = None
        """The phase holding the turn (None: nobody)."""
        self.taken = 0
        """How many turns were taken (tests: that a phase took one)."""

    @contextmanager
    def turn(self, who: str) -> Iterator[None]:
        with self._cond:
            ticket = self._next
            self._next += 1
            while self._serving != ticket:
                self._cond.wait()
            self.holder = who
            self.taken += 1
        try:
            yield
        finally:
            with self._cond:
                self.holder = None
                self._serving += 1
                self._cond.notify_all()
