"""`sentinel ingest`: load log files into the lake, exactly once.

For each file: identify it (checkpoint), pick its framing and source, then read it in
batches; each batch is unwrapped and normalised in DuckDB, scanned for PII, staged,
committed and published (see `batches`). A file that cannot be read or recognised is
skipped with a reason and nothing else stops: one bad file never costs the others.

A run uses its Runtime's resources (state.db connection, DuckDB session, read
buffers, PII pool) and one snapshot of its config; given a bare Workspace, it opens a
Runtime for the run and closes it at the end.
"""

from __future__ import annotations

import glob
import gzip
import io
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sentinel.buffers import BufferPools
from sentinel.config import Config
from sentinel.duck import DuckSession
from sentinel.exceptions import SentinelError, SourceError
from sentinel.ingest import batches, framing
from sentinel.ingest import files as file_store
from sentinel.ingest.normalise import normalise
from sentinel.ingest.progress import NoProgress, Progress
from sentinel.lake.writer import write_staging
from sentinel.pii.pool import ScanPool
from sentinel.pii.scanner import scan_events
from sentinel.runtime import Runtime, as_runtime
from sentinel.sources import LogSource, available_sources, get_source
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


# Reasons that mean "not a log file" rather than "a log we failed to read".
NOT_A_LOG = ("empty file", "binary file", "not JSON", "unrecognised log format")


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    events_by_source: Counter[str] = field(default_factory=Counter)
    quarantined: int = 0
    pii_findings: int = 0
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(self.events_by_source.values())

    @property
    def skipped(self) -> list[FileReport]:
        """Files that should have been ingested and were not (exit code 1)."""
        return [f for f in self.files if f.skipped and not f.ignored]

    @property
    def ignored(self) -> list[FileReport]:
        return [f for f in self.files if f.ignored]

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "events_by_source": dict(self.events_by_source),
            "quarantined": self.quarantined,
            "pii_findings": self.pii_findings,
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "files": [vars(f) for f in self.files],
        }


def custom_sources(ws: Workspace) -> list[LogSource]:
    """The JSON-lines sources declared in `sentinel.toml`."""
    from sentinel.sources.jsonl import JsonlSource

    return [
        JsonlSource(
            c.name, c.fields, match=c.match, defaults=c.defaults, logsource=c.logsource
        )
        for c in ws.config.sources
    ]


@dataclass(frozen=True)
class _Run:
    """What one ingest run works with: the Runtime's resources and one config snapshot."""

    config: Config
    custom: tuple[LogSource, ...]
    session: DuckSession
    buffers: BufferPools | None
    pool: ScanPool | None

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        return self.session.con


@dataclass(frozen=True)
class _Formats:
    """The log sources of one ingest run, resolved once rather than per file."""

    by_name: dict[str, LogSource]
    forced: LogSource | None
    envelope_paths: tuple[str, ...]

    @classmethod
    def resolve(cls, source: str | None, custom: Iterable[LogSource]) -> _Formats:
        by_name = available_sources(custom)
        forced = get_source(source, by_name.values()) if source else None
        paths = tuple(sorted({p for s in by_name.values() for p in s.envelope_paths}))
        return cls(by_name, forced, paths)


def expand_paths(
    ws: Workspace, paths: Iterable[str]
) -> tuple[list[tuple[Path, bool]], list[FileReport]]:
    """Files named by `paths` (files, directories, globs), minus the workspace's own.

    Each file comes with whether it was named explicitly (not found by a walk or glob).
    """
    found: list[tuple[Path, bool]] = []
    missing: list[FileReport] = []
    for raw in paths:
        explicit = not any(ch in raw for ch in "*?[")
        if not explicit:
            matches = [Path(p) for p in sorted(glob.glob(raw, recursive=True))]
            if not matches:
                missing.append(FileReport(raw, skipped="no file matches this pattern"))
        else:
            matches = [Path(raw)]
        for path in matches:
            if path.is_dir():
                found.extend(
                    (p, False) for p in sorted(path.rglob("*"))
                    if p.is_file() and not p.name.startswith(".")
                )
            elif path.is_file():
                found.append((path, explicit))
            elif not path.exists():
                missing.append(FileReport(str(path), skipped="no such file or directory"))
    result, seen = [], set()
    for path, named in found:
        resolved = path.resolve()
        if resolved in seen or ws.owns(resolved):
            continue
        seen.add(resolved)
        result.append((path, named))
    return result, missing


