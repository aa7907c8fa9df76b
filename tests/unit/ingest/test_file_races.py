"""A file that vanishes, shrinks or becomes unreadable between listing and reading, or
while it is being read, is reported and skipped; the rest of the run goes on and no
record is loaded twice (issue 8, item 4).

Tests run as root in CI, where chmod 000 does not stop a read: the failures are injected
at the point where the operating system would raise them.
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentinel.ingest import batches, engine, reader, streams
from sentinel.workspace import Workspace
from tests.conftest import litellm_line, write_lines
from tests.functional.test_ingest_exactly_once import lake_count, lake_event_ids


@pytest.fixture()
def small_batches(workspace: Workspace) -> Workspace:
    workspace.config_path.write_text("[ingest]\nbatch_bytes = 20000\n")
    return workspace


def _logs(tmp_path: Path) -> tuple[Path, Path]:
    first = write_lines(tmp_path / "a.jsonl", [litellm_line(i) for i in range(300)])
    second = write_lines(tmp_path / "b.jsonl", [litellm_line(i) for i in range(1000, 1010)])
    return first, second


def _after_listing(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]
) -> None:
    listing = engine.expand_paths

    def expand(*args: Any, **kwargs: Any) -> Any:
        found = listing(*args, **kwargs)
        action()
        return found

    monkeypatch.setattr(engine, "expand_paths", expand)


def _on_first_commit(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    commit = batches.commit
    calls = {"n": 0}

    def wrapped(*args: Any, **kwargs: Any) -> None:
        commit(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            action()

    monkeypatch.setattr(batches, "commit", wrapped)


def _by_name(report: engine.IngestReport) -> dict[str, Any]:
    return {Path(f.path).name: f for f in report.files}


def test_vanished_between_listing_and_reading(
    small_batches: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _logs(tmp_path)
    _after_listing(monkeypatch, first.unlink)
    report = engine.ingest_paths(small_batches, [tmp_path])
    files = _by_name(report)
    assert files["a.jsonl"].skipped == "vanished before it could be read"
    assert files["b.jsonl"].events == 10
    assert report.failed


def test_replaced_by_a_directory_between_listing_and_reading(
    small_batches: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _logs(tmp_path)

    def replace() -> None:
        first.unlink()
        first.mkdir()

    _after_listing(monkeypatch, replace)
    report = engine.ingest_paths(small_batches, [first, tmp_path / "b.jsonl"])
    files = _by_name(report)
    assert files["a.jsonl"].skipped == "not a regular file (a directory)"
    assert files["b.jsonl"].events == 10


def test_deleted_while_being_read_is_read_to_its_end(
    small_batches: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _logs(tmp_path)
    _on_first_commit(monkeypatch, first.unlink)
    report = engine.ingest_paths(small_batches, [tmp_path])
    files = _by_name(report)
    assert files["a.jsonl"].events == 300 and files["a.jsonl"].incomplete is None
    assert files["b.jsonl"].events == 10
    assert lake_count(small_batches) == 310


def test_truncated_while_being_read(
    small_batches: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _logs(tmp_path)
    _on_first_commit(monkeypatch, lambda: os.truncate(first, 0))
    report = engine.ingest_paths(small_batches, [tmp_path])
    files = _by_name(report)
    assert "truncated while being read" in str(files["a.jsonl"].incomplete)
    assert 0 < files["a.jsonl"].events < 300
    assert files["b.jsonl"].events == 10
    assert report.failed
    ids = lake_event_ids(small_batches)
    assert len(ids) == len(set(ids))


def test_shrunk_between_runs_is_a_new_file(small_batches: Workspace, tmp_path: Path) -> None:
    """copytruncate: the file is truncated below its checkpoint and written again."""
    first, _ = _logs(tmp_path)
    engine.ingest_paths(small_batches, [first])
    write_lines(first, [litellm_line(i) for i in range(500, 505)])
    report = engine.ingest_paths(small_batches, [first])
    assert report.events == 5 and not report.failed
    assert lake_count(small_batches) == 305


def test_permission_denied_at_open(
    small_batches: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _logs(tmp_path)
    real_open = os.open

    def guarded(path: Any, flags: int, *args: Any) -> int:
        if Path(path) == first:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(streams.os, "open", guarded)
    report = engine.ingest_paths(small_batches, [tmp_path])
    files = _by_name(report)
    assert files["a.jsonl"].skipped == "permission denied"
    assert files["b.jsonl"].events == 10


class _FailingRead(io.RawIOBase):
    """A file stream whose reads fail with EIO once `budget` bytes have been read."""

    def __init__(self, inner: io.FileIO, budget: int) -> None:
        super().__init__()
        self.inner, self.budget = inner, budget

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def fileno(self) -> int:
        return self.inner.fileno()

    def readinto(self, buffer: Any) -> int:
        if self.budget <= 0:
            raise OSError(errno.EIO, "Input/output error")
        view = memoryview(buffer)[: self.budget]
        count = self.inner.readinto(view)
        self.budget -= count or 0
        return count or 0

    def close(self) -> None:
        self.inner.close()
        super().close()


def test_io_error_mid_read_then_recovery(
    small_batches: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _logs(tmp_path)
    read_lines = reader.framing.read_lines

    def failing(stream: Any, start: int, *args: Any, **kwargs: Any) -> Any:
        if start == 0 and Path(os.readlink(f"/proc/self/fd/{stream.fileno()}")) == first:
            stream = _FailingRead(stream, 50_000)
        return read_lines(stream, start, *args, **kwargs)

    monkeypatch.setattr(reader.framing, "read_lines", failing)
    report = engine.ingest_paths(small_batches, [tmp_path])
    files = _by_name(report)
    assert files["a.jsonl"].incomplete == "read failed: input/output error"
    assert 0 < files["a.jsonl"].events < 300
    assert files["b.jsonl"].events == 10
    monkeypatch.undo()
    # The disk is fine again: the rest loads from the checkpoint, nothing twice.
    again = engine.ingest_paths(small_batches, [first])
    assert not again.failed
    ids = lake_event_ids(small_batches)
    assert len(ids) == len(set(ids)) == 310


def test_a_full_disk_on_our_side_stops_the_run(
    small_batches: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workspace's disk failing is not a problem of one source file: no "skipped",
    the run stops with a StoreError (exit 3), and the checkpoint did not move."""
    from sentinel.exceptions import StoreError

    first, _ = _logs(tmp_path)

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(reader, "write_staging", full)
    with pytest.raises(StoreError, match="No space left on device"):
        engine.ingest_paths(small_batches, [first])
    monkeypatch.undo()
    engine.ingest_paths(small_batches, [tmp_path])
    assert sorted(lake_event_ids(small_batches)) == sorted(
        [f"chatcmpl-{i:08d}" for i in (*range(300), *range(1000, 1010))]
    )
