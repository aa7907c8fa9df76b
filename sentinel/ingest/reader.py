"""One file, from its checkpoint to its end: the unit of work of `ingest` and of a watcher.

`ingest_file` opens the file once (see `streams`), identifies it (see `files`), picks its
framing and source, and reads it in batches, each unwrapped and normalised in DuckDB,
scanned for PII, staged, committed and published (see `batches`). It returns a
`FileReport` saying what it did; it never raises for a problem of the file itself:

- gone, not a regular file, unreadable, empty, binary, unrecognised: `skipped`;
- damaged gzip, truncated or failing while being read: `incomplete` (everything before
  the problem is committed; the rest of a damaged gzip is quarantined with the reason);
- an incomplete last line (no newline yet, and not a whole JSON record): `held` bytes,
  left after the checkpoint for the next read. A finished file whose last record lacks
  only its newline loads it. A watcher reads a live file with `partial="strict"`
  (complete lines only, gzip and single-document files left until they are idle) and
  flushes an idle file with `partial="take"`, which quarantines a last line that is not
  JSON.

Errors of sentinel's own side (the store, the lake, the disk it writes) propagate.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sentinel.buffers import BufferPools
from sentinel.config import Config
from sentinel.duck import DuckSession
from sentinel.exceptions import SourceError, StoreError
from sentinel.ingest import batches, framing, sniff, streams, unwrap
from sentinel.ingest import files as file_store
from sentinel.ingest.nesting import deep_records
from sentinel.ingest.normalise import normalise
from sentinel.lake.writer import write_staging
from sentinel.pii.pool import ScanPool
from sentinel.pii.scanner import scan_events
from sentinel.schema import EVENT_SCHEMA
from sentinel.sources import LogSource
from sentinel.sources.registry import recognise
from sentinel.workspace import Workspace

HEAD_BYTES = 256 * 1024


@dataclass
class FileReport:
    path: str
    source: str | None = None
    events: int = 0
    quarantined: int = 0
    skipped: str | None = None
    """Why the file was not ingested (unreadable, unrecognised, …), or None."""
    ignored: bool = False
    """Skipped harmlessly: found by a directory walk or glob and not a log (a README, an
    empty or binary file). A named file that cannot be ingested is never ignored."""
    incomplete: str | None = None
    """Read in part: why the rest could not be (damaged gzip, truncated, I/O error)."""
    held: int = 0
    """Bytes of an incomplete last line left for the next read."""


@dataclass
class RunTotals:
    """What a run adds up over its files (the `IngestReport` of `engine`)."""

    events_by_source: Counter[str] = field(default_factory=Counter)
    quarantined: int = 0
    pii_findings: int = 0
    bytes_read: int = 0


@dataclass(frozen=True)
class Formats:
    """The log sources of one ingest run, resolved once rather than per file."""

    by_name: dict[str, LogSource]
    forced: LogSource | None
    envelope_paths: tuple[str, ...]


@dataclass
class Context:
    """What every file of a run shares: workspace, connections, formats, totals, and the
    Runtime's resources (one config snapshot, read buffers, PII pool)."""

    ws: Workspace
    con: Any
    session: DuckSession
    formats: Formats
    key: bytes
    totals: RunTotals
    advance: Callable[[int], None] = lambda n: None
    config: Config | None = None
    buffers: BufferPools | None = None
    pool: ScanPool | None = None

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        return self.session.con

    @property
    def settings(self) -> Config:
        return self.config if self.config is not None else self.ws.config


@dataclass(frozen=True)
class Reading:
    """How one file is read: `partial` is "hold" (`sentinel ingest`: an unterminated last
    line waits unless it is whole JSON), "strict" (a live file: complete lines only, and
    gzip or single-document files not yet) or "take" (an idle file: everything).
    `stop` is asked between batches; a stopped read has committed every batch it began."""

    partial: str = "hold"
    batch_bytes: int | None = None
    stop: Callable[[], bool] | None = None


def ingest_file(ctx: Context, path: Path, reading: Reading | None = None) -> FileReport:
    """Ingest `path` from its checkpoint to its end; report what was done (see module)."""
    result = FileReport(str(path))
    ratio = ctx.settings.ingest.max_gzip_ratio
    try:
        with streams.LogFile.open(path, ratio) as log:
            try:
                _ingest_open(ctx, log, result, reading or Reading())
            except OSError as exc:
                # Reading the source failed (EIO, a vanished network mount …): what was
                # committed stays, the rest of the run goes on.
                problem = f"read failed: {streams.describe(exc)}"
                if result.events or result.quarantined:
                    result.incomplete = problem
                else:
                    result.skipped = problem
    except streams.Unreadable as exc:
        result.skipped = str(exc)
    return result


