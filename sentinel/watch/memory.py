"""A daemon runs for months: its memory is bounded, and freed memory goes back to the system.

Three allocators share the daemon's address space, and each keeps freed memory for reuse
unless told otherwise:

- **DuckDB** (ingest's session and each scan's connection): `memory_limit` and
  `threads` from `[daemon] duckdb_memory_mb` / `duckdb_threads` (`bound_duckdb`; the
  scan lanes pass theirs to `run_scan`), and its allocator flushes freed memory early;
- **glibc malloc** (Python objects, and Arrow's buffers once `tune_malloc` points
  Arrow's default pool at it instead of its bundled mimalloc): by default it
  creates up to eight arenas per core, one per busy thread, and each keeps what its
  thread freed; and after the first large buffer is freed it raises its mmap threshold,
  so the next batch-sized buffers (16 MiB) come from those arenas and stay there. Over
  minutes of 1-second batches on ~20 threads that retained memory, not live data, was
  a large part of the daemon's RSS (many 16–50 MB anonymous regions in its smaps).
  `tune_malloc` caps the arenas and pins the threshold, so a batch's buffers are
  mapped and unmapped whole; `trim` hands the arenas' free pages
  back (after a read pass and a scan). Measured with `bench/watch.py` (120 s at
  2,000 events/s and a 200,000-line burst): peak RSS 703/749 MB (steady/with the
  burst) before, 544/742 MB with glibc tuned, 532/532 MB with Arrow on it too;
- the tuning is process-wide and done once at start, before the worker threads exist;
  on a libc without `mallopt` (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import pyarrow as pa

from sentinel.config import DaemonConfig

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
"""`mallopt` parameters (glibc's malloc.h)."""

ARENAS = 2
MMAP_THRESHOLD = 1024 * 1024
"""Allocations from this size are mapped on their own and returned whole when freed."""
TRIM_THRESHOLD = 8 * 1024 * 1024


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def tune_malloc() -> bool:
    """Cap glibc's arenas and pin its mmap and trim thresholds; Arrow allocates through
    it (see the module)."""
    if _LIBC is None:
        return False
    pa.set_memory_pool(pa.system_memory_pool())
    ok = _LIBC.mallopt(M_ARENA_MAX, ARENAS) == 1
    ok = _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and ok
    return _LIBC.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok


def trim() -> None:
    """Return the free pages of every malloc arena to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def bound_duckdb(con: Any, daemon: DaemonConfig) -> None:
    """The daemon's ingest DuckDB: bounded, and quick to hand freed memory back.

    By default DuckDB's allocator keeps up to 128 MB of freed allocations per task for
    reuse, and the background threads that return idle pages to the system are off
    (they are process-wide once on, so the scan lanes' DuckDB benefits too)."""
    con.execute("SET memory_limit = ?", [f"{daemon.duckdb_memory_mb}MB"])
    if daemon.duckdb_threads:
        con.execute("SET threads = ?", [daemon.duckdb_threads])
    con.execute("SET allocator_flush_threshold = '16MB'")
    con.execute("SET allocator_background_threads = true")
