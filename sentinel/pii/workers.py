"""Scanning on every core: worker processes that each take a part of a large column.

The scanner's later passes (which detectors, where, validated how) are Python and hold
the GIL, so threads cannot share them and one process tops out at about one core.
When the texts that passed the prefilter (which runs over threads) are large, they are
therefore cut into one part per core: the calling process scans the first part while
each worker scans one of the others.

A worker is a Python process running `serve`, started on first use and kept by its
`WorkerPool` (which a Runtime owns, and closes on exit); it talks over its stdin and
stdout only. The text goes
down the pipe as the part's raw Arrow buffers, so nothing is written to disk or shared
memory, and the findings come back pickled. A worker that dies, or fails on a part, is
replaced and that part is scanned in the calling process, so a worker can make a scan
slower but never change its result. After several failures in a row the pool pauses
(scans run in the calling process) and tries again after a cool-down that grows with
each new failure, so a broken setup costs one fallback per pause, and a passing fault
(a full process table, an upgrade mid-run) does not switch the workers off for the
life of a long-running daemon.

This module knows nothing of what a worker computes: the caller names the function
the worker process runs (`WorkerPool(entry=...)`), so the scanner imports this module
and never the other way round.

Nothing here runs a worker for less text than `PARALLEL_BYTES`: starting one costs
about half a second once, and a small part takes less than that to scan.
"""

from __future__ import annotations

import itertools
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

import numpy as np
import pyarrow as pa

PARALLEL_BYTES = 8 * 1024 * 1024
"""Candidate texts holding less than this are scanned in the calling process only."""

_HEADER = struct.Struct("<Q")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


LOCAL_SHARE = 1.15
"""How much more text the calling process takes than each worker: a worker also reads
its part from the pipe and pickles its findings back."""


def split(
    column: pa.ChunkedArray, count: int, first_share: float = LOCAL_SHARE
) -> list[tuple[int, pa.ChunkedArray]]:
    """`column` as up to `count` runs of rows, the first `first_share` times the others.

    Each run is a zero-copy slice of the column, with the row it starts at.
    """
    sizes = np.concatenate([_row_bytes(chunk) for chunk in column.chunks])
    cumulative = np.cumsum(sizes)
    shares = np.cumsum([first_share] + [1.0] * (count - 1))[:-1] / (first_share + count - 1)
    cuts = np.searchsorted(cumulative, cumulative[-1] * shares)
    bounds = [0, *sorted(set(cuts.tolist()) - {0, len(column)}), len(column)]
    return [
        (start, column.slice(start, stop - start)) for start, stop in itertools.pairwise(bounds)
    ]


def _row_bytes(chunk: pa.Array) -> np.ndarray:
    return np.diff(_offsets(chunk))


def _offsets(chunk: pa.Array) -> np.ndarray:
    """The offsets of a large_string array's rows in its data buffer (one more than rows)."""
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
    return offsets[chunk.offset : chunk.offset + len(chunk) + 1]


class Worker:
    """One worker process and its pipes; requests are answered in order.

    `entry` is `module:function`, the worker's main (it calls `serve`).
    """

    def __init__(self, entry: str) -> None:
        module, function = entry.split(":")
        code = _WORKER_MAIN.format(root=repr(_package_root()), module=module, function=function)
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C is the caller's to handle; EOF stops a worker
        )
        for pipe in (self.process.stdin, self.process.stdout):
            _widen(pipe)
        self._sender: threading.Thread | None = None

    def send(self, request: Any, part: pa.ChunkedArray) -> None:
        """Start sending `part` (with `request`); returns before the pipe has taken it all."""
        stdin = self.process.stdin
        assert stdin is not None
        offsets, data = _buffers(part)
        size = sum(piece.nbytes for piece in data)
        header = pickle.dumps((request, len(part), offsets.size, size))
        pieces: list[bytes | memoryview] = [_HEADER.pack(len(header)), header, offsets.data]
        pieces += data

        def write() -> None:
            try:
                for piece in pieces:
                    stdin.write(piece)
                stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # the worker is gone: `receive` says so

        # The pipe takes the part while this thread scans its own: writing releases the GIL.
        self._sender = threading.Thread(target=write, name="pii-worker-send", daemon=True)
        self._sender.start()

    def receive(self) -> Any:
        """The worker's answer to the last `send`; raises `WorkerError` when there is none."""
        if self._sender is not None:
            self._sender.join()
            self._sender = None
        stdout = self.process.stdout
        assert stdout is not None
        size = _read_exact(stdout, _HEADER.size)
        if size is None:
            raise WorkerError("the worker process exited")
        body = _read_exact(stdout, _HEADER.unpack(size)[0])
        if body is None:
            raise WorkerError("the worker process exited")
        ok, answer = pickle.loads(body)
        if not ok:
            raise WorkerError(answer)
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


_PIPE_BYTES = 1024 * 1024


