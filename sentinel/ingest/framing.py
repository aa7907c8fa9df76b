"""Framing: from the bytes of a log file to one row per JSON record.

Two framings exist. *Lines*: one JSON value per line (JSON lines, CloudTrail exports,
Bedrock logs); progress is a byte offset, so appended lines are read incrementally.
*Document*: the whole file is one JSON value (a pretty-printed LiteLLM payload, a JSON
array export, a CloudTrail `{"Records": [...]}` object); progress is the number of
records taken. Either may be gzip-compressed; offsets then count decompressed bytes.

Line splitting is vectorised with NumPy and the record column is built zero-copy over
the read buffer; only lines already known to be bad (oversize, invalid UTF-8) are looked
at one by one. Envelopes are unwrapped in DuckDB.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import pyarrow as pa

from sentinel.buffers import BufferPool, BufferPools
from sentinel.ingest.nesting import MAX_DEPTH, deep_rows

QUARANTINE_SAMPLE_BYTES = 64 * 1024
TAIL_BYTES = 4096
"""A chunk remembers the content just before its end, so a file's identity can be checked
at its checkpoint (see `files.identify`)."""
MAX_LINES_PER_CHUNK = 1 << 20
"""Lines framed at once: bounds the index arrays when lines are tiny (a flood of short
lines costs ~40 bytes of index per line)."""
_FILLER = b"\x00 \t\r\n"
RECORDS_TYPE = pa.schema([("source_offset", pa.int64()), ("record", pa.large_string())])
_ENVELOPE_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$")


@dataclass
class Rejected:
    offset: int
    reason: str
    raw: str
    truncated: bool = False
    length: int | None = None
    """Bytes the record took in the file (without its newline), when known."""


@dataclass
class Chunk:
    """One batch worth of records read from a file."""

    records: pa.Table
    start: int
    end: int
    rejected: list[Rejected] = field(default_factory=list)
    bytes_read: int = 0
    tail: bytes = b""
    """The last TAIL_BYTES of content before `end` (identity check at the checkpoint)."""
    held: int = 0
    """Bytes of an incomplete last line left after `end` for the next read."""
    held_head: bytes = b""
    """The first bytes of that line (quarantined if it turns out it never completes)."""


def read_lines(
    stream: IO[bytes],
    start: int,
    batch_bytes: int,
    max_line_bytes: int,
    hold_partial: bool = True,
    before: bytes = b"",
    strict: bool = False,
    buffers: BufferPools | None = None,
) -> Iterator[Chunk]:
    """Yield chunks of complete lines from `stream`, positioned at byte `start`.

    A last line without a newline is taken when it is a whole JSON value (a finished file
    whose writer left out the final newline); otherwise, with `hold_partial`, it is left
    for the next read (its writer may be mid-line): the last chunk ends before it and
    says how many bytes it `held`. Runs of NUL bytes and blank lines at the start of a
    read (a copytruncate hole, a flood of newlines) are skipped without being framed.
    Lines over `max_line_bytes` are rejected with their length and skipped without being
    held in memory whole. `before` is the content just before `start`: each chunk's
    `tail` (its last `TAIL_BYTES`, for file identity) may reach back into it. Batch-sized
    reads reuse `buffers` (the Runtime's) when given. With
    `strict`, a last line without a newline is held even when it is whole JSON (a
    watcher reading a live file takes complete lines only until the file is idle).
    """
    position = start
    pending = b""
    recent = before[-TAIL_BYTES:]
    rewind = not isinstance(stream, gzip.GzipFile) and stream.seekable()
    pool = buffers.pool(batch_bytes) if buffers is not None else None
    while True:
        # A file smaller than a batch is read into a buffer of its own size: a 64 MB
        # pooled buffer per small file costs page faults that dwarf the file itself.
        remaining = _remaining(stream) if rewind else None
        size = batch_bytes if remaining is None else max(1, min(batch_bytes, remaining + 1))
        at_line_start = not pending
        buf, got = _read_after(stream, pending, size, pool)
        pending = b""
        if not buf:
            return
        skip = _filler_run(buf) if at_line_start else 0
        if skip:
            recent = _roll(recent, buf[:skip])
            position += skip
            if skip == len(buf):
                if not got:
                    return
                continue
            if rewind:
                stream.seek(skip - len(buf), io.SEEK_CUR)
            else:
                pending = bytes(buf[skip:])
            continue
        data = np.frombuffer(buf, dtype=np.uint8)
        newline_at = _newlines(buf, data, MAX_LINES_PER_CHUNK)
        held, held_head = 0, b""
        if len(newline_at) >= MAX_LINES_PER_CHUNK and newline_at[-1] + 1 < len(buf):
            cut = int(newline_at[-1]) + 1  # a flood of short lines: frame them in parts
        elif not got:  # end of stream: everything left is the last line(s)
            cut = len(buf)
            if buf[-1] != 10:
                last = int(newline_at[-1]) + 1 if len(newline_at) else 0
                if hold_partial and (strict or not whole_json(bytes(buf[last:]))):
                    cut, held = last, len(buf) - last
                    held_head = bytes(buf[last : last + QUARANTINE_SAMPLE_BYTES])
        elif not len(newline_at):
            if len(buf) <= max_line_bytes:
                pending = bytes(buf)  # an incomplete line: read on
                continue
            length, pending, ended, last_bytes = _skip_to_newline(stream, buf, batch_bytes)
            if not ended and hold_partial:
                # An oversize last line still being written: rejected once it is complete.
                yield Chunk(RECORDS_TYPE.empty_table(), position, position, held=length,
                            tail=recent, held_head=bytes(buf[:QUARANTINE_SAMPLE_BYTES]))
                return
            recent = _roll(recent, last_bytes)
            yield Chunk(
                records=RECORDS_TYPE.empty_table(),
                start=position,
                end=position + length,
                rejected=[_oversize(position, length, bytes(buf[:QUARANTINE_SAMPLE_BYTES]),
                                    max_line_bytes)],
                bytes_read=length,
                tail=recent,
            )
            position += length
            continue
        else:
            cut = int(newline_at[-1]) + 1
        if cut < len(buf) and not held:
            if rewind:
                # Read the partial last line again next time rather than join it to the
                # next 64 MB read (a copy of the whole batch). Not for gzip: it seeks by
                # rereading.
                stream.seek(cut - len(buf), io.SEEK_CUR)
            else:
                pending = bytes(buf[cut:])
        if cut == 0:
            yield Chunk(RECORDS_TYPE.empty_table(), position, position, held=held, tail=recent,
                        held_head=held_head)
            return
        final = not got and not held and cut == len(buf)
        recent = _roll(recent, buf[max(0, cut - TAIL_BYTES) : cut])
        chunk = _chunk_from_buffer(buf[:cut], newline_at, position, max_line_bytes, final=final)
        chunk.tail, chunk.held, chunk.held_head = recent, held, held_head
        yield chunk
        position = chunk.end
        if not got and (held or cut == len(buf)):
            return


def whole_json(line: bytes) -> bool:
    """True when `line` is a whole JSON value (so not a line cut short by its writer).

    A value nested too deeply for Python counts as whole: it is rejected as such.
    """
    try:
        json.loads(line)
    except RecursionError:
        return True
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _filler_run(buf: memoryview) -> int:
    """Length of the run of NUL bytes and whitespace at the start of `buf`."""
    first = buf[0]
    if first not in _FILLER:
        return 0
    # Looked at a piece at a time: a run is usually short, a hole can be gigabytes.
    length, step = 0, 4096
    while length < len(buf):
        piece = bytes(buf[length : length + step])
        rest = len(piece) - len(piece.lstrip(_FILLER))
        length += rest
        if rest < len(piece):
            return length
        step = min(step * 4, 16 * 1024 * 1024)
    return length


def _roll(recent: bytes, data: bytes | memoryview) -> bytes:
    """The last TAIL_BYTES of `recent` followed by `data`."""
    if len(data) >= TAIL_BYTES:
        return bytes(data[-TAIL_BYTES:])
    return (recent + bytes(data))[-TAIL_BYTES:]


def _remaining(stream: IO[bytes]) -> int | None:
    """Bytes left in a regular file, or None when the stream cannot tell."""
    try:
        return os.fstat(stream.fileno()).st_size - stream.tell()
    except (OSError, AttributeError, io.UnsupportedOperation):
        return None


def _read_after(
    stream: IO[bytes], pending: bytes, size: int, pool: BufferPool | None = None
) -> tuple[memoryview, int]:
    """`pending` followed by up to `size` bytes read from `stream`, and how many were read.

    Read into a pooled buffer (see `BufferPool`); the chunk's Arrow column shares it.
    `pending` (a line spanning batches, unseekable streams) is the only copy.
    """
    if pool is not None and not pending and size == pool.size:
        buffer = memoryview(pool.take())
    else:
        buffer = memoryview(bytearray(len(pending) + size))
    buffer[: len(pending)] = pending
    filled = len(pending)
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:])  # type: ignore[attr-defined]
        if not count:
            break
        filled += count
    return buffer[:filled], filled - len(pending)


def _last_newline(buf: memoryview) -> int:
    """Index of the last `\n` in `buf`, or -1 (searched from the end, a piece at a time)."""
    end, step = len(buf), 64 * 1024
    while end > 0:
        start = max(0, end - step)
        index = bytes(buf[start:end]).rfind(b"\n")
        if index >= 0:
            return start + index
        end, step = start, min(step * 2, 8 * 1024 * 1024)
    return -1


def _skip_to_newline(
    stream: IO[bytes], seen: memoryview, batch_bytes: int
) -> tuple[int, bytes, bool, bytes]:
    """Consume the rest of an oversize line whose first bytes are `seen`.

    Returns its total length (with the newline), the bytes read after it, whether a
    newline was found at all, and the line's last TAIL_BYTES.
    """
    length, last = len(seen), bytes(seen[-TAIL_BYTES:])
    while True:
        data = stream.read(batch_bytes)
        if not data:
            return length, b"", False, last
        index = data.find(b"\n")
        if index >= 0:
            last = _roll(last, data[: index + 1])
            return length + index + 1, data[index + 1 :], True, last
        length += len(data)
        last = _roll(last, data)


def _oversize(offset: int, length: int, head: bytes, max_line_bytes: int) -> Rejected:
    return Rejected(
        offset=offset,
        reason=f"line of {length} bytes exceeds max_line_bytes ({max_line_bytes})",
        raw=head[:QUARANTINE_SAMPLE_BYTES].decode("utf-8", "backslashreplace"),
        truncated=True,
        length=length,
    )


def _chunk_from_buffer(
    buf: bytes | memoryview, newline_at: np.ndarray, position: int, max_line_bytes: int,
    final: bool,
) -> Chunk:
    """Split `buf` (complete lines; the last may lack a newline if `final`) into records.

    `newline_at` holds the positions of the newlines of `buf`.
    """
    data = np.frombuffer(buf, dtype=np.uint8)
    ends = newline_at if not (final and len(buf) and data[-1] != 10) else np.append(
        newline_at, len(buf)
    )
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    filler = np.zeros(len(starts), dtype=bool)
    if _find(buf, 0) >= 0:
        starts, ends, filler = _split_nul_runs(buf, data, starts, ends)
    offsets = np.append(starts, len(buf)).astype(np.int64)  # each string keeps its "\n"
    count = len(starts)
    lines = pa.LargeStringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(buf)
    )
    lengths = ends - starts
    keep = (lengths <= max_line_bytes) & ~filler
    rejected = [
        _oversize(position + int(starts[i]), int(lengths[i]),
                  bytes(buf[starts[i] : min(ends[i], starts[i] + QUARANTINE_SAMPLE_BYTES)]),
                  max_line_bytes)
        for i in np.flatnonzero((lengths > max_line_bytes) & ~filler)
    ]
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        keep, bad_utf8 = _utf8_mask(buf, starts, ends, keep)
        rejected.extend(
            Rejected(position + int(starts[i]), "invalid UTF-8",
                     bytes(buf[starts[i] : ends[i]][:QUARANTINE_SAMPLE_BYTES]).decode(
                         "utf-8", "backslashreplace"),
                     truncated=int(ends[i] - starts[i]) > QUARANTINE_SAMPLE_BYTES,
                     length=int(ends[i] - starts[i]))
            for i in bad_utf8
        )
    for i in deep_rows(data, starts, ends):
        if keep[i]:
            keep[i] = False
            rejected.append(too_deep(position + int(starts[i]), bytes(buf[starts[i] : ends[i]])))

    table = pa.table(
        {"source_offset": pa.array(starts + position, pa.int64()), "record": lines},
        schema=RECORDS_TYPE,
    )
    if not keep.all():
        table = table.filter(pa.array(keep))
    return Chunk(records=table, start=position, end=position + len(buf), rejected=rejected,
                 bytes_read=len(buf))


def too_deep(offset: int, raw: bytes) -> Rejected:
    return Rejected(
        offset, f"record nested deeper than {MAX_DEPTH} levels",
        raw[:QUARANTINE_SAMPLE_BYTES].decode("utf-8", "backslashreplace"),
        truncated=len(raw) > QUARANTINE_SAMPLE_BYTES, length=len(raw),
    )


def _find(buf: bytes | memoryview, byte: int) -> int:
    """`buf.find(byte)` without copying a memoryview (memchr over its bytearray)."""
    haystack = buf.obj if isinstance(buf, memoryview) else buf
    if isinstance(haystack, bytes | bytearray) and (
        haystack is buf or (isinstance(buf, memoryview) and buf.c_contiguous
                            and np.frombuffer(haystack, np.uint8).ctypes.data
                            == np.frombuffer(buf, np.uint8).ctypes.data)
    ):
        return haystack.find(byte, 0, len(buf))
    return bytes(buf).find(byte)


def _split_nul_runs(
    buf: bytes | memoryview, data: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines that start with NUL bytes (a copytruncate hole) split into the NUL run,
    marked as filler, and the record after it. Slow path: only for a chunk with a NUL."""
    new_starts, new_ends, filler = [], [], []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if start < end and data[start] == 0:
            run = end - start - len(bytes(buf[start:end]).lstrip(b"\x00"))
            if run < end - start:
                new_starts += [start, start + run]
                new_ends += [start + run, end]
                filler += [True, False]
                continue
            new_starts.append(start)
            new_ends.append(end)
            filler.append(True)
            continue
        new_starts.append(start)
        new_ends.append(end)
        filler.append(False)
    return (np.array(new_starts, np.int64), np.array(new_ends, np.int64),
            np.array(filler, bool))


def _newlines(buf: bytes | memoryview, data: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the first `limit` `\n` bytes in `buf` (`data`: the same bytes).

    Records of a few KB are found with `bytearray.find` (memchr: a 64 MB batch in ~5 ms,
    where `flatnonzero(data == 10)` took ~18 ms and a 64 MB temporary). Once lines turn
    out to be short (under 1 KB on average), the rest is searched vectorised, a window
    at a time so that a flood of tiny lines stops at `limit`.
    """
    haystack = buf.obj if isinstance(buf, memoryview) else buf
    if not isinstance(haystack, bytes | bytearray) or (
        haystack is not buf and np.frombuffer(haystack, np.uint8).ctypes.data != data.ctypes.data
    ):
        return _vectorised(data, 0, [], limit)
    end, found = len(data), list[int]()
    index = haystack.find(10, 0, end)
    while index >= 0 and len(found) < limit:
        found.append(index)
        if len(found) % 4096 == 0 and index < len(found) * 1024:
            return _vectorised(data, index + 1, found, limit)
        index = haystack.find(10, index + 1, end)
    return np.array(found, dtype=np.int64)


def _vectorised(data: np.ndarray, start: int, found: list[int], limit: int) -> np.ndarray:
    parts = [np.array(found, dtype=np.int64)]
    total, window = len(found), 8 * 1024 * 1024
    while start < len(data) and total < limit:
        part = np.flatnonzero(data[start : start + window] == 10) + start
        parts.append(part[: limit - total])
        total += len(parts[-1])
        start += window
    return np.concatenate(parts)


def _utf8_mask(
    buf: bytes | memoryview, starts: np.ndarray, ends: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, list[int]]:
    """Slow path, only for a chunk that failed validation: find the bad lines."""
    keep = keep.copy()
    bad = []
    for i in np.flatnonzero(keep):
        try:
            bytes(buf[starts[i] : ends[i]]).decode("utf-8")
        except UnicodeDecodeError:
            keep[i] = False
            bad.append(int(i))
    return keep, bad
