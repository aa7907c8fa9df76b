"""Exactly-once ingest through the real CLI: re-ingest, append, and a SIGKILL mid-batch."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sentinel.workspace import Workspace
from tests.conftest import RunCli, litellm_line, write_lines


def lake_count(ws: Workspace, where: str = "true") -> int:
    files = list(ws.lake_dir.rglob("*.parquet"))
    if not files:
        return 0
    con = duckdb.connect()
    query = f"SELECT count(*) FROM read_parquet($files) WHERE {where}"
    return int(con.execute(query, {"files": [str(f) for f in files]}).fetchone()[0])


def lake_event_ids(ws: Workspace) -> list[str]:
    files = [str(f) for f in ws.lake_dir.rglob("*.parquet")]
    con = duckdb.connect()
    rows = con.execute("SELECT event_id FROM read_parquet($f)", {"f": files}).fetchall()
    return [r[0] for r in rows]


def test_reingest_adds_nothing(workspace: Workspace, run_cli: RunCli, tmp_path: Path) -> None:
    log = write_lines(tmp_path / "gw.jsonl", [litellm_line(i) for i in range(500)])
    first = run_cli("ingest", str(log), "--format", "json", check=True)
    assert json.loads(first.stdout)["events"] == 500
    second = run_cli("ingest", str(log), "--format", "json", check=True)
    assert json.loads(second.stdout)["events"] == 0
    # A copy under another name is the same content: still nothing new.
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(log.read_bytes())
    third = run_cli("ingest", str(copy), "--format", "json", check=True)
    assert json.loads(third.stdout)["events"] == 0
    assert lake_count(workspace) == 500


def test_append_then_ingest_adds_only_new_lines(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    log = write_lines(tmp_path / "gw.jsonl", [litellm_line(i) for i in range(100)])
    run_cli("ingest", str(log), check=True)
    with log.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(litellm_line(i) for i in range(100, 130)) + "\n")
    result = run_cli("ingest", str(log), "--format", "json", check=True)
    assert json.loads(result.stdout)["events"] == 30
    ids = lake_event_ids(workspace)
    assert len(ids) == len(set(ids)) == 130


def test_rotation_keeps_progress(workspace: Workspace, run_cli: RunCli, tmp_path: Path) -> None:
    log = write_lines(tmp_path / "gw.jsonl", [litellm_line(i) for i in range(50)])
    run_cli("ingest", str(log), check=True)
    rotated = tmp_path / "gw.jsonl.1"
    log.rename(rotated)
    write_lines(log, [litellm_line(i) for i in range(50, 60)])
    run_cli("ingest", str(tmp_path), check=True)
    assert lake_count(workspace) == 60


def test_gzip_and_document_files(workspace: Workspace, run_cli: RunCli, tmp_path: Path) -> None:
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as handle:
        handle.write("\n".join(litellm_line(i) for i in range(40)) + "\n")
    # An export larger than the 4 KiB fingerprint, so a rewrite that grows it keeps its identity.
    array = [json.loads(litellm_line(i)) for i in range(40, 80)]
    (tmp_path / "export.json").write_text(json.dumps(array, indent=2))
    run_cli("ingest", str(tmp_path), check=True)
    run_cli("ingest", str(tmp_path), check=True)
    assert lake_count(workspace) == 80
    # An array export that grows: only the new elements are added.
    array.append(json.loads(litellm_line(80)))
    (tmp_path / "export.json").write_text(json.dumps(array, indent=2))
    run_cli("ingest", str(tmp_path), check=True)
    assert lake_count(workspace) == 81


CRASH_SCRIPT = """
import os, signal, sys
import sentinel.ingest.batches as batches
point = sys.argv.pop(1)
original = getattr(batches, point)
calls = {"n": 0}
def crash(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == 2:          # let one batch through, die on the second
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(batches, point, crash)
from sentinel.cli.main import main
main()
"""


@pytest.mark.parametrize("point", ["commit", "publish"])
def test_sigkill_mid_batch_loses_and_duplicates_nothing(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path, point: str
) -> None:
    """Killed after staging (before commit) or after commit (before the rename)."""
    (workspace.config_path).write_text("[ingest]\nbatch_bytes = 20000\n")
    log = write_lines(tmp_path / "gw.jsonl", [litellm_line(i) for i in range(400)])
    killed = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, point, "--workspace", str(workspace.root),
         "--quiet", "ingest", str(log)],
        capture_output=True, text=True, timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    assert list(workspace.staging_dir.iterdir()), "the crash should leave a staged batch"
    run_cli("ingest", str(log), check=True)
    assert not list(workspace.staging_dir.iterdir())
    ids = lake_event_ids(workspace)
    assert len(ids) == 400
    assert len(set(ids)) == 400