@dataclass
class Plan:
    """A file identified and recognised, ready to be read from its checkpoint."""

    state: file_store.FileState
    source: LogSource
    kind: str
    """Its framing: "lines" or "document"."""
    document: framing.Chunk | None
    """A document file's content, read whole."""
    disk_size: int


def _ingest_open(
    ctx: Context, log: streams.LogFile, result: FileReport, reading: Reading
) -> None:
    plan = plan_file(ctx, log, result, reading)
    if plan is not None:
        read_planned(ctx, log, plan, result, reading)


def read_planned(
    ctx: Context, log: streams.LogFile, plan: Plan, result: FileReport, reading: Reading
) -> None:
    """Read a planned file from its checkpoint to its end (or until `reading.stop`)."""
    state, source = plan.state, plan.source
    if plan.document is not None:
        _store(ctx, state, source, _prepare(ctx, state, source, plan.kind, plan.document),
               result)
        ctx.advance(plan.disk_size)
    elif not _read_lines(ctx, log, state, source, result, reading):
        return  # stopped between batches: the file is not finished
    finish(ctx.con, state, plan.disk_size)


def plan_file(
    ctx: Context, log: streams.LogFile, result: FileReport, reading: Reading
) -> Plan | None:
    """Identify and recognise `log`; None when there is nothing to read (`result` says why)."""
    state = file_store.identify(ctx.con, log)
    disk_size = log.size
    if disk_size == 0:
        result.skipped = "empty file"
        return None
    live = reading.partial == "strict"
    if live and (log.gz or state.framing == "document"):
        return None  # complete only once its writer is done: read when idle
    if state.file_id is not None and state.disk_size == disk_size and (
        log.gz or state.framing == "document" or state.offset >= disk_size
    ):
        result.source = state.source
        ctx.advance(disk_size)
        return None  # nothing new since the last read
    skipped, head, problem = _head(log)
    if not head and problem:
        # Nothing readable at all (garbage after the gzip magic, a bomb of newlines):
        # quarantined once with the reason, not read again until the file changes.
        result.skipped = problem
        _quarantine_unreadable(ctx, state, problem, skipped)
        result.quarantined = 1
        ctx.advance(disk_size)
        finish(ctx.con, state, disk_size)
        return None
    if sniff.is_binary(head):
        result.skipped = "binary file (not JSON text)"
        ctx.advance(disk_size)
        return None
    head = sniff.clean_head(head)
    if not head.strip():
        result.skipped = "empty file (only NUL bytes or blank lines so far)"
        ctx.advance(disk_size)
        return None
    kind = state.framing or sniff.detect_framing(head)
    if live and kind == "document":
        return None
    config = ctx.settings.ingest
    paths = ctx.formats.envelope_paths
    document: framing.Chunk | None = None
    if kind == "document":
        with log.content() as stream:
            document = unwrap.read_document(stream, config.max_document_bytes)
        sample = sniff.document_sample(ctx.duck, document, paths)
    else:
        sample = sniff.sample_record(head, kind, paths)
        if sample is None and b"\n" not in head:
            # One long first line (a compact CloudTrail file): let DuckDB find its first record.
            with log.content(skipped) as stream:
                line = stream.readline(config.max_line_bytes)
            sample = sniff.document_sample(ctx.duck, unwrap.text_chunk(line), paths)
    try:
        source = _choose_source(state, ctx.formats, sample)
    except SourceError as exc:
        result.skipped = exc.message
        if ctx.formats.forced is not None:
            _quarantine_file(ctx, state, head, exc.message)
            result.quarantined = 1
            ctx.totals.quarantined += 1
        ctx.advance(disk_size)
        return None
    state.source, state.framing, result.source = source.name, kind, source.name
    file_store.register(ctx.con, state)
    state.label = file_store.source_label(ctx.con, state)
    return Plan(state, source, kind, document, disk_size)


def _head(log: streams.LogFile) -> tuple[int, bytes, str | None]:
    """The first HEAD_BYTES of content after any leading run of NULs and blank lines
    (a copytruncate hole can be larger than the head), the length of that run, and why
    the content ended early (a damaged or over-large gzip), if it did."""
    with log.content() as stream:
        skipped = 0
        while True:
            data = stream.read(HEAD_BYTES)
            rest = data.lstrip(b"\x00 \t\r\n")
            if rest:
                skipped += len(data) - len(rest)
                head = rest + stream.read(HEAD_BYTES - len(rest))
                return skipped, head, streams.damage(stream)
            skipped += len(data)
            if len(data) < HEAD_BYTES:
                return skipped, b"", streams.damage(stream)


