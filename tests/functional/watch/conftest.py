"""Fixtures of the watcher's functional tests: daemons to start, a folder to watch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.workspace import Workspace
from tests.functional.watch.watchd import Start, WatchProcess


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
