"""Which lake files a scan reads: the files of new batches, or a lookback by date partition.

A rule's watermark is a `batches.rowid`: the rule has run over every batch up to it. The
batches after it are read from `state.db` (never by listing the lake), so a scan with
nothing new opens no Parquet file, and a small increment opens only its own files.

A batch is visible once `pending` is clear (its files renamed into the lake). The range a
scan takes stops before the first pending batch, so a batch still being published is
never skipped: the next scan starts there. (SQLite gives a new row the largest rowid + 1;
retention must therefore never delete the newest batch row, or its rowid is reused.)

Correlations and baselines look back over their own window: `lookback_files` lists the
`source=S/date=D/` directories of the dates in range, and the query adds a `ts` filter
that DuckDB pushes down to the row-group statistics.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from sentinel.workspace import Workspace


@dataclass
class BatchRange:
    """Committed, published batches with `after < rowid <= upto`, by source."""

    after: int
    upto: int
    files: dict[str, list[str]] = field(default_factory=dict)
    """Source name -> absolute Parquet paths."""
    batches: int = 0

    @property
    def empty(self) -> bool:
        return not any(self.files.values())


def newest_seq(con: sqlite3.Connection) -> int:
    """The rowid a scan may advance to: the last batch before the first pending one."""
    pending = con.execute("SELECT min(rowid) FROM batches WHERE pending = 1").fetchone()[0]
    if pending is not None:
        return int(pending) - 1
    newest = con.execute("SELECT max(rowid) FROM batches").fetchone()[0]
    return int(newest or 0)


def seq_within(con: sqlite3.Connection, after: int, upto: int, events: int) -> int:
    """The newest batch in `(after, upto]` whose batches from `after` on hold at most
    `events` events (at least the first one): how far a scan that reads at most that
    many may advance."""
    row = con.execute(
        "SELECT max(rowid) FROM (SELECT rowid, sum(events) OVER (ORDER BY rowid) AS n "
        "FROM batches WHERE rowid > ? AND rowid <= ?) WHERE n <= ?",
        (after, upto, events),
    ).fetchone()
    if row[0] is not None:
        return int(row[0])
    first = con.execute(
        "SELECT min(rowid) FROM batches WHERE rowid > ? AND rowid <= ?", (after, upto)
    ).fetchone()[0]
    return upto if first is None else int(first)


def batch_range(ws: Workspace, con: sqlite3.Connection, after: int, upto: int) -> BatchRange:
    """The lake files of the batches in `(after, upto]`, grouped by source partition."""
    result = BatchRange(after, upto)
    files: dict[str, list[str]] = defaultdict(list)
    rows = con.execute(
        "SELECT outputs FROM batches WHERE rowid > ? AND rowid <= ? AND pending = 0 "
        "ORDER BY rowid",
        (after, upto),
    )
    lake = ws.lake_dir
    for (outputs,) in rows:
        result.batches += 1
        for _staging, final in json.loads(outputs):
            path = ws.root / final
            source = source_of(path, lake)
            if source is not None and path.is_file():
                files[source].append(str(path))
    result.files = dict(files)
    return result


def source_of(path: Path, lake: Path) -> str | None:
    """The `source=` partition of a lake Parquet file, or None for anything else."""
    if path.suffix != ".parquet":
        return None
    try:
        parts = PurePosixPath(path.relative_to(lake)).parts
    except ValueError:
        return None
    if len(parts) != 3 or not parts[0].startswith("source="):
        return None
    return parts[0].removeprefix("source=")


def lookback_files(
    ws: Workspace, sources: list[str], start: datetime, end: datetime
) -> list[str]:
    """Lake files of `sources` in the date partitions from `start` to `end` (UTC dates)."""
    found: list[str] = []
    day = start.date()
    while day <= end.date():
        for source in sources:
            directory = ws.lake_dir / f"source={source}" / f"date={day:%Y-%m-%d}"
            if directory.is_dir():
                found.extend(sorted(str(p) for p in directory.glob("*.parquet")))
        day += timedelta(days=1)
    return found


def all_files(ws: Workspace, sources: list[str], since: datetime | None) -> dict[str, list[str]]:
    """Every lake file of `sources` (from the date of `since` on, when given)."""
    result: dict[str, list[str]] = {}
    for source in sources:
        directory = ws.lake_dir / f"source={source}"
        if not directory.is_dir():
            continue
        files = []
        for day_dir in sorted(directory.glob("date=*")):
            if since is not None and day_dir.name.removeprefix("date=") < f"{since:%Y-%m-%d}":
                continue
            files.extend(sorted(str(p) for p in day_dir.glob("*.parquet")))
        if files:
            result[source] = files
    return result


def relative_lake_file(path: str, ws: Workspace) -> str:
    """A lake file as stored with alerts: relative to `lake/events/`."""
    try:
        return str(PurePosixPath(Path(path).relative_to(ws.lake_dir)))
    except ValueError:
        return path
