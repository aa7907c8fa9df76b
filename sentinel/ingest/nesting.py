"""Reject records nested too deeply for the Python side of sentinel to handle.

DuckDB parses JSON of any depth, but Python's `json` and every recursive walk over a
record (`store_text = "none"`, the TUI's record view) stop near 1,000 levels with a
RecursionError. A record nested deeper than `MAX_DEPTH` is therefore quarantined at
ingest, one record at a time; no real log comes near the limit.

The check must cost little on ordinary batches, and it must be sound (a record crafted
to dodge a heuristic would stop every later ingest): a record can only be that deep if
it holds at least `MAX_DEPTH` opening brackets, so the brackets of the whole batch are
found in one vectorised pass over the shared buffer and counted per record; only the
rare record with that many brackets is measured exactly (strings removed first, since
brackets inside strings do not nest).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

MAX_DEPTH = 128
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def deep_rows(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[int]:
    """Indexes of the records `data[starts[i]:ends[i]]` nested deeper than MAX_DEPTH."""
    if len(starts) == 0 or len(data) < MAX_DEPTH:
        return []
    opening = _openings(data)
    if len(opening) < MAX_DEPTH:
        return []
    counts = np.searchsorted(opening, ends) - np.searchsorted(opening, starts)
    suspects = np.flatnonzero(counts >= MAX_DEPTH)
    return [int(i) for i in suspects if depth(data[starts[i] : ends[i]].tobytes()) > MAX_DEPTH]


def _openings(data: np.ndarray) -> np.ndarray:
    """Positions of the `[` and `{` bytes, found a cache-sized window at a time.

    `[` is 0x5B and `{` is 0x7B: OR-ing 0x20 maps both, and nothing else, to 0x7B. Whole
    64 MB temporaries cost page faults that dwarf the comparison itself.
    """
    window = 256 * 1024
    scratch = np.empty(min(window, len(data)), dtype=np.uint8)
    found = np.empty(min(window, len(data)), dtype=bool)
    parts = []
    for start in range(0, len(data), window):
        piece = data[start : start + window]
        n = len(piece)
        np.bitwise_or(piece, 0x20, out=scratch[:n])
        np.equal(scratch[:n], 0x7B, out=found[:n])
        hits = np.flatnonzero(found[:n])
        if len(hits):
            parts.append(hits + start)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def deep_records(records: pa.Array | pa.ChunkedArray) -> list[int]:
    """`deep_rows` over a string column (any layout): indexes of too-deep records."""
    found: list[int] = []
    base = 0
    chunks = records.chunks if isinstance(records, pa.ChunkedArray) else [records]
    for chunk in chunks:
        chunk = chunk.cast(pa.large_string())
        offsets_buffer, data_buffer = chunk.buffers()[1], chunk.buffers()[2]
        if data_buffer is None or len(chunk) == 0:
            base += len(chunk)
            continue
        first = chunk.offset
        offsets = np.frombuffer(offsets_buffer, np.int64)[first : first + len(chunk) + 1]
        data = np.frombuffer(data_buffer, np.uint8)
        found.extend(base + i for i in deep_rows(data, offsets[:-1], offsets[1:]))
        base += len(chunk)
    return found


def depth(text: bytes) -> int:
    """The maximum nesting depth of JSON `text` (brackets inside strings ignored)."""
    bare = np.frombuffer(_STRING.sub(b'""', text), np.uint8)
    step = ((bare | 0x20) == 0x7B).astype(np.int32) - ((bare | 0x20) == 0x7D).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))