def ingest_paths(
    target: Workspace | Runtime,
    paths: Iterable[str | Path],
    source: str | None = None,
    progress: Progress | bool | None = None,
) -> IngestReport:
    """Ingest every file under `paths`; `source` forces a format instead of recognition.

    `target` is the Runtime to work in, or a Workspace (a Runtime is opened for this
    run). `progress` receives the bytes read (a front end draws it; a bool, from
    callers written before the protocol, shows nothing).
    """
    shown = progress if progress is not None and not isinstance(progress, bool) else None
    rt, owned = as_runtime(target)
    try:
        return _ingest_paths(rt, paths, source, shown or NoProgress())
    finally:
        if owned:
            rt.close()


def _ingest_paths(
    rt: Runtime, paths: Iterable[str | Path], source: str | None, progress: Progress
) -> IngestReport:
    started = time.monotonic()
    ws = rt.workspace
    config, custom = rt.config_and_sources()
    run = _Run(config, custom, rt.ingest_session(), rt.buffers, rt.pii)
    formats = _Formats.resolve(source, custom)
    key = ws.secret_key()
    files, report_missing = expand_paths(ws, [str(p) for p in paths])
    report = IngestReport(files=list(report_missing))
    con = rt.state_db()
    with batches.ingest_lock(ws):
        batches.recover(con, ws)
        progress.start(sum(_size(p) for p, _ in files))
        try:
            for path, named in files:
                file_report = _ingest_file(
                    ws, con, run, path, formats, key, report, progress.advance
                )
                file_report.ignored = bool(
                    not named and file_report.skipped
                    and file_report.skipped.startswith(NOT_A_LOG)
                )
                report.files.append(file_report)
        finally:
            progress.stop()
    report.seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class Tail:
    """How a live file is read (the watcher's options; `sentinel ingest` uses the default).

    With `finish` false only complete lines are taken: the checkpoint stays before a
    partial last line, and gzip and single-document files (complete only once their
    writer is done) are left alone. `stop` is asked between batches; a stopped read has
    committed every batch it started.
    """

    finish: bool = True
    batch_bytes: int | None = None
    stop: Callable[[], bool] | None = None


def formats_for(ws: Workspace, source: str | None = None) -> _Formats:
    """The log sources to read files with (resolved once, reused for many files)."""
    return _Formats.resolve(source, custom_sources(ws))


def ingest_file(
    ws: Workspace,
    con: Any,
    duck: DuckSession | duckdb.DuckDBPyConnection,
    path: Path,
    formats: _Formats,
    key: bytes,
    tail: Tail,
    runtime: Runtime | None = None,
    config: Config | None = None,
) -> FileReport:
    """Ingest one file from its checkpoint: the watcher's unit of work.

    The caller holds `batches.ingest_lock` and has run `batches.recover` under it.
    `config` is the caller's snapshot (it decides when to reload; default: `ws.config`
    as it is now); `runtime` lends its PII pool and read buffers (without one, the scan
    runs on this thread alone).
    """
    session = duck if isinstance(duck, DuckSession) else DuckSession(duck)
    run = _Run(
        config or ws.config, (), session,
        runtime.buffers if runtime is not None else None,
        runtime.pii if runtime is not None else None,
    )
    return _ingest_file(ws, con, run, path, formats, key, IngestReport(), _no_progress, tail)


