"""What the PII scan runs on: a thread pool and worker processes, owned by one object.

The prefilter slices a column over threads (Arrow releases the GIL) and a large column
is cut into parts for worker processes (`sentinel.pii.workers`). Both are started on
first use, never at import, and belong to a `ScanPool` that its owner closes: the
Runtime for the CLI, the daemon and the TUI, or a `with ScanPool() as pool:` block.
Code that scans without a pool (masking a short string, a test) gets the same findings
on the calling thread, with no process started.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from sentinel.pii.workers import WorkerHealth, WorkerPool

WORKER_ENTRY = "sentinel.pii.engine:worker_main"
"""The function a worker process runs (it scans parts of columns)."""


def default_threads() -> int:
    return max(2, os.cpu_count() or 2)


@dataclass(frozen=True)
class ScanHealth:
    threads_started: bool
    workers: WorkerHealth


class ScanPool:
    """A lazily started thread pool and worker processes for the PII scan."""

    def __init__(self, threads: int | None = None, *, worker_entry: str = WORKER_ENTRY) -> None:
        self.threads = threads or default_threads()
        self.workers = WorkerPool(worker_entry)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.threads, thread_name_prefix="pii"
                )
            return self._executor

    def health(self) -> ScanHealth:
        return ScanHealth(self._executor is not None, self.workers.health())

    def restart(self) -> None:
        """Stop the workers and forget their failures (the threads are kept)."""
        self.workers.restart()

    def close(self) -> None:
        """Stop the threads and the worker processes; the pool may be used again after."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self.workers.close()

    def __enter__(self) -> ScanPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
