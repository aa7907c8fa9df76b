"""File events: a target the kernel cannot watch falls back to rescans, with a warning."""

from __future__ import annotations

import errno
import io
import threading
from pathlib import Path
from typing import Any

import pytest
from watchdog.observers import Observer

from sentinel.config import WatchConfig
from sentinel.watch.log import EventLog
from sentinel.watch.observe import Hints, Observers
from sentinel.watch.targets import Target
from sentinel.workspace import Workspace


def test_the_inotify_watch_limit_falls_back_to_rescans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace.init(tmp_path / "ws")
    (tmp_path / "logs").mkdir()
    target = Target.of(WatchConfig(path=str(tmp_path / "logs")), ws)

    def full(*_: Any, **__: Any) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(Observer, "schedule", full)
    out = io.StringIO()
    observers = Observers([target], Hints(threading.Event()), EventLog("text", out))
    try:
        assert observers.unobserved == [target]
        assert "watch.events_unavailable" in out.getvalue()
        assert "max_user_watches" in out.getvalue()
    finally:
        observers.stop()


def test_events_become_hints(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    logs = tmp_path / "logs"
    logs.mkdir()
    target = Target.of(WatchConfig(path=str(logs), poll=True), ws)
    wake = threading.Event()
    hints = Hints(wake)
    observers = Observers([target], hints, EventLog("text", io.StringIO()))
    try:
        (logs / "a.jsonl").write_text("{}\n")
        assert wake.wait(10)
        paths: set[Path] = set()
        for _ in range(50):
            taken, _rescan = hints.take()
            paths |= taken
            if logs / "a.jsonl" in paths:
                break
            wake.clear()
            wake.wait(0.2)
        assert logs / "a.jsonl" in paths
    finally:
        observers.stop()
