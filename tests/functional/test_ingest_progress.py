"""Long work (ingest, scan) shows progress on a terminal, and nothing when stderr is not a
TTY or --quiet is given."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import litellm_line, write_lines


def _ingest(ws: Workspace, log: Path, stderr: int | None, *flags: str) -> str:
    return _sentinel(ws, stderr, *flags, "ingest", str(log))


def _sentinel(ws: Workspace, stderr: int | None, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "--workspace", str(ws.root), *args],
        stdout=subprocess.PIPE, stderr=stderr if stderr is not None else subprocess.PIPE,
        timeout=120, env={**os.environ, "COLUMNS": "100"},
    )
    assert result.returncode in (0, 1)  # a scan exits 1 when it finds a high alert
    return (result.stderr or b"").decode()


def _ingest_on_a_terminal(ws: Workspace, log: Path, *flags: str) -> str:
    return _on_a_terminal(ws, *flags, "ingest", str(log))


def _on_a_terminal(ws: Workspace, *args: str) -> str:
    leader, follower = pty.openpty()
    try:
        _sentinel(ws, follower, *args)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(leader)


def test_progress_bar_on_a_terminal_only(workspace: Workspace, tmp_path: Path) -> None:
    (workspace.config_path).write_text("[ingest]\nbatch_bytes = 50000\n")
    for name in ("a", "b", "c"):
        write_lines(tmp_path / f"{name}.jsonl", [litellm_line(i) for i in range(300)])
    terminal = _ingest_on_a_terminal(workspace, tmp_path / "a.jsonl")
    assert "ingest" in terminal and "━" in terminal
    assert _ingest(workspace, tmp_path / "b.jsonl", None) == ""
    assert "━" not in _ingest_on_a_terminal(workspace, tmp_path / "c.jsonl", "--quiet")


def test_scan_shows_its_rules_on_a_terminal_only(workspace: Workspace, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_lines(tmp_path / f"{name}.jsonl", [litellm_line(i) for i in range(50)])
    _ingest(workspace, tmp_path / "a.jsonl", None)
    terminal = _on_a_terminal(workspace, "scan")
    assert "scan" in terminal and "rules" in terminal and "━" in terminal
    _ingest(workspace, tmp_path / "b.jsonl", None)
    assert "━" not in _sentinel(workspace, None, "scan")
    _ingest(workspace, tmp_path / "c.jsonl", None)
    assert "━" not in _on_a_terminal(workspace, "--quiet", "scan")
