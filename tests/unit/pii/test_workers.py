"""Worker processes: a column scanned in parts finds exactly what one process finds."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from sentinel.config import Config, load_config
from sentinel.exceptions import ConfigError
from sentinel.pii import engine, workers
from sentinel.pii.catalog import default_catalog
from sentinel.pii.scanner import scan_events
from tests.unit.pii.conftest import KEY, event_table
from tests.unit.pii.test_engine import TEXTS


def _column() -> pa.ChunkedArray:
    """Several chunks, one of them a slice (a non-zero offset), nulls and non-ASCII text."""
    texts = [f"{t} #{i}" if t is not None else None for i, t in enumerate(TEXTS * 40)]
    whole = pa.array(["padding"] * 3 + texts, pa.large_string()).slice(3)
    return pa.chunked_array(
        [whole.slice(0, 300), whole.slice(300), pa.array(TEXTS, pa.large_string())]
    )


def _find(column: pa.ChunkedArray) -> list[tuple]:
    m = engine.find(column, default_catalog())
    return list(zip(m.rows, m.detectors, m.starts, m.ends, m.values, strict=True))


@pytest.fixture
def parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(workers, "cores", lambda: 3)


def _alone(monkeypatch: pytest.MonkeyPatch, column: pa.ChunkedArray) -> list[tuple]:
    with monkeypatch.context() as m:
        m.setattr(workers, "PARALLEL_BYTES", 1 << 60)
        return _find(column)


def test_parts_find_what_one_process_finds(monkeypatch: pytest.MonkeyPatch, parallel: None) -> None:
    column = _column()
    expected = _alone(monkeypatch, column)
    assert len(expected) > 100
    assert _find(column) == expected
    assert len(workers.workers(2)) == 2  # both parts went to running workers


def test_a_dead_worker_changes_nothing(monkeypatch: pytest.MonkeyPatch, parallel: None) -> None:
    column = _column()
    expected = _alone(monkeypatch, column)
    for worker in workers.workers(2):
        worker.process.kill()
        worker.process.wait()
    assert _find(column) == expected  # dead workers are replaced before use
    helper = workers.workers(1)[0]
    original = helper.send

    def send_then_die(request: object, part: pa.Array) -> None:
        original(request, part)
        helper.process.kill()

    monkeypatch.setattr(helper, "send", send_then_die)
    assert _find(column) == expected  # dies mid-part: that part is scanned here
    assert helper not in workers.workers(2)


def test_a_failing_part_is_reported() -> None:
    helper = workers.workers(1)[0]
    helper.send(("not a detector",), pa.chunked_array([["text"]], pa.large_string()))
    with pytest.raises(workers.WorkerError, match="AttributeError|TypeError"):
        helper.receive()
    # the worker is still usable afterwards
    mail = pa.chunked_array([["x"] * 5, ["mail jane@example.org"]], pa.large_string())
    helper.send(default_catalog().detectors, mail.slice(5))
    found = helper.receive()
    assert found.values == ["jane@example.org"]


def test_split_keeps_every_row_once() -> None:
    column = _column()
    parts = workers.split(column, 3)
    assert [first for first, _ in parts] == sorted(first for first, _ in parts)
    rows = [row for _, part in parts for row in part.to_pylist()]
    assert rows == column.to_pylist()
    sizes = [part.nbytes for _, part in parts]
    assert max(sizes) < 2 * min(sizes)


def test_no_worker_can_start(monkeypatch: pytest.MonkeyPatch, parallel: None) -> None:
    """No usable interpreter: the column is scanned here, and no start is tried again."""
    column = _column()
    expected = _alone(monkeypatch, column)
    workers._stop_all()
    starts = []

    def cannot_start(self: workers.Worker) -> None:
        starts.append(1)
        raise OSError("no such interpreter")

    monkeypatch.setattr(workers.Worker, "__init__", cannot_start)
    monkeypatch.setattr(workers, "_failures", 0)
    for _ in range(5):
        assert _find(column) == expected
    assert len(starts) == workers._GIVE_UP_AFTER


def test_processes_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`[pii] processes = 1` keeps a large batch in this process; bad values name the line."""
    monkeypatch.setattr(workers, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(workers, "cores", lambda: 3)
    started = []
    monkeypatch.setattr(workers, "workers", lambda n: started.append(n) or [])
    path = tmp_path / "sentinel.toml"
    path.write_text("[pii]\nprocesses = 1\n")
    config = load_config(path)
    assert config.pii.processes == 1
    table = scan_events(event_table(["mail jane@example.org"] * 50), config, KEY)
    assert table.column("pii_count").to_pylist() == [1] * 50
    assert started == []
    scan_events(event_table(["mail jane@example.org"] * 50), Config(), KEY)
    assert started == [2]  # the default: one process per core, this one and two workers
    path.write_text("[pii]\nscan = true\nprocesses = -2\n")
    with pytest.raises(ConfigError, match=r"sentinel.toml:3:1: 'processes' must be 0"):
        load_config(path)
