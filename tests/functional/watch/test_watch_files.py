"""The daemon on awkward files: gzip, damage, restarts, corrupt checkpoints, new trees."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import time
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import (
    Start,
    Tail,
    append,
    configure,
    exactly,
    lake_ids,
    lines,
    quarantined,
    wait_for,
)


def test_rotation_and_inode_reuse_while_the_daemon_is_stopped(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    log, other = logs / "gw.jsonl", logs / "other.jsonl"
    append(log, 0, 50)
    append(other, 1000, 20)
    watch = daemon()
    wait_for(exactly(workspace, 70), what="both files")
    assert watch.stop() == 0
    # While stopped: gw.jsonl grows and is rotated, a new gw.jsonl starts; other.jsonl is
    # deleted and a new file is created, trying to land on its inode.
    append(log, 50, 10)
    log.rename(logs / "gw.jsonl.1")
    append(log, 60, 30)
    old_inode = other.stat().st_ino
    other.unlink()
    reused = False
    for attempt in range(50):
        candidate = logs / f"new{attempt}.jsonl"
        candidate.write_text(lines(2000, 15))
        if candidate.stat().st_ino == old_inode:
            reused = True
            break
        candidate.unlink()
    assert reused or not any(logs.glob("new*.jsonl"))
    if not reused:
        append(logs / "new.jsonl", 2000, 15)
    daemon()
    wait_for(exactly(workspace, 125), what="the rotated tail, the new file and the newcomer")


def test_a_rotated_file_gzipped_later_is_not_read_twice(
    workspace: Workspace, daemon: Start, tailing: Tail, logs: Path
) -> None:
    log, watch = tailing(100)
    assert watch.stop() == 0
    append(log, 100, 20)  # not read yet when logrotate compresses it
    with gzip.open(logs / "gw.jsonl.1.gz", "wb") as packed:
        packed.write(log.read_bytes())
    log.unlink()
    daemon()
    wait_for(exactly(workspace, 120), what="only the unread part of the .gz")


def test_a_gz_is_read_once_complete(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    daemon()
    packed = gzip.compress(lines(0, 300).encode())
    target = logs / "export.jsonl.gz"
    with target.open("wb") as handle:  # written slowly, in three pieces
        for piece in range(3):
            handle.write(packed[piece * len(packed) // 3 : (piece + 1) * len(packed) // 3])
            handle.flush()
            time.sleep(0.3)
    wait_for(exactly(workspace, 300), what="the whole archive")
    assert quarantined(workspace) == []


def test_a_corrupt_gz_is_quarantined_once_with_the_reason(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    packed = gzip.compress(lines(0, 2000).encode())
    (logs / "cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])  # an interrupted copy
    (logs / "junk.jsonl.gz").write_bytes(b"\x1f\x8b" + os.urandom(300))
    append(logs / "fine.jsonl", 5000, 5)
    watch = daemon()
    wait_for(lambda: len(quarantined(workspace)) >= 2, what="both archives quarantined")
    time.sleep(3)  # three idle timeouts: a retry would have quarantined them again
    entries = [json.loads(line) for line in quarantined(workspace)]
    damaged = {Path(e["file"]).name for e in entries}
    assert damaged == {"cut.jsonl.gz", "junk.jsonl.gz"}, entries
    junk = [e for e in entries if e["file"].endswith("junk.jsonl.gz")]
    assert len(junk) == 1 and junk[0]["reason"]
    assert watch.log.count("junk.jsonl.gz") <= 3  # failed, quarantined: once each
    assert {i for i in lake_ids(workspace) if i >= "chatcmpl-00005000"} == {
        f"chatcmpl-{i:08d}" for i in range(5000, 5005)
    }
    watch.stop()
    daemon()  # a restart does not quarantine them again
    time.sleep(2)
    junk_again = [line for line in quarantined(workspace) if "junk.jsonl.gz" in line]
    assert len(junk_again) == 1


def test_a_corrupt_checkpoint_is_reported_and_never_restarted_from_zero(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    first, second = logs / "a.jsonl", logs / "b.jsonl"
    append(first, 0, 50)
    append(second, 100, 50)
    watch = daemon()
    wait_for(exactly(workspace, 100), what="both files")
    assert watch.stop() == 0
    con = sqlite3.connect(workspace.state_db)
    with con:
        con.execute("UPDATE files SET offset = offset - 7 WHERE path LIKE '%a.jsonl'")
        con.execute("UPDATE files SET offset = 'garbage', fingerprint = 'zz' "
                    "WHERE path LIKE '%b.jsonl'")
    con.close()
    append(first, 50, 5)
    append(second, 150, 5)
    watch = daemon()
    wait_for(exactly(workspace, 110), what="only the new lines")
    log = watch.log
    assert log.count("checkpoint.corrupt") >= 3
    assert "inside a line" in log and "is not a number" in log and "SHA-256" in log


def test_new_files_and_s3_style_trees_of_small_json_objects(
    workspace: Workspace, daemon: Start, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    configure(workspace, f'path = "{bucket}"\nexclude = ["*.part"]')
    daemon()
    count = 0
    for day in range(2):
        for hour in range(3):
            prefix = bucket / "AWSLogs" / f"2025-01-{day + 1:02d}" / f"{hour:02d}"
            prefix.mkdir(parents=True)
            for n in range(10):  # one object per file, no final newline, written atomically
                record = json.loads(litellm_line(10_000 + count))
                temporary = prefix / f"obj{n}.json.part"
                text = json.dumps(record, indent=2) if n % 2 else json.dumps(record)
                temporary.write_text(text)
                temporary.rename(prefix / f"obj{n}.json")
                count += 1
    wait_for(exactly(workspace, count), timeout=60, what=f"{count} one-object files")
    assert quarantined(workspace) == []
