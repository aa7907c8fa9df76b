"""Driving the real `sentinel watch` process in tests: start, wait for effects, stop.

Every wait is bounded and polls what the daemon is meant to produce (the lake, the
case store, its log lines); nothing sleeps for a fixed time hoping work is done.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from sentinel.workspace import Workspace

FAST = """
[daemon]
batch_seconds = 0.2
idle_timeout = 1.0
rescan_interval = 2.0
"""


def configure(ws: Workspace, *watches: str, daemon: str = FAST) -> None:
    """Append `[[watch]]` tables (given as TOML bodies) and daemon settings."""
    text = ws.config_path.read_text()
    for body in watches:
        text += f"\n[[watch]]\n{body}\n"
    ws.config_path.write_text(text + daemon)


def wait_for(check: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: {last!r}")


def lake_ids(ws: Workspace) -> list[str]:
    files = [str(f) for f in ws.lake_dir.rglob("*.parquet")]
    if not files:
        return []
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT event_id FROM read_parquet($f)", {"f": files}).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def lake_count(ws: Workspace) -> int:
    return len(lake_ids(ws))


def quarantined(ws: Workspace) -> list[str]:
    lines: list[str] = []
    for path in sorted(ws.quarantine_dir.glob("*.jsonl")):
        lines.extend(path.read_text().splitlines())
    return lines


def query(ws: Workspace, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    con = sqlite3.connect(ws.state_db, timeout=10)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


class WatchProcess:
    """One `sentinel watch` subprocess; its stderr is collected in a file."""

    def __init__(self, ws: Workspace, log_path: Path, *args: str) -> None:
        self.ws, self.log_path = ws, log_path
        self.log_file = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "--workspace", str(ws.root), "watch", *args],
            stdout=subprocess.PIPE, stderr=self.log_file, env={**os.environ},
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_started(self, timeout: float = 20.0) -> WatchProcess:
        start = len(self.log)
        wait_for(lambda: "daemon.started" in self.log[start:] or self.proc.poll() is not None,
                 timeout, "the daemon to start")
        assert self.proc.poll() is None, self.log
        return self

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        finally:
            self.log_file.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.log_file.close()


@pytest.fixture()
def daemon(workspace: Workspace, tmp_path: Path) -> Iterator[Callable[..., WatchProcess]]:
    """Start daemons on the test workspace; any still running at the end are killed."""
    started: list[WatchProcess] = []

    def start(*args: str) -> WatchProcess:
        process = WatchProcess(workspace, tmp_path / "watch.log", *args)
        started.append(process)
        return process.wait_started()

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.kill()