def _no_progress(_: int) -> None:
    return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _ingest_file(
    ws: Workspace,
    con: Any,
    run: _Run,
    path: Path,
    formats: _Formats,
    key: bytes,
    report: IngestReport,
    advance: Any,
    tail: Tail = Tail(),  # noqa: B008 - frozen, shared safely
) -> FileReport:
    result = FileReport(str(path))
    reason = file_store.readable(path)
    if reason:
        result.skipped = reason
        return result
    state = file_store.identify(con, path)
    disk_size = state.size
    if disk_size == 0:
        result.skipped = "empty file"
        return result
    gz = file_store.is_gzip(path)
    end: int | None = None
    if not tail.finish:
        if gz or state.framing == "document":
            return result  # complete only once its writer is done: read when idle
        end = complete_end(path, disk_size, run.config.ingest.max_line_bytes)
        if end <= state.offset:
            return result  # nothing but a partial line since the checkpoint
    if state.file_id is not None and state.disk_size == disk_size and (
        gz or state.framing == "document" or state.offset >= disk_size
    ):
        result.source = state.source
        advance(disk_size)
        return result  # nothing new since the last read
    with _open(path, gz) as stream:
        head = stream.read(HEAD_BYTES)
    if b"\x00" in head[:8192]:
        result.skipped = "binary file (not JSON text)"
        advance(disk_size)
        return result
    kind = state.framing or framing.detect_framing(head)
    if not tail.finish and kind == "document":
        return result
    config = run.config
    document: framing.Chunk | None = None
    paths = formats.envelope_paths
    if kind == "document":
        with _open(path, gz) as stream:
            document = framing.read_document(stream, config.ingest.max_document_bytes)
        sample = framing.document_sample(run.duck, document, paths)
    else:
        sample = framing.sample_record(head, kind, paths)
        if sample is None and b"\n" not in head:
            # One long first line (a compact CloudTrail file): let DuckDB find its first record.
            with _open(path, gz) as stream:
                line = stream.readline(config.ingest.max_line_bytes)
            sample = framing.document_sample(run.duck, framing.text_chunk(line), paths)
    try:
        source = _choose_source(state, formats, sample)
    except SourceError as exc:
        result.skipped = exc.message
        if formats.forced is not None:
            _quarantine_file(ws, con, state, path, head, exc.message)
            result.quarantined = 1
            report.quarantined += 1
        advance(disk_size)
        return result
    state.source, state.framing, result.source = source.name, kind, source.name
    if document is not None:
        prepared = _prepare(run, state, source, kind, document, key)
        _store(ws, con, state, source, prepared, result, report)
        advance(disk_size)
        _finish(con, state, disk_size)
        return result
    with _open(path, gz) as opened:
        bounded: Any = opened if end is None else _Bounded(opened, end)
        bounded.seek(state.offset)
        chunks = framing.read_lines(
            bounded, state.offset, tail.batch_bytes or config.ingest.batch_bytes,
            config.ingest.max_line_bytes, run.buffers,
        )
        raw_handle = opened.fileobj if isinstance(opened, gzip.GzipFile) else opened  # type: ignore[attr-defined]
        last_position = raw_handle.tell() if raw_handle is not None else 0
        # Pipelined: while one worker writes and commits batch k (Parquet compression,
        # fsyncs, SQLite), this thread frames and normalises batch k+1. One worker keeps
        # the commits in file order; the checkpoint only ever moves forward.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentinel-commit") as pool:
            pending: Future[None] | None = None
            stopped = False
            for chunk in _prefetched(chunks):
                if tail.stop is not None and tail.stop():
                    stopped = True
                    break
                prepared = _prepare(run, state, source, kind, chunk, key)
                if pending is not None:
                    pending.result()
                pending = pool.submit(_store, ws, con, state, source, prepared, result, report)
                position = raw_handle.tell() if raw_handle is not None else 0
                advance(position - last_position)
                last_position = position
            if pending is not None:
                pending.result()
    if not stopped:
        _finish(con, state, disk_size)
    return result


def complete_end(path: Path, size: int, longest: int | None = None) -> int:
    """The offset just past the last newline in the first `size` bytes (0: none).

    Searched back at most `longest` bytes: a last line longer than that is oversize
    anyway, so `size` is returned and the line is quarantined rather than scanned for
    again on every call.
    """
    floor = 0 if longest is None else max(0, size - longest)
    step = 64 * 1024
    with path.open("rb") as handle:
        end = size
        while end > floor:
            start = max(floor, end - step)
            handle.seek(start)
            index = handle.read(end - start).rfind(b"\n")
            if index >= 0:
                return start + index + 1
            end = start
    return 0 if floor == 0 else size


