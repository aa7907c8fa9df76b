"""One Runtime, 1,000 ingest + query cycles: memory, threads and descriptors stay flat.

What a watcher daemon does all day, compressed: a record is appended to a log, ingest
picks it up (state.db, DuckDB session, read buffers, PII scan), and a query reads the
batch back through a connection from the Runtime's factory. Resources are sampled after
a warm-up and at the end; anything that grows per cycle (a connection, a thread, a pipe,
a cached relation per run) shows up a thousand times over.

A small custom source keeps a cycle cheap; the cost that remains is DuckDB planning the
normalisation query and the fsyncs of each exactly-once commit.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from sentinel.ingest.engine import ingest_paths
from sentinel.runtime import Runtime
from sentinel.workspace import Workspace

CYCLES = int(os.environ.get("SENTINEL_SOAK_CYCLES", "1000"))
WARM_UP = min(100, CYCLES // 5)

CONFIG = """
[sources.soak]
match = "$.soak_id"
[sources.soak.fields]
ts = "$.t"
event_id = "$.soak_id"
actor_user = "$.user"
prompt_text = "$.prompt"
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc"),
]


def sample() -> dict[str, int]:
    status = Path("/proc/self/status").read_text()
    rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
    return {
        "rss_mb": rss_kb // 1024,
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),  # native threads too (DuckDB, Arrow)
        "python_threads": threading.active_count(),
    }


def record(i: int) -> str:
    prompt = f"ticket {i}: card 4111 1111 1111 1111" if i % 2 else f"ticket {i}: all good"
    return json.dumps({"soak_id": f"s{i}", "t": 1737710446 + i, "user": "u1", "prompt": prompt})


def test_a_thousand_cycles_in_one_runtime_stay_flat(workspace: Workspace, tmp_path: Path) -> None:
    workspace.config_path.write_text(CONFIG)
    log = tmp_path / "gateway.jsonl"
    samples: dict[int, dict[str, int]] = {}
    with Runtime(workspace) as rt:
        query = rt.duckdb()
        try:
            for i in range(CYCLES):
                with log.open("a") as handle:
                    handle.write(record(i) + "\n")
                report = ingest_paths(rt, [log])
                assert report.events == 1 and not report.skipped, report.as_dict()
                (outputs,) = rt.state_db().execute(
                    "SELECT outputs FROM batches ORDER BY rowid DESC LIMIT 1"
                ).fetchone()
                parquet = workspace.root / json.loads(outputs)[0][1]
                row = query.execute(
                    "SELECT event_id, pii_count FROM read_parquet(?)", [str(parquet)]
                ).fetchone()
                assert row == (f"s{i}", i % 2), (i, row)
                if i + 1 in (WARM_UP, CYCLES):
                    samples[i + 1] = sample()
            health = rt.health()
        finally:
            query.close()
    first, last = samples[WARM_UP], samples[CYCLES]
    assert last["fds"] <= first["fds"], samples
    assert last["threads"] <= first["threads"], samples
    assert last["python_threads"] <= first["python_threads"], samples
    assert last["rss_mb"] - first["rss_mb"] < 40, samples
    # One ingest session and one state.db connection (this thread's), whatever the cycles;
    # the bound queries are the source's two (plain and validating) at most.
    assert health.ingest_sessions == 1 and health.state_connections == 1, health
    assert health.bound_queries <= 2, health
    assert health.config_ok
