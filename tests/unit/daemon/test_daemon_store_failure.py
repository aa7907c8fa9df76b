"""A failing store pauses reading; checkpoints never run ahead of committed data.

The write error is injected into the lake writer of a daemon running in this process
(the functional test with a real full disk needs a tmpfs mount, which CI may not allow).
"""

from __future__ import annotations

import errno
import io
import threading
from pathlib import Path
from typing import Any

import pytest

from sentinel.ingest import reader
from sentinel.runtime import Runtime
from sentinel.watch.daemon import Daemon
from sentinel.watch.log import EventLog
from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import configure, lake_ids, query, wait_for


def test_a_full_disk_pauses_reading_and_loses_nothing(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    configure(workspace, f'path = "{logs}"',
              daemon="[daemon]\nbatch_bytes = 16384\nbatch_seconds = 0.1\n")
    log = logs / "gw.jsonl"
    log.write_text("".join(litellm_line(i) + "\n" for i in range(400)))
    real_write = reader.write_staging
    calls = {"n": 0}
    disk_full = threading.Event()
    disk_full.set()

    def flaky_write(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 3 and disk_full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(reader, "write_staging", flaky_write)
    out = io.StringIO()
    rt = Runtime(workspace)
    daemon = Daemon(rt, EventLog("text", out))
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_for(lambda: "store.paused" in out.getvalue(), what="the pause")
        committed = lake_ids(workspace)
        assert 0 < len(committed) < 400
        # The checkpoint is exactly the end of the last committed event, never ahead.
        offset = query(workspace, "SELECT offset FROM files")[0][0]
        assert offset == sum(len(litellm_line(i)) + 1 for i in range(len(committed)))
        assert offset == query(workspace, "SELECT max(end_offset) FROM batches")[0][0]
        disk_full.clear()  # space is freed: reading resumes by itself
        wait_for(lambda: len(lake_ids(workspace)) == 400, what="the rest after the pause")
        assert "store.resumed" in out.getvalue()
        assert sorted(lake_ids(workspace)) == sorted(f"chatcmpl-{i:08d}" for i in range(400))
    finally:
        daemon.request_stop()
        runner.join(20)
        rt.close()
    assert not runner.is_alive()
