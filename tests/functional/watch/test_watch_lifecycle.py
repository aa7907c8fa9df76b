"""The daemon's lifecycle: signals, reload, one daemon per workspace, `sentinel status`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import (
    Start,
    append,
    configure,
    lake_count,
    lake_ids,
    query,
    status_json,
    wait_for,
)


def test_sigterm_commits_the_current_batch_and_exits_0(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"',
              daemon="[daemon]\nbatch_bytes = 1048576\nbatch_seconds = 0.1\n")
    append(logs / "big.jsonl", 0, 30_000)  # ~14 MB: batches of 1 MiB
    watch = daemon()
    wait_for(lambda: lake_count(workspace) > 0, what="a first batch")
    stopped_at = time.monotonic()
    assert watch.stop(timeout=10) == 0
    assert time.monotonic() - stopped_at < 5
    read = lake_count(workspace)
    assert 0 < read < 30_000, "the backlog should have been interrupted"
    offset = query(workspace, "SELECT offset FROM files")[0][0]
    assert offset == sum(len(litellm_line(i)) + 1 for i in range(read))
    assert "daemon.stopped" in watch.log
    daemon()  # a restart goes on from the checkpoint
    wait_for(lambda: lake_count(workspace) == 30_000, timeout=90, what="the rest")
    ids = lake_ids(workspace)
    assert len(set(ids)) == 30_000


def test_sigint_stops_cleanly(workspace: Workspace, daemon: Start, tmp_path: Path) -> None:
    configure(workspace, f'path = "{tmp_path}/*.jsonl"')
    watch = daemon()
    watch.signal(signal.SIGINT)
    assert watch.proc.wait(10) == 0


def test_sighup_reloads_and_keeps_the_old_config_when_the_new_is_invalid(
    workspace: Workspace, daemon: Start, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    configure(workspace, f'path = "{first}"')
    original = workspace.config_path.read_text()
    watch = daemon()
    append(second / "x.jsonl", 0, 5)
    append(first / "x.jsonl", 100, 5)
    wait_for(lambda: lake_count(workspace) == 5, what="the first directory only")
    workspace.config_path.write_text(original + f'\n[[watch]]\npath = "{second}"\n')
    watch.signal(signal.SIGHUP)
    wait_for(lambda: lake_count(workspace) == 10, what="the directory added by the reload")
    assert "config.reloaded" in watch.log
    workspace.config_path.write_text(original + "\n[[watch]]\npaht = 'typo'\n")
    watch.signal(signal.SIGHUP)
    wait_for(lambda: "config.invalid" in watch.log, what="the rejected config in the log")
    assert "did you mean 'path'" in watch.log
    append(second / "x.jsonl", 5, 3)  # the old (reloaded) config is still in force
    wait_for(lambda: lake_count(workspace) == 13, what="reading to go on")
    assert watch.stop() == 0


def test_a_second_daemon_refuses_and_a_killed_one_does_not_block(
    workspace: Workspace, daemon: Start, tmp_path: Path
) -> None:
    configure(workspace, f'path = "{tmp_path}/*.jsonl"')
    first = daemon()
    second = subprocess.run(
        [sys.executable, "-m", "sentinel", "--workspace", str(workspace.root), "watch"],
        capture_output=True, text=True, timeout=60,
    )
    assert second.returncode == 3
    assert f"already running on workspace {workspace.root}" in second.stderr
    assert f"pid {first.proc.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    first.kill()  # SIGKILL: the lock file stays, the kernel drops the lock
    assert (workspace.root / "daemon.lock").exists()
    restarted = daemon()
    assert restarted.stop() == 0


def test_status_shows_the_daemon_and_the_lag_of_each_file(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    code, report = status_json(workspace)
    assert code == 1 and report["running"] is False and report["files"] == []
    append(logs / "a.jsonl", 0, 20)
    watch = daemon()
    wait_for(lambda: lake_count(workspace) == 20, what="the file")
    code, report = status_json(workspace)
    assert code == 0 and report["running"] is True and report["pid"] == watch.proc.pid
    (entry,) = report["files"]  # type: ignore[misc]
    size = (logs / "a.jsonl").stat().st_size
    assert entry["size"] == entry["offset"] == size and entry["lag"] == 0
    assert entry["source"] == "litellm" and entry["state"] == "done" and entry["last_batch_at"]
    text = subprocess.run(
        [sys.executable, "-m", "sentinel", "--workspace", str(workspace.root), "status"],
        capture_output=True, text=True, timeout=60,
    ).stdout
    assert f"daemon: running (pid {watch.proc.pid})" in text and "a.jsonl" in text
    assert watch.stop() == 0
    append(logs / "a.jsonl", 20, 10)  # appended while stopped: the lag shows it
    code, report = status_json(workspace)
    assert code == 1 and report["running"] is False and report["since"]
    assert report["lag"] == (logs / "a.jsonl").stat().st_size - size
