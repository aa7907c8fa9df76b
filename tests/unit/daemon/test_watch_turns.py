"""Ingest's read passes and the per-event scans take turns; the lookback lane does not.

Their peaks added up (a read pass's batch buffers beside a scan's DuckDB): with turns the
daemon holds one of them at a time. Checked on a daemon running in this process, by
counting the heavy phases in progress, never by timing them.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

from sentinel.runtime import Runtime
from sentinel.watch import daemon as daemon_module
from sentinel.watch.daemon import Daemon
from sentinel.watch.log import EventLog
from sentinel.watch.turns import Turns
from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import configure, exactly, wait_for


def test_a_turn_asked_again_at_once_goes_to_the_one_waiting() -> None:
    turns = Turns()
    order: list[str] = []
    held = threading.Event()
    release = threading.Event()

    def reader() -> None:
        with turns.turn("ingest"):
            held.set()
            release.wait(10)
            order.append("ingest 1")
        with turns.turn("ingest"):  # at once: the scan that waited goes first
            order.append("ingest 2")

    def scan() -> None:
        held.wait(10)
        with turns.turn("per-event scan"):
            order.append("scan")

    threads = [threading.Thread(target=reader), threading.Thread(target=scan)]
    for thread in threads:
        thread.start()
    wait_for(lambda: turns._next == 2, what="the scan queued behind the pass")
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["ingest 1", "scan", "ingest 2"]
    assert turns.holder is None and turns.taken == 3


class Phases:
    """Counts the heavy phases in progress and the most there ever were at once."""

    def __init__(self, turns: Turns) -> None:
        self.turns = turns
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.seen: list[tuple[str, str | None]] = []

    def wrap(self, name: str, heavy: bool, call: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.seen.append((name, self.turns.holder))
                if heavy:
                    self.now += 1
                    self.most = max(self.most, self.now)
            try:
                time.sleep(0.02)  # widen the window in which an overlap would show
                return call(*args, **kwargs)
            finally:
                if heavy:
                    with self.lock:
                        self.now -= 1

        return wrapped


def test_read_passes_and_per_event_scans_never_run_at_once(
    workspace: Workspace, tmp_path: Path, monkeypatch: Any
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    configure(workspace, f'path = "{logs}"',
              daemon="[daemon]\nbatch_bytes = 4096\nbatch_seconds = 0.05\n")
    daemon = Daemon(Runtime(workspace), EventLog("text", io.StringIO()))
    phases = Phases(daemon.turns)
    monkeypatch.setattr(daemon_module, "ingest_file",
                        phases.wrap("ingest", True, daemon_module.ingest_file))
    real_scan = daemon.detector._run_scan

    def scan(ws: Workspace, **kwargs: Any) -> Any:
        lane = "lookback" if kwargs.get("baselines_too") else "per-event"
        return phases.wrap(lane, lane == "per-event", real_scan)(ws, **kwargs)

    daemon.detector._run_scan = scan
    takers: list[str] = []
    real_turn = daemon.turns.turn

    def turn(who: str) -> Any:
        takers.append(who)
        return real_turn(who)

    monkeypatch.setattr(daemon.turns, "turn", turn)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        log = logs / "gw.jsonl"
        with log.open("a") as out:
            for i in range(60):  # many small batches, each poking a per-event scan
                out.write(litellm_line(i) + "\n")
                out.flush()
                if i % 10 == 9:
                    wait_for(exactly(workspace, i + 1), what=f"{i + 1} events")
        wait_for(lambda: {"ingest", "per-event", "lookback"} <= {n for n, _ in phases.seen},
                 what="a read, a per-event scan and a lookback scan")
    finally:
        daemon.request_stop()
        runner.join(30)
    assert phases.most == 1  # never a read pass and a per-event scan at once
    holders = {name: {holder for n, holder in phases.seen if n == name} for name, _ in
               phases.seen}
    assert holders["ingest"] == {"ingest"}
    assert holders["per-event"] == {"per-event scan"}
    assert set(takers) == {"ingest", "per-event scan"}  # the lookback lane takes none
