"""Worker processes: a column scanned in parts finds exactly what one process finds.

Workers belong to a `ScanPool` (a Runtime's in sentinel); failures pause them for a
cool-down, never for good, and closing the pool stops them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sentinel.config import Config, load_config
from sentinel.exceptions import ConfigError
from sentinel.pii import engine, workers
from sentinel.pii.catalog import default_catalog
from sentinel.pii.pool import ScanPool
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


@pytest.fixture
def pool() -> Iterator[ScanPool]:
    with ScanPool() as scan_pool:
        yield scan_pool


def _find(column: pa.ChunkedArray, pool: ScanPool | None) -> list[tuple]:
    m = engine.find(column, default_catalog(), pool=pool)
    return list(zip(m.rows, m.detectors, m.starts, m.ends, m.values, strict=True))


@pytest.fixture
def parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(workers, "cores", lambda: 3)


def _alone(column: pa.ChunkedArray) -> list[tuple]:
    return _find(column, None)  # no pool: the calling thread only, no worker


def test_parts_find_what_one_process_finds(pool: ScanPool, parallel: None) -> None:
    column = _column()
    expected = _alone(column)
    assert len(expected) > 100
    assert _find(column, pool) == expected
    assert pool.workers.health().running == 2  # both parts went to running workers
    assert len(pool.workers.get(2)) == 2


def test_only_candidate_text_goes_to_workers(
    monkeypatch: pytest.MonkeyPatch, pool: ScanPool
) -> None:
    """The prefilter runs here over the whole column; workers get only the texts it
    left, so a large column of ordinary prompts starts none, and the rows of what a
    worker finds are those of the column."""
    plain = [f"Summarise ticket {i} for the customer, politely." for i in range(3000)]
    middle = _column().to_pylist()
    column = pa.chunked_array([plain, middle, plain], pa.large_string())
    expected = _alone(column)
    assert {e[0] for e in expected} <= set(range(3000, 3000 + len(middle)))
    sent: list[int] = []
    original = workers.Worker.send

    def counted(self: workers.Worker, request: object, part: pa.ChunkedArray) -> None:
        sent.append(len(part))
        original(self, request, part)

    monkeypatch.setattr(workers.Worker, "send", counted)
    monkeypatch.setattr(workers, "cores", lambda: 3)
    monkeypatch.setattr(workers, "PARALLEL_BYTES", column.nbytes // 4)
    assert _find(column, pool) == expected  # few candidates: no worker
    assert sent == [] and pool.workers.health().running == 0
    monkeypatch.setattr(workers, "PARALLEL_BYTES", 0)
    assert _find(column, pool) == expected
    assert len(sent) == 2 and sum(sent) < len(middle)  # parts of the candidates only


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_prefilter_runs_across_chunks_keep_row_numbers(
    monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """The prefilter's runs (one per thread, spanning chunks) report the column's rows."""
    monkeypatch.setattr(engine, "_MIN_SLICE_BYTES", 1)
    column = _column()
    pattern = default_catalog().prefilter
    whole = pc.match_substring_regex(column.combine_chunks(), pattern)
    expected = np.flatnonzero(whole.fill_null(False).to_numpy(zero_copy_only=False))
    with ScanPool(threads=threads) as pool:
        runs = engine._runs(column, threads)
        assert len(runs) == threads
        found = engine._rows_matching(column, pattern, pool.executor(), threads)
        assert found.tolist() == expected.tolist()
        assert _find(column, pool) == _alone(column)


def test_closing_the_pool_stops_its_workers(pool: ScanPool, parallel: None) -> None:
    _find(_column(), pool)
    processes = [w.process for w in pool.workers.get(2)]
    pool.close()
    assert all(p.poll() is not None for p in processes)
    assert pool.health().workers.running == 0 and not pool.health().threads_started


def test_no_pool_no_worker(monkeypatch: pytest.MonkeyPatch, parallel: None) -> None:
    monkeypatch.setattr(workers.Worker, "__init__", lambda *a: pytest.fail("a worker started"))
    assert len(_alone(_column())) > 100


def test_a_dead_worker_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, pool: ScanPool, parallel: None
) -> None:
    column = _column()
    expected = _alone(column)
    for worker in pool.workers.get(2):
        worker.process.kill()
        worker.process.wait()
    assert _find(column, pool) == expected  # dead workers are replaced before use
    helper = pool.workers.get(1)[0]
    original = helper.send

    def send_then_die(request: object, part: pa.Array) -> None:
        original(request, part)
        helper.process.kill()

    monkeypatch.setattr(helper, "send", send_then_die)
    assert _find(column, pool) == expected  # dies mid-part: that part is scanned here
    assert helper not in pool.workers.get(2)


def test_a_failing_part_is_reported(pool: ScanPool) -> None:
    helper = pool.workers.get(1)[0]
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


def test_no_worker_can_start(
    monkeypatch: pytest.MonkeyPatch, pool: ScanPool, parallel: None
) -> None:
    """No usable interpreter: scanned here; starts pause, then are tried again."""
    column = _column()
    expected = _alone(column)
    starts = []

    def cannot_start(self: workers.Worker, entry: str) -> None:
        starts.append(1)
        raise OSError("no such interpreter")

    monkeypatch.setattr(workers.Worker, "__init__", cannot_start)
    clock = [1000.0]
    monkeypatch.setattr(workers.time, "monotonic", lambda: clock[0])
    for _ in range(5):
        assert _find(column, pool) == expected
    assert len(starts) == pool.workers.give_up_after  # then paused: no start per batch
    assert pool.workers.health().paused_for == pool.workers.cooldown
    clock[0] += pool.workers.cooldown + 1  # the cool-down has passed: tried again
    for _ in range(5):
        assert _find(column, pool) == expected
    assert len(starts) == 2 * pool.workers.give_up_after
    assert pool.workers.health().paused_for == 2 * pool.workers.cooldown  # a longer pause
    monkeypatch.undo()  # the interpreter is back
    monkeypatch.setattr(workers, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(workers, "cores", lambda: 3)
    pool.restart()  # e.g. a health check asked for it: no waiting out the pause
    assert _find(column, pool) == expected
    assert pool.workers.health().running == 2 and pool.workers.health().failures == 0


def test_processes_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`[pii] processes = 1` keeps a large batch in this process; bad values name the line."""
    monkeypatch.setattr(workers, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(workers, "cores", lambda: 3)
    started = []
    pool = ScanPool()
    monkeypatch.setattr(pool.workers, "get", lambda n: started.append(n) or [])
    path = tmp_path / "sentinel.toml"
    path.write_text("[pii]\nprocesses = 1\n")
    config = load_config(path)
    assert config.pii.processes == 1
    table = scan_events(event_table(["mail jane@example.org"] * 50), config, KEY, pool)
    assert table.column("pii_count").to_pylist() == [1] * 50
    assert started == []
    scan_events(event_table(["mail jane@example.org"] * 50), Config(), KEY, pool)
    assert started == [2]  # the default: one process per core, this one and two workers
    pool.close()
    path.write_text("[pii]\nscan = true\nprocesses = -2\n")
    with pytest.raises(ConfigError, match=r"sentinel.toml:3:1: 'processes' must be 0"):
        load_config(path)
    path.write_text("[pii]\nprocesses = 1000\n")
    with pytest.raises(ConfigError, match=r"sentinel.toml:2:1: .* to 64, not 1000"):
        load_config(path)
