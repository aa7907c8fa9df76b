"""Reusable read buffers for ingest, owned by a Runtime (never by the process).

A fresh 64 MB buffer per read (`bytes` from `read()`, or any allocator that returns the
memory to the OS between batches) pays a page fault per 4 KB: ~30 ms of system time per
batch. So batch-sized reads go into buffers that are reused once nothing refers to them.

Invariant: a buffer is handed out only when its sole referent is its pool. A chunk's
Arrow column shares its buffer, and every view of it (memoryview, Arrow buffer, NumPy
array) holds a reference to the bytearray, so a buffer still in use is never reused.
Buffers are never zero-filled: `bytearray(n)` is calloc'ed (lazily zeroed pages), and a
reused one is overwritten by the read.

Pools live in a `BufferPools` that the Runtime owns and drops on close; a config reload
that changes the batch size leaves the old size's buffers to be freed, not kept forever.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict


class BufferPool:
    """Up to `limit` buffers of `size` bytes, each reused once nothing else holds it."""

    def __init__(self, size: int, limit: int = 4) -> None:
        self.size, self.limit = size, limit
        self.buffers: list[bytearray] = []
        self.lock = threading.Lock()

    def take(self) -> bytearray:
        with self.lock:  # two readers (threads) must never share a buffer
            for buffer in self.buffers:
                # References: the pool's list, `buffer` here and getrefcount's argument.
                if sys.getrefcount(buffer) <= 3:
                    return buffer
            buffer = bytearray(self.size)
            if len(self.buffers) < self.limit:
                self.buffers.append(buffer)
            return buffer

    def clear(self) -> None:
        with self.lock:
            self.buffers.clear()


class BufferPools:
    """One `BufferPool` per batch size, the most recent `sizes_kept` sizes only."""

    def __init__(self, sizes_kept: int = 2) -> None:
        self.sizes_kept = sizes_kept
        self._pools: OrderedDict[int, BufferPool] = OrderedDict()
        self._lock = threading.Lock()

    def pool(self, size: int) -> BufferPool:
        with self._lock:
            found = self._pools.get(size)
            if found is None:
                found = self._pools[size] = BufferPool(size)
            self._pools.move_to_end(size)
            while len(self._pools) > self.sizes_kept:
                self._pools.popitem(last=False)[1].clear()
            return found

    @property
    def held_bytes(self) -> int:
        """Bytes the pools hold (for health checks and soak tests)."""
        with self._lock:
            return sum(p.size * len(p.buffers) for p in self._pools.values())

    def clear(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.clear()
            self._pools.clear()
