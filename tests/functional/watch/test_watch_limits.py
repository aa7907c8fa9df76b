"""Bounded resources and first-start behaviour: huge lines, thousands of files, start_at."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import (
    Start,
    append,
    configure,
    lake_ids,
    quarantined,
    wait_for,
)


def readlink(path: str) -> str:
    """Where an fd points, or "" when it was closed since it was listed."""
    try:
        return os.readlink(path)
    except FileNotFoundError:
        return ""


def memory_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_start_at_end_skips_existing_files_on_the_first_start_only(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"\nstart_at = "end"')
    append(logs / "old.jsonl", 0, 50)
    watch = daemon()
    wait_for(lambda: "watch.start_at_end" in watch.log, what="the skip to the end")
    append(logs / "old.jsonl", 50, 5)
    wait_for(lambda: len(lake_ids(workspace)) == 5, what="only the appended lines")
    assert watch.stop() == 0
    append(logs / "new.jsonl", 100, 7)  # created while stopped: not "existing at first start"
    daemon()
    wait_for(lambda: len(lake_ids(workspace)) == 12, what="the new file from its start")
    assert min(lake_ids(workspace)) == "chatcmpl-00000050"


def test_a_huge_line_is_quarantined_without_being_held_in_memory(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    template = workspace.config_path.read_text()
    workspace.config_path.write_text(
        template.replace("# max_line_bytes = 8388608", "max_line_bytes = 1048576")
    )
    configure(workspace, f'path = "{logs}"',
              daemon="[daemon]\nbatch_bytes = 1048576\nbatch_seconds = 0.2\nidle_timeout = 1\n")
    log = logs / "gw.jsonl"
    append(log, 0, 3)
    watch = daemon()
    wait_for(lambda: len(lake_ids(workspace)) == 3, what="the first lines")
    baseline = memory_peak_kb(watch.proc.pid)
    with log.open("a", encoding="utf-8") as handle:  # 96 MB on one line, written in pieces
        handle.write('{"id": "huge", "messages": "')
        for _ in range(96):
            handle.write("A" * (1024 * 1024))
        handle.write('"}\n')
    append(log, 3, 2)
    wait_for(lambda: len(lake_ids(workspace)) == 5, timeout=60, what="the lines after it")
    # Caught while still being written, the line may be rejected in more than one piece.
    entries = [json.loads(line) for line in quarantined(workspace)]
    assert entries and all(
        "exceeds max_line_bytes" in e["reason"] and e.get("raw_truncated") for e in entries
    )
    assert all(len(e["raw"]) <= 64 * 1024 for e in entries)
    grown_mb = (memory_peak_kb(watch.proc.pid) - baseline) / 1024
    assert grown_mb < 64, f"peak memory grew by {grown_mb:.0f} MB for a 96 MB line"


def test_thousands_of_files_keep_open_files_bounded(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"',
              daemon="[daemon]\nmax_open_files = 32\nbatch_seconds = 0.1\nidle_timeout = 1\n")
    for n in range(2000):
        (logs / f"f{n:05d}.jsonl").write_text(litellm_line(n) + "\n")
    watch = daemon()
    pid = watch.proc.pid
    baseline = len(os.listdir(f"/proc/{pid}/fd"))
    most = 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and watch.proc.poll() is None:
        open_logs = [target for fd in os.listdir(f"/proc/{pid}/fd")
                     if (target := readlink(f"/proc/{pid}/fd/{fd}"))]
        most = max(most, sum(1 for target in open_logs if target.startswith(str(logs))))
        time.sleep(0.1)
    assert len(lake_ids(workspace)) > 0, "the daemon should be reading the files"
    assert 0 < most <= 32 + 2, f"{most} watched files open at once (budget 32)"
    assert len(os.listdir(f"/proc/{pid}/fd")) < baseline + 40