def _widen(pipe: IO[bytes] | None) -> None:
    """Give a pipe a 1 MiB buffer where the OS allows (Linux): fewer wake-ups per part."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if pipe is None or setsize is None:
        return
    try:
        fcntl.fcntl(pipe.fileno(), setsize, _PIPE_BYTES)
    except OSError:
        pass  # above the system's limit (/proc/sys/fs/pipe-max-size): keep the default


class WorkerError(Exception):
    """A worker could not answer: it exited or failed on its part."""


@dataclass(frozen=True)
class WorkerHealth:
    """What a `WorkerPool` is doing, for health checks and soak tests."""

    running: int
    failures: int
    """Failures in a row (reset by an answer)."""
    paused_for: float
    """Seconds until workers are tried again (0: not paused)."""


class WorkerPool:
    """Worker processes started on demand and reused, with a growing pause after failures.

    Thread-safe. `close()` stops every worker; the pool can be used again afterwards.
    """

    def __init__(
        self,
        entry: str,
        *,
        give_up_after: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 600.0,
    ) -> None:
        self.entry = entry
        self.give_up_after = give_up_after
        self.cooldown, self.max_cooldown = cooldown, max_cooldown
        self._workers: list[Worker] = []
        self._lock = threading.Lock()
        self._failures = 0
        self._pauses = 0
        self._paused_until = 0.0

    def get(self, count: int) -> list[Worker]:
        """`count` running workers, started as needed; none while paused after failures.

        An empty list means: scan in this process. That is the answer when a worker
        cannot be started (no usable interpreter, no processes left) or workers failed
        `give_up_after` times in a row, until the cool-down has passed.
        """
        with self._lock:
            if time.monotonic() < self._paused_until:
                return []
            for gone in [w for w in self._workers if w.process.poll() is not None]:
                self._workers.remove(gone)
                gone.close()  # its pipes
            try:
                while len(self._workers) < count:
                    self._workers.append(Worker(self.entry))
            except OSError:
                self._failed()
                return []
            return self._workers[:count]

    def answered(self) -> None:
        """A worker answered: failures are counted from zero again."""
        with self._lock:
            self._failures = 0
            self._pauses = 0

    def discard(self, worker: Worker) -> None:
        """Stop `worker` (after it failed); the next `get` starts a new one."""
        with self._lock:
            self._failed()
            if worker in self._workers:
                self._workers.remove(worker)
        worker.process.kill()
        worker.close()

    def health(self) -> WorkerHealth:
        with self._lock:
            running = sum(1 for w in self._workers if w.process.poll() is None)
            paused = max(0.0, self._paused_until - time.monotonic())
            return WorkerHealth(running, self._failures, paused)

    def restart(self) -> None:
        """Stop every worker and forget past failures: the next `get` starts afresh."""
        self.close()
        with self._lock:
            self._failures = self._pauses = 0
            self._paused_until = 0.0

    def close(self) -> None:
        with self._lock:
            stopping, self._workers = self._workers, []
        for worker in stopping:
            worker.close()

    def _failed(self) -> None:
        # Called with the lock held.
        self._failures += 1
        if self._failures >= self.give_up_after:
            pause = min(self.cooldown * 2**self._pauses, self.max_cooldown)
            self._paused_until = time.monotonic() + pause
            self._pauses += 1
            self._failures = 0


def _buffers(part: pa.ChunkedArray) -> tuple[np.ndarray, list[memoryview]]:
    """The offsets (from 0) of a large_string column's rows, and its bytes chunk by chunk.

    What the worker rebuilds as one array; the bytes are views, not copies.
    """
    offsets, data, base = [np.zeros(1, dtype=np.int64)], [], 0
    for chunk in part.chunks:
        if len(chunk) == 0:
            continue
        bounds = _offsets(chunk)
        offsets.append(bounds[1:] - bounds[0] + base)
        data.append(np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[bounds[0] : bounds[-1]].data)
        base += int(bounds[-1] - bounds[0])
    return np.concatenate(offsets), data


def _read_exact(stream: IO[bytes], size: int) -> bytearray | None:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            return None
        got += n
    return buffer


def _package_root() -> str:
    """The directory holding the `sentinel` package (a source checkout needs it on the path)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Appended, not prepended: an installed sentinel (the same code) is found first, and no
# directory of it can shadow the standard library.
_WORKER_MAIN = "import sys; sys.path.append({root}); from {module} import {function}; {function}()"


def serve(handle: Callable[[Any, pa.Array], Any]) -> None:
    """The worker's loop: read a request and its part, answer `handle(request, part)`."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        size = _read_exact(stdin, _HEADER.size)
        if size is None:
            return  # the caller closed the pipe: its process is done
        header = _read_exact(stdin, _HEADER.unpack(size)[0])
        if header is None:
            return
        request, rows, offsets_size, data_size = pickle.loads(header)
        offsets = _read_exact(stdin, offsets_size * 8)
        data = _read_exact(stdin, data_size)
        if offsets is None or data is None:
            return
        part = pa.Array.from_buffers(
            pa.large_string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        try:
            answer: tuple[bool, Any] = (True, handle(request, part))
        except Exception as exc:  # reported to the caller, which scans the part itself
            answer = (False, f"{type(exc).__name__}: {exc}")
        body = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(_HEADER.pack(len(body)))
        stdout.write(body)
        stdout.flush()


def run(handle: Callable[[Any, pa.Array], Any]) -> None:
    """A worker process's main: `serve(handle)` until the caller closes the pipe."""
    try:
        serve(handle)
    except BrokenPipeError:  # the caller went away mid-part: leave without a word
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
