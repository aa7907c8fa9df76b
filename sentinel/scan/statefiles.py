"""Owner-only scan state written atomically: baseline models and correlation state.

Both live outside the lake under `state/` and hold event data (principals, the matched
events' lake provenance), so every file is created 0600, and a file appears whole or not
at all: it is written under a hidden temporary name, fsync'ed, then renamed over the old
one. A crash leaves the previous file in place, and a reader that finds a damaged file
(`readable` is False) rebuilds the state from the lake instead of trusting it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet(path: Path, table: pa.Table) -> None:
    """`table` as the Parquet file `path` (zstd), atomically and owner-only."""
    with _atomic(path, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")


def write_text(path: Path, text: str) -> None:
    """`text` as the file `path`, atomically and owner-only (manifests)."""
    with _atomic(path, "w") as handle:
        handle.write(text)


def readable(path: Path) -> bool:
    """Whether `path` is a Parquet file whose footer can be read."""
    try:
        pq.read_metadata(path)
    except (OSError, ValueError, pa.ArrowException):
        return False
    return True


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator[IO[Any]]:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