def _read_lines(
    ctx: Context,
    log: streams.LogFile,
    state: file_store.FileState,
    source: LogSource,
    result: FileReport,
    reading: Reading,
) -> bool:
    """Read from the checkpoint to the end; False when `reading.stop` stopped it."""
    config = ctx.settings.ingest
    start = state.offset
    if start == 0 and log.head(len(sniff.BOM)) == sniff.BOM:
        start = state.offset = len(sniff.BOM)  # a UTF-8 byte-order mark is not a record
    last = framing.Chunk(framing.RECORDS_TYPE.empty_table(), start, start)
    advanced, stopped = 0, False
    with log.content(start) as stream:
        chunks = framing.read_lines(
            stream, start, reading.batch_bytes or config.batch_bytes, config.max_line_bytes,
            # A .gz cannot grow: its cut last line is quarantined below with the reason.
            hold_partial=reading.partial != "take" or log.gz,
            strict=reading.partial == "strict", buffers=ctx.buffers,
        )
        # Pipelined: while one worker writes and commits batch k (Parquet compression,
        # fsyncs, SQLite), this thread frames and normalises batch k+1. One worker keeps
        # the commits in file order; the checkpoint only ever moves forward.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentinel-commit") as pool:
            pending: Future[None] | None = None
            for chunk in _prefetched(chunks):
                if reading.stop is not None and reading.stop():
                    stopped = True
                    break
                last = chunk
                if chunk.end == chunk.start and not chunk.rejected:
                    continue  # only an incomplete last line: nothing to commit
                prepared = _prepare(ctx, state, source, "lines", chunk)
                if pending is not None:
                    pending.result()
                pending = pool.submit(_store, ctx, state, source, prepared, result)
                position = streams.disk_position(stream)
                ctx.advance(position - advanced)
                advanced = position
            if pending is not None:
                pending.result()
        problem = streams.damage(stream)
    if stopped:
        return False
    ctx.advance(log.size - advanced)
    if problem is None and last.held and log.gz:
        problem = "incomplete last line (no newline, not valid JSON) at the end of a .gz file"
    elif problem is not None:
        result.incomplete = problem
    if problem is not None:
        # Everything before is committed; what follows cannot be read: quarantined with
        # the reason, the checkpoint stays before it.
        rest = framing.Rejected(
            state.offset, problem, last.held_head.decode("utf-8", "backslashreplace"),
            truncated=True, length=last.held,
        )
        empty = Prepared(EVENT_SCHEMA.empty_table(), [rest], state.offset, 0, None)
        _store(ctx, state, source, empty, result)
    elif last.held:
        result.held = last.held
    now = log.current_size()
    if not log.gz and now < log.size:
        result.incomplete = (
            f"truncated while being read ({log.size:,} -> {now:,} bytes): "
            f"read up to byte {state.offset:,}"
        )
    return True


