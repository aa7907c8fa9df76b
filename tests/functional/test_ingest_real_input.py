"""Real-world input through the real CLI: no good record is lost, bad ones are quarantined
with a reason, and one bad file never stops the others (issue 9, item 4)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import zlib
from pathlib import Path

import duckdb
import pytest

from sentinel.workspace import Workspace
from tests.conftest import RunCli, litellm_line, write_lines
from tests.functional.test_ingest_bad_input import quarantined
from tests.functional.test_ingest_exactly_once import lake_count

DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"


def lake_rows(ws: Workspace, columns: str) -> list[tuple[object, ...]]:
    files = [str(f) for f in ws.lake_dir.rglob("*.parquet")]
    if not files:
        return []
    con = duckdb.connect()
    query = f"SELECT {columns} FROM read_parquet($f) ORDER BY ALL"
    return con.execute(query, {"f": files}).fetchall()


@pytest.mark.parametrize(
    ("name", "good", "reasons"),
    [
        ("bom.jsonl", 4, []),
        # Before: the torn first line made the whole file a "document": nothing loaded.
        ("torn_first_line.jsonl", 4, ["invalid JSON"]),
        # Before: a first line starting with `[` made the file a "document".
        ("array_first_line.jsonl", 6, []),
    ],
)
def test_first_line_does_not_decide_alone(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path, name: str, good: int,
    reasons: list[str],
) -> None:
    log = tmp_path / name
    shutil.copy(DATA / name, log)
    result = run_cli("ingest", str(log))
    assert result.returncode == 0, result.stderr
    assert lake_count(workspace) == good
    assert [e["reason"] for e in quarantined(workspace)] == reasons


def test_deep_nesting_is_quarantined_per_record(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    deep_array = "[" * 5000 + "]" * 5000
    # Brackets inside strings do not nest: this record loads.
    brackets = litellm_line(50, prompt="[" * 300 + "{" * 300)
    log = write_lines(
        tmp_path / "deep.jsonl",
        [deep, litellm_line(1), deep_array, litellm_line(2), brackets],
    )
    result = run_cli("ingest", "--source", "litellm", str(log))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert lake_count(workspace) == 3
    reasons = [e["reason"] for e in quarantined(workspace)]
    assert reasons == ["record nested deeper than 128 levels"] * 2
    # Recognised by its other lines when the first one is the deep one.
    other = write_lines(tmp_path / "deep2.jsonl", [deep, litellm_line(3)])
    run_cli("ingest", str(other), check=True)
    assert lake_count(workspace) == 4


def _gzip_lines(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def test_truncated_gzip_loads_what_precedes_the_damage(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    def lines(first: int) -> list[str]:
        return [litellm_line(i, prompt="x" * 2000 + str(i)) for i in range(first, first + 400)]

    whole = _gzip_lines(lines(0))
    (tmp_path / "a-truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    corrupt = bytearray(_gzip_lines(lines(1000)))
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 64] = b"\xff" * 64
    (tmp_path / "b-corrupt.jsonl.gz").write_bytes(bytes(corrupt))
    (tmp_path / "c-trailing.jsonl.gz").write_bytes(_gzip_lines(lines(2000)) + b"garbage!")
    write_lines(tmp_path / "d-after.jsonl", [litellm_line(i) for i in range(3000, 3010)])
    result = run_cli("ingest", "--format", "json", str(tmp_path))
    assert result.returncode == 1, result.stderr  # read in part: reported, not fatal
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    files = {Path(f["path"]).name: f for f in report["files"]}
    truncated = files["a-truncated.jsonl.gz"]
    assert 50 < truncated["events"] < 400
    assert "damaged gzip" in truncated["incomplete"] and "ended before" in truncated["incomplete"]
    assert "damaged gzip" in files["b-corrupt.jsonl.gz"]["incomplete"]
    assert files["c-trailing.jsonl.gz"]["events"] == 400
    assert "damaged gzip" in files["c-trailing.jsonl.gz"]["incomplete"]
    assert files["d-after.jsonl"]["events"] == 10  # the later file was still read
    entries = [e for e in quarantined(workspace) if "damaged gzip" in e["reason"]]
    assert len(entries) == 3
    ids = [r[0] for r in lake_rows(workspace, "event_id")]
    assert len(ids) == len(set(ids)) == report["events"]
    # Nothing is retried forever: the same damaged files add nothing the next time.
    again = json.loads(run_cli("ingest", "--format", "json", str(tmp_path)).stdout)
    assert again["events"] == 0 and again["quarantined"] == 0


def test_partial_last_line_waits_for_its_newline(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    lines = [litellm_line(i) for i in range(10)]
    cut = litellm_line(10)
    log = tmp_path / "live.jsonl"
    log.write_text("\n".join(lines) + "\n" + cut[:70])
    first = run_cli("ingest", str(log))
    assert first.returncode == 0, first.stderr
    assert "waiting" in first.stderr and "no newline yet" in first.stderr
    assert lake_count(workspace) == 10
    assert quarantined(workspace) == []  # before: quarantined as two halves
    with log.open("a") as handle:
        handle.write(cut[70:] + "\n" + litellm_line(11) + "\n")
    run_cli("ingest", str(log), check=True)
    ids = [r[0] for r in lake_rows(workspace, "event_id")]
    assert len(ids) == len(set(ids)) == 12
    assert quarantined(workspace) == []


def test_whole_record_without_final_newline_loads(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    """A finished file (an export, the shared samples) whose writer left out the final
    newline: the last record is whole JSON, so it loads at once."""
    log = write_lines(tmp_path / "export.jsonl", [litellm_line(i) for i in range(3)],
                      newline_at_end=False)
    result = run_cli("ingest", str(log))
    assert result.returncode == 0 and "waiting" not in result.stderr
    assert lake_count(workspace) == 3
    with log.open("a") as handle:  # appended later: the newline, then more records
        handle.write("\n" + litellm_line(3) + "\n")
    run_cli("ingest", str(log), check=True)
    assert lake_count(workspace) == 4 and quarantined(workspace) == []


def test_nul_runs_are_skipped_not_binary(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    """The hole copytruncate leaves when the writer keeps its offset, at the start of the
    file and after a line; larger than the sniffed head and than max_line_bytes."""
    log = tmp_path / "holey.jsonl"
    with log.open("wb") as handle:
        handle.write(b"\x00" * 600_000)
        handle.write((litellm_line(1) + "\n").encode())
        handle.write(b"\x00" * 3_000)
        handle.write((litellm_line(2) + "\n" + litellm_line(3) + "\n").encode())
    workspace.config_path.write_text("[ingest]\nmax_line_bytes = 100000\n")
    result = run_cli("ingest", str(log))
    assert result.returncode == 0, result.stderr
    assert lake_count(workspace) == 3
    assert quarantined(workspace) == []
    assert [r[0] for r in lake_rows(workspace, "source_offset")] == [
        600_000, 600_000 + len(litellm_line(1)) + 1 + 3_000,
        600_000 + len(litellm_line(1)) + 1 + 3_000 + len(litellm_line(2)) + 1,
    ]


def test_files_with_the_same_first_4k_are_told_apart(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    shared = [litellm_line(i) for i in range(20)]  # ~8 KiB: more than the fingerprint
    assert len("\n".join(shared)) > 4096
    first = write_lines(tmp_path / "a.jsonl", shared + [litellm_line(i) for i in range(100, 105)])
    second = write_lines(tmp_path / "b.jsonl", shared + [litellm_line(i) for i in range(200, 203)])
    run_cli("ingest", str(first), check=True)
    result = run_cli("ingest", "--format", "json", str(second), check=True)
    # b.jsonl is its own file: all its records are read (the shared ones are the same
    # events, so the lake holds them twice, each with its own provenance).
    assert json.loads(result.stdout)["events"] == 23
    ids = {r[0] for r in lake_rows(workspace, "event_id")}
    assert {f"chatcmpl-{i:08d}" for i in (*range(100, 105), *range(200, 203))} <= ids


def test_special_files_named_on_the_command_line(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    try:
        good = write_lines(tmp_path / "good.jsonl", [litellm_line(1)])
        result = run_cli("ingest", str(fifo), "/dev/zero", str(sock_path), str(good))
    finally:
        server.close()
    assert result.returncode == 1
    assert f"skipped {fifo}: not a regular file (a FIFO)" in result.stderr
    assert "skipped /dev/zero: not a regular file (a character device)" in result.stderr
    assert f"skipped {sock_path}: not a regular file (a socket)" in result.stderr
    assert "Traceback" not in result.stderr
    assert lake_count(workspace) == 1


def test_implausible_timestamps_and_non_finite_numbers(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    lines = [
        litellm_line(1),
        litellm_line(2, startTime=-100_000_000_000.0),  # ~1200 BC
        litellm_line(3, startTime=5_000_000_000.0),  # 2128
        litellm_line(4, startTime="infinity"),
        litellm_line(5, response_cost=float("nan")),  # json.dumps writes NaN
        litellm_line(6, response_cost=float("inf")),  # and Infinity
        litellm_line(7, response_cost="NaN"),
        litellm_line(8),
    ]
    log = write_lines(tmp_path / "extreme.jsonl", lines)
    result = run_cli("ingest", str(log))
    assert result.returncode == 0, result.stderr
    assert lake_count(workspace) == 2
    reasons = [str(e["reason"]) for e in quarantined(workspace)]
    assert len(reasons) == 6
    assert sum(r.startswith(("timestamp out of range", "no valid timestamp")) for r in reasons) == 3
    assert sum(r.startswith("not a finite number: cost_usd") for r in reasons) == 3
    # Queries over the lake work (before: OverflowError on every row returned).
    out = run_cli("sql", "SELECT ts, cost_usd FROM events", "--format", "json")
    assert out.returncode == 0, out.stderr


def test_provenance_after_rotation(workspace: Workspace, run_cli: RunCli, tmp_path: Path) -> None:
    log = write_lines(tmp_path / "app.log", [litellm_line(i) for i in range(5)])
    run_cli("ingest", str(tmp_path), check=True)
    rotated = tmp_path / "app.log.1"
    log.rename(rotated)
    with rotated.open("a") as handle:  # the writer still had the old file open
        handle.write(litellm_line(5) + "\n")
    write_lines(log, [litellm_line(i) for i in range(100, 103)])
    run_cli("ingest", str(tmp_path), check=True)
    rows = lake_rows(workspace, "source_file, source_offset, event_id")
    assert len(rows) == 9
    assert len({(r[0], r[1]) for r in rows}) == 9  # unique
    by_id = {r[2]: r[0] for r in rows}
    assert by_id["chatcmpl-00000000"] == str(log.resolve())  # read under app.log then
    assert by_id["chatcmpl-00000005"] == str(rotated.resolve())  # read under app.log.1
    label = by_id["chatcmpl-00000100"]  # the new app.log: another file, same path
    assert str(label).startswith(str(log.resolve()) + "#")


def test_gzip_bomb_of_newlines_is_bounded(
    workspace: Workspace, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.jsonl.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\n" * (16 * 1024 * 1024)
    with bomb.open("wb") as handle:
        for _ in range(24):  # 384 MiB of newlines, ~1,000 times the compressed size
            handle.write(compressor.compress(block))
        handle.write(compressor.flush())
    assert bomb.stat().st_size < 2_000_000
    log = write_lines(tmp_path / "good.jsonl", [litellm_line(1)])
    script = (
        "import resource, subprocess, sys;"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "sys.stderr.write(r.stderr);"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, sys.executable, "-m", "sentinel", "--workspace",
         str(workspace.root), "--quiet", "ingest", str(bomb), str(log)],
        capture_output=True, text=True, timeout=300,
    )
    code, peak_kb = (int(x) for x in result.stdout.split())
    assert code == 1, result.stderr  # the rest of the bomb is not read: reported
    assert "exceeds 200x the compressed size" in result.stderr
    assert peak_kb < 800_000, f"peak RSS {peak_kb} KB"
    assert lake_count(workspace) == 1
    quarantine_bytes = sum(p.stat().st_size for p in workspace.quarantine_dir.iterdir())
    assert quarantine_bytes < 10_000


def test_quarantine_grows_slower_than_its_input(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("x\n" * 100_000 + litellm_line(1) + "\n" + "{}\n" * 50_000)
    result = run_cli("ingest", "--source", "litellm", str(garbage))
    assert result.returncode == 0, result.stderr
    assert "Quarantined 150,000 record(s)" in result.stdout
    entries = quarantined(workspace)
    assert [e["records"] for e in entries] == [100_000, 50_000]
    size = sum(p.stat().st_size for p in workspace.quarantine_dir.iterdir())
    assert size < garbage.stat().st_size / 2
    assert lake_count(workspace) == 1


def test_huge_batch_bytes_is_a_config_error(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path
) -> None:
    log = tmp_path / "a.jsonl.gz"
    log.write_bytes(_gzip_lines([litellm_line(1)]))
    workspace.config_path.write_text("[ingest]\nbatch_bytes = 1000000000000000\n")
    result = run_cli("ingest", str(log))
    assert result.returncode == 2
    assert "batch_bytes" in result.stderr and "at most" in result.stderr
    assert "Traceback" not in result.stderr
    workspace.config_path.write_text("[ingest]\nbatch_bytes = 1073741824\n")  # the maximum
    run_cli("ingest", str(log), check=True)
    assert lake_count(workspace) == 1
