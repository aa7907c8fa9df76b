"""Bad input: each kind of malformed record is quarantined with a reason, and no good
record is lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.workspace import Workspace
from tests.conftest import RunCli, litellm_line, write_lines
from tests.functional.test_ingest_exactly_once import lake_count

DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"


def quarantined(ws: Workspace) -> list[dict[str, object]]:
    entries = []
    for path in sorted(ws.quarantine_dir.glob("*.jsonl")):
        entries += [json.loads(line) for line in path.read_text().splitlines()]
    return entries


@pytest.mark.parametrize(
    ("name", "good", "reasons"),
    [
        ("truncated_line.jsonl", 4, ["invalid JSON"]),
        ("not_utf8.jsonl", 4, ["invalid UTF-8"]),
        (
            "wrong_types.jsonl",
            4,
            ["no valid timestamp", "record is a JSON null, not an object",
             "record is a JSON varchar, not an object"],
        ),
    ],
)
def test_malformed_records_are_quarantined(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path, name: str, good: int,
    reasons: list[str],
) -> None:
    log = tmp_path / name
    shutil.copy(DATA / name, log)
    result = run_cli("ingest", "--source", "litellm", str(log))
    assert result.returncode == 0, result.stderr
    assert f"Quarantined {len(reasons)} record(s)" in result.stdout
    assert lake_count(workspace) == good
    entries = quarantined(workspace)
    assert sorted(e["reason"] for e in entries) == sorted(reasons)
    for entry in entries:
        assert entry["file"] == str(log.resolve())
        assert isinstance(entry["offset"], int) and entry["offset"] > 0
        assert log.read_bytes()[entry["offset"]:].startswith(
            str(entry["raw"]).encode("utf-8", "backslashreplace")[:8]
        ) or entry["reason"] == "invalid UTF-8"


def test_fifty_megabyte_line(workspace: Workspace, run_cli: RunCli, tmp_path: Path) -> None:
    huge = json.dumps({"id": "huge", "messages": [{"content": "A" * 50_000_000}]})
    log = write_lines(tmp_path / "big.jsonl", [litellm_line(1), huge, litellm_line(2)])
    result = run_cli("ingest", "--source", "litellm", str(log), check=True)
    assert lake_count(workspace) == 2
    [entry] = quarantined(workspace)
    assert "exceeds max_line_bytes" in str(entry["reason"])
    assert entry["raw_truncated"] is True
    assert len(str(entry["raw"])) <= 64 * 1024
    assert "Quarantined 1 record(s)" in result.stdout


def test_binary_and_empty_files_are_skipped_with_a_reason(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "image.bin").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "empty.jsonl").write_bytes(b"")
    write_lines(tmp_path / "good.jsonl", [litellm_line(i) for i in range(3)])
    (tmp_path / "README.md").write_text("# exported gateway logs\n")
    # Met in a directory walk: not logs, ignored with a note; the logs load; exit 0.
    result = run_cli("ingest", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "ignored" in result.stderr and "image.bin: binary file" in result.stderr
    assert "empty.jsonl: empty file" in result.stderr
    assert "README.md: not JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert lake_count(workspace) == 3
    # Named explicitly: the user meant it, so it is an error (exit 1), still no traceback.
    named = run_cli("ingest", str(tmp_path / "image.bin"), str(tmp_path / "empty.jsonl"))
    assert named.returncode == 1
    assert "skipped" in named.stderr and "image.bin: binary file" in named.stderr
    assert "Traceback" not in named.stderr


def test_file_in_the_wrong_format(workspace: Workspace, run_cli: RunCli, tmp_path: Path) -> None:
    log = write_lines(tmp_path / "gw.jsonl", [litellm_line(i) for i in range(3)])
    result = run_cli("ingest", "--source", "cloudtrail", str(log))
    assert result.returncode == 1
    assert "not in cloudtrail format (it looks like litellm)" in result.stderr
    assert lake_count(workspace) == 0
    [entry] = quarantined(workspace)
    assert "not in cloudtrail format" in str(entry["reason"])
    # Nothing was checkpointed: the right source still loads every record.
    run_cli("ingest", "--source", "litellm", str(log), check=True)
    assert lake_count(workspace) == 3


def test_unknown_source_and_missing_workspace(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("ingest", "--source", "nope", str(tmp_path))
    assert result.returncode == 2  # a usage error, as the README says
    assert "unknown source 'nope'" in result.stderr and "litellm" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("--workspace", str(tmp_path / "none"), "ingest", str(tmp_path))
    assert result.returncode == 2
    assert "sentinel init" in result.stderr


# Root reads any file whatever its mode. To make the case real under CI (which runs as
# root), the CLI runs with the capabilities that let root bypass file permissions
# (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) dropped by util-linux's setpriv.
SETPRIV = shutil.which("setpriv")
DROP_DAC = [
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]


@pytest.mark.skipif(
    os.geteuid() == 0 and SETPRIV is None,
    reason="running as root without util-linux setpriv: root reads files regardless of "
    "their mode, so an unreadable file cannot be made",
)
def test_unreadable_file(workspace: Workspace, tmp_path: Path) -> None:
    secret = write_lines(tmp_path / "secret.jsonl", [litellm_line(1)])
    write_lines(tmp_path / "ok.jsonl", [litellm_line(2)])
    secret.chmod(0)
    prefix = [SETPRIV, *DROP_DAC] if os.geteuid() == 0 and SETPRIV else []
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "sentinel", "--workspace", str(workspace.root),
         "ingest", str(tmp_path / "ok.jsonl"), str(secret)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "secret.jsonl: permission denied" in result.stderr
    assert "Traceback" not in result.stderr
    assert lake_count(workspace) == 1


def test_crlf_lines_and_a_bad_one(workspace: Workspace, run_cli: RunCli, tmp_path: Path) -> None:
    """Windows line ends are not part of a record; one bad line still costs only itself."""
    lines = [litellm_line(i) for i in range(5)] + ['{"id": "cut off', litellm_line(5)]
    log = tmp_path / "crlf.jsonl"
    log.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    result = run_cli("ingest", str(log))
    assert result.returncode == 0, result.stderr
    assert lake_count(workspace) == 6
    assert lake_count(workspace, "NOT ends_with(raw, chr(13))") == 6
    assert [e["reason"] for e in quarantined(workspace)] == ["invalid JSON"]
