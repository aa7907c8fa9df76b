"""The Runtime: a reloadable config that never goes bad, per-thread connections, close."""

from __future__ import annotations

import logging
import os
import threading

import pytest

from sentinel.exceptions import ConfigError, SentinelError, WorkspaceError
from sentinel.runtime import Runtime
from sentinel.workspace import Workspace


def edit(ws: Workspace, text: str) -> None:
    ws.config_path.write_text(text)
    # Same-size edits within one mtime tick must still be seen: bump the mtime.
    stat = ws.config_path.stat()
    os.utime(ws.config_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_an_edited_config_is_seen_without_reopening(workspace: Workspace) -> None:
    with Runtime(workspace) as rt:
        assert rt.config.ingest.batch_bytes == 64 * 1024 * 1024
        assert workspace.config.ingest.batch_bytes == 64 * 1024 * 1024
        edit(workspace, "[ingest]\nbatch_bytes = 1000\n")
        assert rt.config.ingest.batch_bytes == 1000
        assert workspace.config.ingest.batch_bytes == 1000  # Workspace.config is no cache


def test_an_invalid_edit_keeps_the_old_config_and_is_reported_once(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    edit(workspace, "[ingest]\nbatch_bytes = 1000\n")
    with Runtime(workspace) as rt, caplog.at_level(logging.WARNING, logger="sentinel"):
        edit(workspace, "[ingest]\nbatch_bytse = 5\n")
        for _ in range(3):
            assert rt.config.ingest.batch_bytes == 1000
        assert rt.config_error is not None and "did you mean 'batch_bytes'" in str(
            rt.config_error
        )
        assert not rt.health().config_ok
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "keeping the previous configuration" in warnings[0].message
        with pytest.raises(ConfigError):
            rt.reload_config()
        edit(workspace, "[ingest]\nbatch_bytes = 2000\n")
        assert rt.config.ingest.batch_bytes == 2000 and rt.config_error is None


def test_a_config_valid_as_toml_but_not_as_a_detector_is_rejected(workspace: Workspace) -> None:
    with Runtime(workspace) as rt:
        edit(workspace, '[[pii.detectors]]\nname = "emp"\npattern = "(?<=x)EMP"\n')
        assert rt.config.pii.detectors == ()  # look-behind: not RE2, the old config stays
        assert rt.config_error is not None and "RE2" in str(rt.config_error)


def test_an_invalid_config_at_open_is_an_error(workspace: Workspace) -> None:
    edit(workspace, "[ingest\n")
    with pytest.raises(ConfigError):
        Runtime(workspace)


def test_open_needs_a_workspace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WorkspaceError):
        Runtime.open(tmp_path / "nothing")


def test_state_connections_are_per_thread_and_freed_with_their_thread(
    workspace: Workspace,
) -> None:
    with Runtime(workspace) as rt:
        mine = rt.state_db()
        assert rt.state_db() is mine
        seen = []
        for _ in range(5):
            worker = threading.Thread(target=lambda: seen.append(rt.state_db()))
            worker.start()
            worker.join()
        assert len({id(c) for c in seen}) >= 2 and mine not in seen
        assert rt.health().state_connections == 1  # the ended threads' were closed
    with pytest.raises(SentinelError, match="closed"):
        rt.state_db()


def test_close_stops_everything(workspace: Workspace) -> None:
    rt = Runtime(workspace)
    session = rt.ingest_session()
    rt.state_db()
    rt.pii.executor()
    rt.close()
    rt.close()  # idempotent
    health = rt.health()
    assert health.ingest_sessions == 0 and health.state_connections == 0
    assert not health.pii.threads_started and health.pii.workers.running == 0
    with pytest.raises(Exception):  # noqa: B017 - DuckDB's own "connection closed"
        session.con.execute("SELECT 1")


def test_nothing_is_started_at_import() -> None:
    """Importing the scanner and ingest starts no thread (the pools are the Runtime's)."""
    import subprocess
    import sys

    code = (
        "import threading, sentinel.pii.engine, sentinel.ingest.engine, sentinel.runtime;"
        "print(threading.active_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "1", out.stderr
