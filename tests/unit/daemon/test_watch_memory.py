"""The daemon's memory bounds: DuckDB limits from `[daemon]`, glibc malloc tuned and trimmed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sentinel import duck
from sentinel.config import DaemonConfig, load_config
from sentinel.exceptions import ConfigError
from sentinel.scan.runner import DuckLimits, connect
from sentinel.watch import memory
from sentinel.workspace import Workspace


def setting(con: object, name: str) -> str:
    return str(con.execute("SELECT current_setting(?)", [name]).fetchone()[0])  # type: ignore[attr-defined]


def test_the_ingest_duckdb_is_bounded_by_the_daemon_settings() -> None:
    con = duck.connect()
    try:
        memory.bound_duckdb(con, DaemonConfig(duckdb_memory_mb=96, duckdb_threads=1))
        assert setting(con, "memory_limit") in ("96.0 MiB", "91.5 MiB", "96.0 MB")
        assert setting(con, "threads") == "1"
    finally:
        con.close()


def test_a_scan_duckdb_takes_its_lane_limits(workspace: Workspace) -> None:
    con = connect(workspace, DuckLimits(memory_mb=64, threads=1))
    try:
        assert setting(con, "threads") == "1"
        assert "64" in setting(con, "memory_limit") or "61" in setting(con, "memory_limit")
        with pytest.raises(Exception, match="configuration"):  # locked: a rule cannot lift it
            con.execute("SET memory_limit = '8GB'")
    finally:
        con.close()


def test_duckdb_settings_are_checked_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "sentinel.toml"
    path.write_text("[daemon]\nduckdb_memory_mb = 128\nduckdb_threads = 0\n")
    daemon = load_config(path).daemon
    assert (daemon.duckdb_memory_mb, daemon.duckdb_threads) == (128, 0)
    path.write_text("[daemon]\nduckdb_memory_mb = 0\n")
    with pytest.raises(ConfigError, match="duckdb_memory_mb"):
        load_config(path)
    path.write_text("[daemon]\nduckdb_threads = -1\n")
    with pytest.raises(ConfigError, match="duckdb_threads"):
        load_config(path)


@pytest.mark.skipif(memory._LIBC is None, reason="needs glibc's mallopt")
def test_freed_batch_buffers_go_back_to_the_system() -> None:
    """Threads that allocate and free 16 MiB buffers, as batches do: with the tuning, the
    process's RSS after they are freed is close to where it started."""
    script = textwrap.dedent("""
        import sys, threading
        from sentinel.watch import memory
        if sys.argv[1] == "tuned":
            assert memory.tune_malloc()
        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) // 1024
        base = rss()
        def work():
            for _ in range(20):
                # many small objects and one large buffer per "batch", freed together
                held = [bytearray(b"x" * 200_000) for _ in range(40)]
                big = bytearray(16 * 1024 * 1024)
                big[::4096] = b"y" * len(big[::4096])
                del held, big
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        if sys.argv[1] == "tuned":
            memory.trim()
        print(rss() - base)
    """)

    def grown(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True,
                             text=True, check=True, timeout=120)
        return int(out.stdout.strip())

    # Untuned, 8 threads keep 120-190 MB of freed arenas; tuned, 8 MB when the machine is
    # quiet and 16 MB seen at load 7 (threads interleave their allocations differently):
    # the bound sits between the two, well below the untuned figure.
    assert grown("tuned") < 48
