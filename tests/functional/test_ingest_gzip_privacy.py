"""Gzip identity (issue 14), quarantine under `[privacy] store_text` (issue 9) and the
ingest exit codes the README documents."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from sentinel.workspace import Workspace
from tests.conftest import RunCli, litellm_line, write_lines
from tests.functional.test_ingest_bad_input import quarantined
from tests.functional.test_ingest_exactly_once import lake_count, lake_event_ids


def _gzip_copy(source: Path, target: Path) -> Path:
    with source.open("rb") as plain, gzip.open(target, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    return target


def test_gzipped_copy_is_already_read(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    log = write_lines(tmp_path / "gw.jsonl", [litellm_line(i) for i in range(100)])
    run_cli("ingest", str(log), check=True)
    packed = _gzip_copy(log, tmp_path / "gw.jsonl.gz")
    result = run_cli("ingest", "--format", "json", str(packed), check=True)
    assert json.loads(result.stdout)["events"] == 0  # before: 100 more
    assert lake_count(workspace) == 100


def test_plain_copy_of_an_ingested_gzip_is_already_read(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    log = write_lines(tmp_path / "gw.jsonl", [litellm_line(i) for i in range(30)])
    packed = _gzip_copy(log, tmp_path / "export.jsonl.gz")
    log.unlink()
    run_cli("ingest", str(packed), check=True)
    with gzip.open(packed) as handle:
        (tmp_path / "plain.jsonl").write_bytes(handle.read())
    result = run_cli("ingest", "--format", "json", str(tmp_path / "plain.jsonl"), check=True)
    assert json.loads(result.stdout)["events"] == 0
    assert lake_count(workspace) == 30


def test_rotated_then_compressed_resumes_where_it_stopped(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    """logrotate with `compress` (and `delaycompress`): app.log is read, gets 20 more
    lines, is renamed app.log.1 and compressed; only the 20 lines are new."""
    log = write_lines(tmp_path / "app.log", [litellm_line(i) for i in range(100)])
    run_cli("ingest", str(log), check=True)
    with log.open("a") as handle:
        handle.write("\n".join(litellm_line(i) for i in range(100, 120)) + "\n")
    rotated = log.rename(tmp_path / "app.log.1")
    _gzip_copy(rotated, tmp_path / "app.log.1.gz")
    rotated.unlink()
    write_lines(log, [litellm_line(i) for i in range(500, 503)])  # the new app.log
    result = run_cli("ingest", "--format", "json", str(tmp_path), check=True)
    files = {Path(f["path"]).name: f["events"] for f in json.loads(result.stdout)["files"]}
    assert files == {"app.log": 3, "app.log.1.gz": 20}
    ids = lake_event_ids(workspace)
    assert len(ids) == len(set(ids)) == 123


CARD, SSN = "4111 1111 1111 1111", "234-56-7890"


@pytest.mark.parametrize("mode", ["full", "masked", "none"])
def test_quarantine_follows_store_text(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path, mode: str
) -> None:
    workspace.config_path.write_text(f'[privacy]\nstore_text = "{mode}"\n')
    escaped_card = "".join(f"\\u{ord(c):04x}" for c in CARD)  # hidden from a plain scan
    lines = [
        litellm_line(1),
        f'{{"id": "cut", "messages": [{{"content": "my card is {CARD} and SSN {SSN}',
        litellm_line(2),
        f'{{"id": "esc", "messages": [{{"content": "card {escaped_card}"',
        litellm_line(3),
    ]
    log = write_lines(tmp_path / "gw.jsonl", lines)
    run_cli("ingest", "--source", "litellm", str(log), check=True)
    assert lake_count(workspace) == 3
    entries = quarantined(workspace)
    assert len(entries) == 2
    text = "".join(p.read_text() for p in workspace.quarantine_dir.iterdir())
    for entry in entries:
        assert entry["reason"] == "invalid JSON"
        assert {"file", "offset", "length", "digest"} <= set(entry)
    if mode == "full":
        assert CARD in text and SSN in text
        return
    assert CARD not in text and SSN not in text and escaped_card not in text
    assert "1111 1111" not in text and "56-7890" not in text
    if mode == "masked":
        assert "[CREDIT_CARD]" in entries[0]["raw"] and "[SSN]" in entries[0]["raw"]
        assert "[CREDIT_CARD]" in entries[1]["raw"]
    else:
        assert all("raw" not in entry for entry in entries)


def test_unrecognised_json_in_a_directory_walk_fails_the_run(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    """Not a log (README, empty, binary): ignored, exit 0. JSON that no source claims:
    a log sentinel could not place, so exit 1, as the README says."""
    write_lines(tmp_path / "gw.jsonl", [litellm_line(1)])
    (tmp_path / "README.md").write_text("# logs\n")
    write_lines(tmp_path / "other.jsonl", [json.dumps({"hello": "world", "n": 1})])
    result = run_cli("ingest", str(tmp_path))
    assert result.returncode == 1
    assert "ignored" in result.stderr and "README.md" in result.stderr
    assert "skipped" in result.stderr and "other.jsonl: unrecognised log format" in result.stderr
    assert lake_count(workspace) == 1