class _Bounded(io.RawIOBase):
    """A file read no further than `end`: complete lines only, while a writer appends."""

    def __init__(self, raw: IO[bytes], end: int) -> None:
        super().__init__()
        self.raw, self.end = raw, end

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        room = min(len(buffer), self.end - self.raw.tell())
        if room <= 0:
            return 0
        return self.raw.readinto(memoryview(buffer)[:room])  # type: ignore[attr-defined]

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def fileno(self) -> int:
        return self.raw.fileno()


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


def _finish(con: Any, state: file_store.FileState, disk_size: int) -> None:
    """Remember the on-disk size read, so an unchanged file is skipped next time."""
    state.disk_size = disk_size
    if state.file_id is not None:
        with batches.relaxed(con):
            con.execute(
                "UPDATE files SET disk_size = ? WHERE file_id = ?", (disk_size, state.file_id)
            )


def _choose_source(
    state: file_store.FileState, formats: _Formats, sample: object | None
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
class _Prepared:
    """A batch normalised and scanned, ready to be written and committed."""

    events: pa.Table
    problems: list[framing.Rejected]
    end: int
    """The checkpoint after this batch (byte offset, or records taken for a document)."""
    bytes_read: int


def _prepare(
    run: _Run,
    state: file_store.FileState,
    source: LogSource,
    kind: str,
    chunk: framing.Chunk,
    key: bytes,
) -> _Prepared:
    """Unwrap, normalise and scan one chunk (DuckDB and Arrow work; no I/O)."""
    document = kind == "document"
    records = framing.unwrap(
        run.duck, chunk.records, source.envelope_paths, document, state.offset if document else 0
    )
    events, rejected = normalise(run.session, source, records, state.path)
    events = scan_events(events, run.config, key, run.pool)
    problems = list(chunk.rejected) + [
        framing.Rejected(int(r["source_offset"]), str(r["reason"]), str(r["raw"]))
        for r in rejected.to_pylist()
    ]
    end = state.offset + records.num_rows if document else chunk.end
    return _Prepared(events, problems, end, chunk.bytes_read)


def _store(
    ws: Workspace,
    con: Any,
    state: file_store.FileState,
    source: LogSource,
    batch: _Prepared,
    result: FileReport,
    report: IngestReport,
) -> None:
    """Stage, commit and publish one batch: the exactly-once step (see `batches`)."""
    events, problems = batch.events, batch.problems
    batch_id = batches.new_batch_id()
    start = state.offset
    outputs = [
        batches.Output(name, f"lake/events/{final}")
        for name, final in write_staging(events, ws.staging_dir, batch_id)
    ]
    outputs += batches.stage_quarantine(ws, batch_id, state.path, source.name, problems)
    state.offset = batch.end
    state.records += events.num_rows
    state.quarantined += len(problems)
    batches.commit(con, state, batch_id, start, outputs, events.num_rows, len(problems))
    batches.publish(con, ws, batch_id, outputs)
    result.events += events.num_rows
    result.quarantined += len(problems)
    report.events_by_source[source.name] += events.num_rows
    report.quarantined += len(problems)
    report.bytes_read += batch.bytes_read
    if events.num_rows:
        report.pii_findings += int(pc.sum(events.column("pii_count")).as_py() or 0)


def _quarantine_file(
    ws: Workspace, con: Any, state: file_store.FileState, path: Path, head: bytes, reason: str
) -> None:
    """Record a whole-file rejection (wrong --source) without advancing any checkpoint."""
    batch_id = batches.new_batch_id()
    sample = framing.Rejected(
        0, reason, head[: framing.QUARANTINE_SAMPLE_BYTES].decode("utf-8", "backslashreplace"),
        truncated=True,
    )
    outputs = batches.stage_quarantine(ws, batch_id, str(path.resolve()), None, [sample])
    batches.publish(con, ws, batch_id, outputs)


def _open(path: Path, gz: bool) -> IO[bytes]:
    try:
        stream: IO[bytes] = gzip.open(path, "rb") if gz else path.open("rb")  # type: ignore[assignment]
        return stream
    except OSError as exc:
        raise SentinelError(f"{path}: {exc.strerror or exc}") from exc
