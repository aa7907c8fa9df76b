"""Atomic Parquet writes into the hive-partitioned lake.

A batch's events are split by (source, UTC date) and each part is written to
`lake/.staging/` and fsynced. Nothing in `lake/events/` is ever written in place: a
file appears there only by rename, after its batch is committed (see
`sentinel.ingest.batches`), so a reader sees whole batches or nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sentinel.exceptions import SourceError
from sentinel.sources.base import SOURCE_NAME


def write_staging(
    events: pa.Table, staging_dir: Path, batch_id: str
) -> list[tuple[str, str]]:
    """Write `events` as one Parquet file per (source, date) into `staging_dir`.

    Returns `(staging file name, final path relative to the lake's events dir)` pairs.
    """
    if events.num_rows == 0:
        return []
    outputs = []
    dates = pc.strftime(events.column("ts"), format="%Y-%m-%d")
    sources = events.column("source")
    keys = pa.table({"source": sources, "date": dates}).group_by(["source", "date"]).aggregate([])
    for source, date in zip(
        keys.column("source").to_pylist(), keys.column("date").to_pylist(), strict=True
    ):
        if not SOURCE_NAME.fullmatch(source):
            raise SourceError(f"source name {source!r} is not a valid lake partition name")
        if keys.num_rows == 1:
            part = events  # the usual batch: one partition, written without a copy
        else:
            part = events.filter(pc.and_(pc.equal(sources, source), pc.equal(dates, date)))
        name = f"{batch_id}-{source}-{date}.parquet"
        write_durably(part, staging_dir / name)
        outputs.append((name, f"source={source}/date={date}/{batch_id}.parquet"))
    return outputs


def write_durably(table: pa.Table, path: Path) -> None:
    """Write a Parquet file and fsync it before returning."""
    pq.write_table(table, path, compression="zstd", row_group_size=64 * 1024)
    fsync_path(path)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
