"""Many small files of one source in one normalise query: S3-sync trees of one-object files.

Normalising a batch has a fixed cost (DuckDB binds and optimises the source's query,
~0.35 s, whatever its size) that dwarfs the work for a file of one record: read one by
one, an S3-sync tree of one-object JSON files loaded at 2–4 files a second.
`ingest_many` plans each file as `reader` does (identity, checkpoint, framing, source),
then, per source, unwraps, normalises and scans the new records of up to `GROUP_FILES`
files (`GROUP_BYTES`) in one query each, splits the result back per file, and commits
every file's batch (its Parquet and quarantine files, its checkpoint) in one
transaction.

Invariants:

- exactly once, per file as for one file: a file's checkpoint moves only in the
  transaction that records its batch; a crash before that commit leaves staged files
  that recovery deletes, and the files are read again;
- a record keeps its file: while grouped, each `source_offset` carries its file's
  index in its high bits (`FILE_SHIFT`), so the split back per file never depends on
  row order;
- only what is simple is grouped (`grouped`): a plain file of at most
  `SMALL_FILE_BYTES` (and one batch, `batch_bytes`), whose new content is one chunk of
  lines or a whole document read from its start. Anything else, and a group whose
  query fails, is read file by file (`reader`), so one bad file never costs the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sentinel.exceptions import SourceError, StoreError
from sentinel.ingest import batches, framing, reader, sniff, streams, unwrap
from sentinel.ingest import files as file_store
from sentinel.ingest.nesting import deep_records
from sentinel.ingest.normalise import normalise
from sentinel.ingest.reader import Context, FileReport, Plan, Prepared, Reading
from sentinel.lake.writer import write_staging
from sentinel.pii.scanner import scan_events
from sentinel.schema import EVENT_SCHEMA
from sentinel.store.db import transaction

SMALL_FILE_BYTES = 256 * 1024
"""Files up to this size are grouped; larger ones are read on their own."""
GROUP_FILES = 1000
GROUP_BYTES = 16 * 1024 * 1024
"""A group is normalised once it holds this many files or bytes."""
FILE_SHIFT = 40
"""A grouped record's `source_offset` is `file index << FILE_SHIFT | offset`."""
_OFFSET_MASK = (1 << FILE_SHIFT) - 1


@dataclass
class Member:
    """One planned small file and its new content, waiting for its group's query."""

    path: Path
    plan: Plan
    chunk: framing.Chunk
    report: FileReport


