"""Driving the real `sentinel watch` process in tests: start, write, wait for effects, stop.

The watcher's functional tests share these helpers (and the `daemon` and `logs`
fixtures of this folder's conftest), so each test file says only what it tests. Every
wait is bounded and polls what the daemon is meant to produce (the lake, the case
store, its log lines); nothing sleeps for a fixed time hoping work is done.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import duckdb

from sentinel.workspace import Workspace
from tests.conftest import litellm_line

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


def lines(first: int, count: int) -> str:
    """LiteLLM lines numbered `first`, … (event ids `chatcmpl-0000000N`), newline-ended."""
    return "".join(litellm_line(i) + "\n" for i in range(first, first + count))


def append(path: Path, first: int, count: int, tail: str = "") -> None:
    """Append numbered lines (and `tail`, e.g. a partial line) to `path`."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(lines(first, count) + tail)


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


def exactly(ws: Workspace, count: int) -> Callable[[], bool]:
    """A `wait_for` check: the lake holds `count` events, and never a duplicate."""

    def check() -> bool:
        ids = lake_ids(ws)
        assert len(ids) == len(set(ids)), "duplicate events in the lake"
        return len(ids) == count

    return check


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


def status(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    """`sentinel status` on the workspace."""
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "--workspace", str(ws.root), "status", *args],
        capture_output=True, text=True, timeout=60,
    )


def status_json(ws: Workspace) -> tuple[int, dict[str, object]]:
    """`sentinel status --format json`: its exit code and report."""
    result = status(ws, "--format", "json")
    return result.returncode, json.loads(result.stdout)


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


Start = Callable[..., WatchProcess]
"""The `daemon` fixture: starts a daemon (extra CLI arguments) and waits for it."""


class Tailing(NamedTuple):
    """What the `tailing` fixture started: the log it writes and the daemon reading it."""

    log: Path
    watch: WatchProcess


Tail = Callable[..., Tailing]
"""The `tailing` fixture: watch the logs folder, write lines, start a daemon, wait."""
