"""Opening a log file once, safely, and reading its content (plain or gzip).

Invariants:
- A path is opened once, without blocking (`O_NONBLOCK`: a FIFO named by mistake never
  hangs the run), and only a regular file is kept. Identity (`fstat`) and every read go
  through that one descriptor, so a file renamed, deleted or replaced after it was listed
  is read whole through the handle or reported, never confused with its successor.
- Content is what the log holds: a `.gz` file (recognised by its magic bytes) is read
  decompressed, and offsets count decompressed bytes.
- Decompression is bounded and never raises on damage. Past `max_ratio` times the
  compressed size (and a 64 MiB floor), or at a truncated or corrupt member, the stream
  simply ends and `damage` says why and where: every complete record before it loads,
  the caller quarantines the rest, and the other files of the run go on.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
GZIP_FLOOR_BYTES = 64 * 1024 * 1024
"""Decompressed bytes always allowed, whatever the ratio: small files compress well."""

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


class Unreadable(OSError):
    """A file that cannot be read as a log, with a one-line reason for the report."""


def special_kind(mode: int) -> str | None:
    """'a FIFO', 'a socket', … for anything that is not a regular file, else None."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def describe(exc: OSError) -> str:
    """A short reason for an OSError met while opening or reading a file."""
    if exc.errno == errno.ENOENT:
        return "vanished before it could be read"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return (exc.strerror or str(exc)).lower() if exc.strerror else str(exc)


@dataclass
class LogFile:
    """One open regular file: its descriptor, its `fstat` and whether it is gzip."""

    path: Path
    fd: int
    stat: os.stat_result
    gz: bool
    max_ratio: int = 200
    streams: list[IO[bytes]] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, max_ratio: int = 200) -> LogFile:
        """Open `path` for reading, or raise `Unreadable` with the reason."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise Unreadable(describe(exc)) from exc
        try:
            info = os.fstat(fd)
            kind = special_kind(info.st_mode)
            if kind is not None:
                raise Unreadable(f"not a regular file ({kind})")
            magic = os.pread(fd, 2, 0)
        except OSError as exc:
            os.close(fd)
            raise Unreadable(describe(exc)) from exc
        except Unreadable:
            os.close(fd)
            raise
        return cls(path, fd, info, magic == GZIP_MAGIC, max_ratio)

    @property
    def size(self) -> int:
        """Bytes on disk (compressed for gzip) when the file was opened."""
        return self.stat.st_size

    def current_size(self) -> int:
        """Bytes on disk now (the file may have grown or been truncated since opening)."""
        return os.fstat(self.fd).st_size

    def content(self, start: int = 0) -> IO[bytes]:
        """A new stream over the content (decompressed for gzip), positioned at `start`.

        Streams share the descriptor's file position: use one at a time.
        """
        raw = io.FileIO(os.dup(self.fd), "rb", closefd=True)
        raw.seek(0)
        stream: IO[bytes]
        if self.gz:
            limit = max(GZIP_FLOOR_BYTES, self.max_ratio * max(self.size, 1))
            stream = io.BufferedReader(GzipContent(raw, limit, self.max_ratio), 1024 * 1024)
            if start:
                _skip(stream, start)
        else:
            stream = raw
            stream.seek(start)
        self.streams.append(stream)
        return stream

    def head(self, length: int) -> bytes:
        """The first `length` bytes of the content (decompressed for gzip)."""
        if not self.gz:
            return os.pread(self.fd, length, 0)
        with self.content() as stream:
            return stream.read(length)

    def content_range(self, start: int, length: int) -> bytes:
        """`length` bytes of content at `start` (fewer when the content is shorter)."""
        if not self.gz:
            return os.pread(self.fd, length, start)
        with self.content(start) as stream:
            return stream.read(length)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.streams.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> LogFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def damage(stream: IO[bytes]) -> str | None:
    """Why a gzip content stream ended early (damage or the size limit), or None."""
    raw = getattr(stream, "raw", None)
    return raw.damage if isinstance(raw, GzipContent) else None


def disk_position(stream: IO[bytes]) -> int:
    """How far into the file on disk a content stream has read (compressed for gzip)."""
    raw = getattr(stream, "raw", stream)
    inner = raw.raw if isinstance(raw, GzipContent) else raw
    try:
        return int(inner.tell())
    except (OSError, ValueError):
        return 0


def _skip(stream: IO[bytes], count: int) -> None:
    while count > 0:
        data = stream.read(min(count, 8 * 1024 * 1024))
        if not data:
            return
        count -= len(data)


class GzipContent(io.RawIOBase):
    """The decompressed bytes of a gzip file, ending (not raising) at damage or the limit."""

    def __init__(self, raw: io.FileIO, limit: int, ratio: int) -> None:
        super().__init__()
        self.raw = raw
        self.inner = gzip.GzipFile(fileobj=raw, mode="rb")
        self.limit, self.ratio = limit, ratio
        self.position = 0
        self.damage: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.damage is not None:
            return 0
        view = memoryview(buffer).cast("B")
        room = self.limit - self.position
        if room <= 0:
            self.damage = (
                f"decompressed content exceeds {self.ratio}x the compressed size "
                f"({self.limit:,} bytes): read stopped (a gzip bomb?); raise "
                "[ingest] max_gzip_ratio if the file is genuine"
            )
            return 0
        try:
            # read1: one decompression step. `readinto` fills the whole buffer in several
            # steps and loses what the earlier ones produced when a later one fails.
            data = self.inner.read1(min(len(view), room))
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            self.damage = (
                f"damaged gzip after {self.position:,} decompressed bytes: "
                f"{str(exc) or type(exc).__name__}"
            )
            return 0
        count = len(data)
        view[:count] = data
        self.position += count
        return count

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.raw.close()
            super().close()