def grouped(path: Path) -> bool:
    """Whether `path` may join a group (small and plain; a stat, no read)."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return 0 < size <= SMALL_FILE_BYTES and not path.name.endswith(".gz")


def ingest_many(
    ctx: Context, paths: Iterable[Path], reading: Reading | None = None
) -> list[FileReport]:
    """Ingest `paths` (small ones in groups), one report per path, in order.

    With `reading.stop` (asked before each file but the first), the files not started
    when it says stop get no report."""
    reading = reading or Reading()
    reports: list[FileReport] = []
    groups: dict[str, list[Member]] = defaultdict(list)
    sizes: dict[str, int] = defaultdict(int)
    pending: set[int | None] = set()
    """The files waiting in a group (by file id)."""
    for index, path in enumerate(paths):
        if index and reading.stop is not None and reading.stop():
            break  # (asked from the second file on: a call always makes progress)
        if not grouped(path):
            reports.append(reader.ingest_file(ctx, path, reading))
            continue
        report = FileReport(str(path))
        reports.append(report)
        member = _plan(ctx, path, report, reading)
        if member is not None and member.plan.state.file_id in pending:
            # The same file as one waiting in a group (a hard link, or a copy that file
            # identity knows as that file): commit the groups first, then it has nothing
            # new, exactly as when files are read one after the other.
            for members in groups.values():
                _ingest_group(ctx, members, reading)
            groups.clear()
            sizes.clear()
            pending.clear()
            report = FileReport(str(path))
            reports[-1] = report
            member = _plan(ctx, path, report, reading)
        if member is None:
            continue
        name = member.plan.source.name
        pending.add(member.plan.state.file_id)
        groups[name].append(member)
        sizes[name] += member.chunk.bytes_read
        if len(groups[name]) >= GROUP_FILES or sizes[name] >= GROUP_BYTES:
            flushed = groups.pop(name)
            _ingest_group(ctx, flushed, reading)
            sizes.pop(name)
            pending.difference_update(m.plan.state.file_id for m in flushed)
    for members in groups.values():
        _ingest_group(ctx, members, reading)
    return reports


def _plan(ctx: Context, path: Path, report: FileReport, reading: Reading) -> Member | None:
    """Plan `path` and take its new content; read it at once (alone) if it cannot join."""
    try:
        with streams.LogFile.open(path, ctx.settings.ingest.max_gzip_ratio) as log:
            try:
                plan = reader.plan_file(ctx, log, report, reading)
                if plan is None:
                    return None
                chunk = _content(ctx, log, plan, reading)
                if chunk is None:
                    reader.read_planned(ctx, log, plan, report, reading)
                    return None
                if plan.document is None and chunk.end == chunk.start and not chunk.rejected:
                    report.held = chunk.held  # only a line still being written
                    ctx.advance(plan.disk_size)
                    reader.finish(ctx.con, plan.state, plan.disk_size)
                    return None
            except OSError as exc:
                problem = f"read failed: {streams.describe(exc)}"
                if report.events or report.quarantined:
                    report.incomplete = problem  # what was committed stays
                else:
                    report.skipped = problem
                return None
    except streams.Unreadable as exc:
        report.skipped = str(exc)
        return None
    return Member(path, plan, chunk, report)


def _content(
    ctx: Context, log: streams.LogFile, plan: Plan, reading: Reading
) -> framing.Chunk | None:
    """The file's new content as one chunk, or None when it is not that simple."""
    config = ctx.settings.ingest
    batch_bytes = reading.batch_bytes or config.batch_bytes
    if log.gz or log.size > min(SMALL_FILE_BYTES, batch_bytes):
        return None  # more than one batch's worth: read alone, batch by batch
    state = plan.state
    if plan.document is not None:
        return plan.document if state.offset == 0 else None
    start = state.offset
    if start == 0 and log.head(len(sniff.BOM)) == sniff.BOM:
        start = state.offset = len(sniff.BOM)  # a UTF-8 byte-order mark is not a record
    with log.content(start) as stream:
        chunks = list(framing.read_lines(
            stream, start, batch_bytes, config.max_line_bytes,
            hold_partial=reading.partial != "take", strict=reading.partial == "strict",
        ))
        damaged = streams.damage(stream)
    if damaged is not None or len(chunks) != 1 or log.current_size() < log.size:
        return None
    return chunks[0]


def _ingest_group(ctx: Context, members: list[Member], reading: Reading) -> None:
    """Normalise a group in one query and commit it; file by file if the query fails."""
    try:
        prepared = _prepare(ctx, members)
    except (SourceError, duckdb.Error):
        for member in members:  # nothing of the group was committed: read each alone
            alone = reader.ingest_file(ctx, member.path, reading)
            vars(member.report).update(vars(alone))
        return
    _store(ctx, members, prepared)


def _prepare(ctx: Context, members: list[Member]) -> list[Prepared]:
    """Unwrap, normalise and scan every member's records at once; split per member."""
    source = members[0].plan.source
    paths = source.envelope_paths
    lines: list[pa.Table] = []
    documents: list[pa.Table] = []
    for index, member in enumerate(members):
        records = member.chunk.records
        shifted = pa.table({
            "source_offset": pc.add(records.column("source_offset"), index << FILE_SHIFT),
            "record": records.column("record"),
        }, schema=framing.RECORDS_TYPE)
        (documents if member.plan.kind == "document" else lines).append(shifted)
    parts = []
    if lines:
        parts.append(unwrap.unwrap(ctx.duck, pa.concat_tables(lines), paths, False))
    problems: list[list[framing.Rejected]] = [list(m.chunk.rejected) for m in members]
    if documents:
        expanded = unwrap.unwrap(ctx.duck, pa.concat_tables(documents), paths, True)
        deep = deep_records(expanded.column("record"))
        if deep:
            for row in deep:
                index, offset = _split_offset(int(expanded.column("source_offset")[row].as_py()))
                raw = str(expanded.column("record")[row].as_py()).encode()
                problems[index].append(framing.too_deep(offset, raw))
            dropped = set(deep)
            expanded_rows = expanded.num_rows
            taken_all = _per_file(expanded.column("source_offset"), len(members))
            expanded = expanded.filter(pa.array([i not in dropped for i in range(expanded_rows)]))
        else:
            taken_all = _per_file(expanded.column("source_offset"), len(members))
        parts.append(expanded)
    else:
        taken_all = np.zeros(len(members), np.int64)
    records = pa.concat_tables(parts).sort_by("source_offset")
    events, rejected = normalise(ctx.session, source, records, None)
    events = scan_events(events, ctx.settings, ctx.key, ctx.pool)
    events, file_of = _restore(events, members)
    for row in rejected.to_pylist():
        index, offset = _split_offset(int(row["source_offset"]))
        problems[index].append(framing.Rejected(offset, str(row["reason"]), str(row["raw"])))
    bounds = np.searchsorted(file_of, np.arange(len(members) + 1))
    out = []
    for index, member in enumerate(members):
        chunk, state = member.chunk, member.plan.state
        mine = events.slice(int(bounds[index]), int(bounds[index + 1] - bounds[index]))
        if member.plan.kind == "document":
            end, tail = state.offset + int(taken_all[index]), None
        else:
            end, tail = chunk.end, file_store.tail_digest(chunk.tail)
        out.append(Prepared(mine, problems[index], end, chunk.bytes_read, tail))
    return out


