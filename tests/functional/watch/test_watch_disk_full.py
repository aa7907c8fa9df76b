"""A real full disk: the workspace on a small tmpfs (skipped where mounting is not allowed)."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import WatchProcess, configure, lake_ids, query, wait_for


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_pauses_then_resumes_without_loss(
    small_disk: Path, tmp_path: Path, logs: Path
) -> None:
    ws = Workspace.init(small_disk / "ws")
    configure(ws, f'path = "{logs}"',
              daemon="[daemon]\nbatch_bytes = 262144\nbatch_seconds = 0.1\n")
    total = 3000  # ~9 MB of incompressible prompts for a 3 MB disk
    (logs / "gw.jsonl").write_text("".join(
        litellm_line(i, prompt=secrets.token_hex(1400)) + "\n" for i in range(total)
    ))
    watch = WatchProcess(ws, tmp_path / "watch.log").wait_started()
    try:
        wait_for(lambda: "store.paused" in watch.log, timeout=60, what="the disk to fill")
        committed = len(lake_ids(ws))
        assert committed < total
        offset = query(ws, "SELECT coalesce(max(offset), 0) FROM files")[0][0]
        assert offset == sum(
            len(litellm_line(i, prompt="x" * 2800)) + 1 for i in range(committed)
        )
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        wait_for(lambda: len(lake_ids(ws)) == total, timeout=90, what="every event")
        assert len(set(lake_ids(ws))) == total
        assert "store.resumed" in watch.log
    finally:
        if watch.proc.poll() is None:
            watch.kill()
