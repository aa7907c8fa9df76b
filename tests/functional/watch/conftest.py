"""Fixtures of the watcher's functional tests: daemons to start, a folder to watch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.workspace import Workspace
from tests.functional.watch.watchd import (
    Start,
    Tail,
    Tailing,
    WatchProcess,
    append,
    configure,
    exactly,
    wait_for,
)


@pytest.fixture()
def daemon(workspace: Workspace, tmp_path: Path) -> Iterator[Start]:
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


@pytest.fixture()
def logs(tmp_path: Path) -> Path:
    """An empty folder for the test's log files (watched once the test configures it)."""
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder


@pytest.fixture()
def tailing(workspace: Workspace, daemon: Start, logs: Path) -> Tail:
    """`tailing(count)`: the first steps of most file-semantics tests, in one call.

    Watches `logs` (or the `[[watch]]` table body `watch`), writes `count` numbered
    lines into `logs/<name>`, starts a daemon and waits until the lake holds exactly
    those lines; returns the log and the daemon."""

    def start(count: int, *, watch: str | None = None, name: str = "gw.jsonl") -> Tailing:
        configure(workspace, watch or f'path = "{logs}"')
        log = logs / name
        if count:
            append(log, 0, count)
        process = daemon()
        wait_for(exactly(workspace, count), what=f"the first {count} lines")
        return Tailing(log, process)

    return start