def _split_offset(value: int) -> tuple[int, int]:
    return value >> FILE_SHIFT, value & _OFFSET_MASK


def _per_file(offsets: pa.ChunkedArray, count: int) -> np.ndarray:
    """Rows per member index, from shifted offsets."""
    files = np.right_shift(offsets.to_numpy(), FILE_SHIFT)
    return np.bincount(files, minlength=count)


def _restore(events: pa.Table, members: list[Member]) -> tuple[pa.Table, np.ndarray]:
    """The events with their own offsets and file labels, and each row's member index
    (events come in offset order, so each member's rows are contiguous)."""
    shifted = events.column("source_offset").to_numpy()
    file_of = np.right_shift(shifted, FILE_SHIFT)
    labels = pa.array([m.plan.state.label for m in members], pa.string()).take(file_of)
    at = EVENT_SCHEMA.get_field_index
    events = events.set_column(
        at("source_offset"), EVENT_SCHEMA.field("source_offset"),
        pa.array(np.bitwise_and(shifted, _OFFSET_MASK), pa.int64()),
    )
    events = events.set_column(at("source_file"), EVENT_SCHEMA.field("source_file"), labels)
    return events, file_of


def _store(ctx: Context, members: list[Member], prepared: list[Prepared]) -> None:
    """Stage every member's batch, commit them in one transaction, publish them."""
    ws = ctx.ws
    staged = []
    try:
        for member, batch in zip(members, prepared, strict=True):
            state, source = member.plan.state, member.plan.source
            batch_id = batches.new_batch_id()
            outputs = [
                batches.Output(name, f"lake/events/{final}")
                for name, final in write_staging(batch.events, ws.staging_dir, batch_id)
            ]
            outputs += batches.stage_quarantine(
                ws, batch_id, state.label or state.path, source.name, batch.problems, ctx.key
            )
            staged.append((batch_id, state.offset, outputs))
    except OSError as exc:
        raise StoreError(f"cannot write the batch into {ws.root}: {exc.strerror or exc}") from exc
    with transaction(ctx.con):
        for member, batch, (batch_id, start, outputs) in zip(
            members, prepared, staged, strict=True
        ):
            state = member.plan.state
            state.offset = batch.end
            state.tail = batch.tail if batch.tail is not None else state.tail
            state.records += batch.events.num_rows
            state.quarantined += len(batch.problems)
            batches.record(ctx.con, state, batch_id, start, outputs, batch.events.num_rows,
                           len(batch.problems))
    for member, batch, (batch_id, _, outputs) in zip(members, prepared, staged, strict=True):
        try:
            batches.publish(ctx.con, ws, batch_id, outputs)
        except OSError as exc:  # committed: the next run's recovery publishes it
            raise StoreError(f"cannot publish batch {batch_id}: {exc.strerror or exc}") from exc
        reader.count(ctx, member.plan.source, batch, member.report)
        if member.chunk.held:
            member.report.held = member.chunk.held
        ctx.advance(member.plan.disk_size)
        reader.finish(ctx.con, member.plan.state, member.plan.disk_size)