def _prefetched(chunks: Iterator[framing.Chunk]) -> Iterator[framing.Chunk]:
    """Read and frame the next chunk in a thread while the caller works on this one."""
    box: queue.Queue[framing.Chunk | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        box.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            box.put(exc)

    reader = threading.Thread(target=produce, name="sentinel-read", daemon=True)
    reader.start()
    try:
        while True:
            item = box.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def finish(con: Any, state: file_store.FileState, disk_size: int) -> None:
    """Remember the on-disk size read, so an unchanged file is skipped next time."""
    state.disk_size = disk_size
    if state.file_id is not None:
        with batches.relaxed(con):
            con.execute(
                "UPDATE files SET disk_size = ? WHERE file_id = ?", (disk_size, state.file_id)
            )


def _choose_source(
    state: file_store.FileState, formats: Formats, sample: object | None
) -> LogSource:
    forced = formats.forced
    if forced is None and state.source in formats.by_name:
        return formats.by_name[str(state.source)]
    claimed = recognise(sample, formats.by_name.values()) if sample is not None else None
    if forced is not None:
        if claimed is not None and claimed.name != forced.name:
            raise SourceError(
                f"file is not in {forced.name} format (it looks like {claimed.name})"
            )
        return forced
    if claimed is None:
        if sample is None:
            raise SourceError("not JSON: no record could be parsed from the start of the file")
        raise SourceError(
            "unrecognised log format; pass --source NAME or define a [sources.NAME] mapping"
        )
    return claimed


@dataclass
class Prepared:
    """A batch normalised and scanned, ready to be written and committed."""

    events: pa.Table
    problems: list[framing.Rejected]
    end: int
    """The checkpoint after this batch (byte offset, or records taken for a document)."""
    bytes_read: int
    tail: str | None
    """The identity digest of the content before `end` (lines framing)."""


def _prepare(
    ctx: Context,
    state: file_store.FileState,
    source: LogSource,
    kind: str,
    chunk: framing.Chunk,
) -> Prepared:
    """Unwrap, normalise and scan one chunk (DuckDB and Arrow work; no I/O)."""
    document = kind == "document"
    records = unwrap.unwrap(
        ctx.duck, chunk.records, source.envelope_paths, document,
        state.offset if document else 0,
    )
    problems = list(chunk.rejected)
    taken = records.num_rows
    if document:
        # Lines were checked when framed; a document's records only exist now.
        deep = deep_records(records.column("record"))
        if deep:
            for row in deep:
                raw = str(records.column("record")[row].as_py()).encode()
                problems.append(framing.too_deep(int(records.column("source_offset")[row].as_py()),
                                                 raw))
            dropped = set(deep)
            keep = pa.array([i not in dropped for i in range(records.num_rows)])
            records = records.filter(keep)
    events, rejected = normalise(ctx.session, source, records, state.label)
    events = scan_events(events, ctx.settings, ctx.key, ctx.pool)
    problems += [
        framing.Rejected(int(r["source_offset"]), str(r["reason"]), str(r["raw"]))
        for r in rejected.to_pylist()
    ]
    end = state.offset + taken if document else chunk.end
    tail = None if document else file_store.tail_digest(chunk.tail)
    return Prepared(events, problems, end, chunk.bytes_read, tail)


def _store(
    ctx: Context,
    state: file_store.FileState,
    source: LogSource,
    batch: Prepared,
    result: FileReport,
) -> None:
    """Stage, commit and publish one batch: the exactly-once step (see `batches`)."""
    ws = ctx.ws
    events, problems = batch.events, batch.problems
    batch_id = batches.new_batch_id()
    start = state.offset
    try:
        outputs = [
            batches.Output(name, f"lake/events/{final}")
            for name, final in write_staging(events, ws.staging_dir, batch_id)
        ]
        outputs += batches.stage_quarantine(
            ws, batch_id, state.label or state.path, source.name, problems, ctx.key
        )
    except OSError as exc:
        # The workspace's disk, not the source file: the run cannot go on (exit 3).
        raise StoreError(f"cannot write the batch into {ws.root}: {exc.strerror or exc}") from exc
    state.offset = batch.end
    state.tail = batch.tail if batch.tail is not None else state.tail
    state.records += events.num_rows
    state.quarantined += len(problems)
    batches.commit(ctx.con, state, batch_id, start, outputs, events.num_rows, len(problems))
    try:
        batches.publish(ctx.con, ws, batch_id, outputs)
    except OSError as exc:  # committed: the next run's recovery publishes it
        raise StoreError(f"cannot publish batch {batch_id}: {exc.strerror or exc}") from exc
    count(ctx, source, batch, result)


def count(ctx: Context, source: LogSource, batch: Prepared, result: FileReport) -> None:
    """Add a committed batch to the file's report and the run's totals."""
    events, problems, totals = batch.events, batch.problems, ctx.totals
    result.events += events.num_rows
    result.quarantined += len(problems)
    totals.events_by_source[source.name] += events.num_rows
    totals.quarantined += len(problems)
    totals.bytes_read += batch.bytes_read
    if events.num_rows:
        totals.pii_findings += int(pc.sum(events.column("pii_count")).as_py() or 0)


def _quarantine_unreadable(
    ctx: Context, state: file_store.FileState, reason: str, offset: int
) -> None:
    """Record a file whose content cannot be read at all, once (its checkpoint moves to
    nothing read, with a batch holding the one quarantine entry)."""
    state.framing = state.framing or "lines"
    file_store.register(ctx.con, state)
    state.label = file_store.source_label(ctx.con, state)
    batch_id = batches.new_batch_id()
    entry = framing.Rejected(offset, reason, "", truncated=True, length=0)
    outputs = batches.stage_quarantine(ctx.ws, batch_id, state.label, None, [entry], ctx.key)
    state.quarantined += 1
    batches.commit(ctx.con, state, batch_id, state.offset, outputs, 0, 1)
    batches.publish(ctx.con, ctx.ws, batch_id, outputs)
    ctx.totals.quarantined += 1


def _quarantine_file(
    ctx: Context, state: file_store.FileState, head: bytes, reason: str
) -> None:
    """Record a whole-file rejection (wrong --source) without advancing any checkpoint."""
    batch_id = batches.new_batch_id()
    sample = framing.Rejected(
        0, reason, head[: framing.QUARANTINE_SAMPLE_BYTES].decode("utf-8", "backslashreplace"),
        truncated=True,
    )
    outputs = batches.stage_quarantine(ctx.ws, batch_id, state.path, None, [sample], ctx.key)
    batches.publish(ctx.con, ctx.ws, batch_id, outputs)

