"""`sentinel ingest`: load log files into the lake, exactly once.

`ingest_paths` expands the paths it is given (files, directories, globs) and hands each
file to `reader.ingest_file`, which reads it from its checkpoint and reports what it
did. A file that vanishes, cannot be read, is damaged or is not a log is reported with
a reason and nothing else stops: one bad file never costs the others. Only failures of
sentinel's own side (the case store, the lake's disk) end the run.
"""

from __future__ import annotations

import glob
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel.config import Config
from sentinel.duck import DuckSession
from sentinel.ingest import batches, reader, smallfiles
from sentinel.ingest.progress import NoProgress, Progress
from sentinel.ingest.reader import Context, FileReport, Formats, Reading, RunTotals
from sentinel.ingest.streams import special_kind
from sentinel.runtime import Runtime, as_runtime
from sentinel.sources import LogSource, available_sources, get_source
from sentinel.sources.registry import configured_sources
from sentinel.workspace import Workspace

__all__ = [
    "FileReport", "IngestReport", "Reading", "Tail", "complete_end", "expand_paths",
    "formats_for", "ingest_file", "ingest_files", "ingest_paths", "resolve_formats", "session",
]

# Reasons that mean "not a log file" rather than "a log we failed to read". A JSON file
# of an unrecognised format is a log sentinel could not place: never ignored.
NOT_A_LOG = ("empty file", "binary file", "not JSON", "not a regular file")


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    totals: RunTotals = field(default_factory=RunTotals)
    seconds: float = 0.0

    @property
    def events_by_source(self) -> Counter[str]:
        return self.totals.events_by_source

    @property
    def quarantined(self) -> int:
        return self.totals.quarantined

    @property
    def pii_findings(self) -> int:
        return self.totals.pii_findings

    @property
    def bytes_read(self) -> int:
        return self.totals.bytes_read

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

    @property
    def incomplete(self) -> list[FileReport]:
        """Files read only in part: damaged, truncated or failing mid-read (exit code 1)."""
        return [f for f in self.files if f.incomplete]

    @property
    def held(self) -> list[FileReport]:
        """Files whose incomplete last line waits for its newline (not an error)."""
        return [f for f in self.files if f.held]

    @property
    def failed(self) -> bool:
        return bool(self.skipped or self.incomplete)

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
    return configured_sources(ws.config.sources)


def resolve_formats(
    ws: Workspace, source: str | None, custom: Iterable[LogSource] | None = None
) -> Formats:
    """The sources of a run; `source` forces one (SourceError if there is no such source)."""
    by_name = available_sources(custom_sources(ws) if custom is None else custom)
    forced = get_source(source, by_name.values()) if source else None
    paths = tuple(sorted({p for s in by_name.values() for p in s.envelope_paths}))
    return Formats(by_name, forced, paths)


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
            else:
                kind = _kind(path)
                missing.append(FileReport(str(path), skipped=f"not a regular file ({kind})",
                                          ignored=not explicit))
    result, seen = [], set()
    for path, named in found:
        resolved = path.resolve()
        if resolved in seen or ws.owns(resolved):
            continue
        seen.add(resolved)
        result.append((path, named))
    return result, missing


@contextmanager
def session(
    rt: Runtime, source: str | None = None, advance: Callable[[int], None] | None = None
) -> Iterator[Context]:
    """Everything `reader.ingest_file` needs, for as long as the caller ingests.

    Uses the Runtime's resources (state.db connection, DuckDB session, read buffers,
    PII pool) and one snapshot of its config. Holds the workspace's ingest lock (one
    ingesting process at a time) after finishing or undoing what a crashed run left
    (`batches.recover`). `ingest_paths` opens one per command.
    """
    ws = rt.workspace
    config, custom = rt.config_and_sources()
    formats = resolve_formats(ws, source, custom)
    con = rt.state_db()
    with batches.ingest_lock(ws):
        batches.recover(con, ws)
        yield Context(
            ws, con, rt.ingest_session(), formats, ws.secret_key(), RunTotals(),
            advance or (lambda n: None), config, rt.buffers, rt.pii,
        )


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
    # An unknown --source fails before any file is listed. The Runtime's custom sources:
    # building them again checks every JSON path in a DuckDB of its own (~0.1 s each).
    resolve_formats(ws, source, rt.config_and_sources()[1])
    files, report_missing = expand_paths(ws, [str(p) for p in paths])
    report = IngestReport(files=list(report_missing))
    progress.start(sum(_size(p) for p, _ in files))
    try:
        with session(rt, source, progress.advance) as ctx:
            report.totals = ctx.totals
            # Small files (S3-sync trees) are normalised in groups (`smallfiles`).
            reports = smallfiles.ingest_many(ctx, [path for path, _ in files])
            for (_, named), file_report in zip(files, reports, strict=True):
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


def formats_for(ws: Workspace, source: str | None = None) -> Formats:
    """The log sources to read files with (resolved once, reused for many files)."""
    return resolve_formats(ws, source)


def ingest_file(
    ws: Workspace,
    con: Any,
    duck: DuckSession | Any,
    path: Path,
    formats: Formats,
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
    ctx, reading = _tailing(ws, con, duck, formats, key, tail, runtime, config)
    return reader.ingest_file(ctx, path, reading)


def ingest_files(
    ws: Workspace,
    con: Any,
    duck: DuckSession | Any,
    paths: list[Path],
    formats: Formats,
    key: bytes,
    tail: Tail,
    runtime: Runtime | None = None,
    config: Config | None = None,
) -> list[FileReport]:
    """`ingest_file` for many files at once: small ones are normalised in groups
    (`smallfiles`). One report per path, in order; with `tail.stop`, the files not
    started when it says stop get none."""
    ctx, reading = _tailing(ws, con, duck, formats, key, tail, runtime, config)
    return smallfiles.ingest_many(ctx, paths, reading)


def _tailing(
    ws: Workspace,
    con: Any,
    duck: DuckSession | Any,
    formats: Formats,
    key: bytes,
    tail: Tail,
    runtime: Runtime | None,
    config: Config | None,
) -> tuple[Context, Reading]:
    """The reading context and mode `ingest_file` and `ingest_files` share."""
    session = duck if isinstance(duck, DuckSession) else DuckSession(duck)
    ctx = Context(
        ws, con, session, formats, key, RunTotals(), lambda n: None, config or ws.config,
        runtime.buffers if runtime is not None else None,
        runtime.pii if runtime is not None else None,
    )
    return ctx, Reading("take" if tail.finish else "strict", tail.batch_bytes, tail.stop)


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


def _kind(path: Path) -> str:
    try:
        return special_kind(os.stat(path).st_mode) or "not a regular file"
    except OSError:
        return "unknown"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
