"""The daemon across rotation: rename-and-create, copytruncate, truncation, deletion.

Each test starts from the same state (`tailing`: a daemon that has read the first
lines of `logs/gw.jsonl`), rotates the file one way and checks that the lake then holds
every line exactly once.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sentinel.workspace import Workspace
from tests.functional.watch.watchd import Tail, append, exactly, lines, quarantined, wait_for


def test_rename_and_create_reads_the_old_file_to_its_end(
    workspace: Workspace, tailing: Tail, logs: Path
) -> None:
    log = tailing(100).log
    with log.open("a", encoding="utf-8") as writer:  # the writer keeps its handle
        log.rename(logs / "gw.jsonl.1")
        writer.write(lines(100, 20))
    append(log, 120, 30)  # the new file under the old name
    wait_for(exactly(workspace, 150), what="old file's tail and the new file")


def test_a_rotated_file_outside_the_glob_is_still_read_to_its_end(
    workspace: Workspace, tailing: Tail, logs: Path
) -> None:
    log = tailing(40, watch=f'path = "{logs}/*.log"', name="gw.log").log
    with log.open("a", encoding="utf-8") as writer:
        log.rename(logs / "gw.log.1")  # no longer matched by *.log: held open
        writer.write(lines(40, 15))
    append(log, 55, 5)
    wait_for(exactly(workspace, 60), what="the rotated file's last lines")


def test_copytruncate_restarts_at_zero_and_skips_the_copy(
    workspace: Workspace, tailing: Tail, logs: Path
) -> None:
    log = tailing(100).log
    shutil.copyfile(log, logs / "gw.jsonl.1")  # logrotate copytruncate: copy, then truncate
    os.truncate(log, 0)
    append(log, 100, 30)
    wait_for(exactly(workspace, 130), what="the lines after the truncation")
    assert quarantined(workspace) == []


def test_truncation_in_place_starts_again_at_zero(workspace: Workspace, tailing: Tail) -> None:
    log = tailing(60).log
    log.write_text(lines(60, 10), encoding="utf-8")  # `> gw.jsonl`, then new lines
    wait_for(exactly(workspace, 70), what="the rewritten file")


def test_a_file_deleted_while_read_is_read_to_its_end(
    workspace: Workspace, tailing: Tail
) -> None:
    log = tailing(30).log
    with log.open("a", encoding="utf-8") as writer:
        writer.write(lines(30, 50))
        writer.flush()
        log.unlink()  # gone from the directory; the daemon's handle still reads it
    wait_for(exactly(workspace, 80), what="the deleted file's last lines")


def test_a_file_deleted_and_recreated_starts_at_zero(workspace: Workspace, tailing: Tail) -> None:
    log = tailing(30).log
    log.unlink()
    append(log, 30, 12)
    wait_for(exactly(workspace, 42), what="the recreated file from its start")


def test_copytruncate_without_o_append_skips_the_nul_hole(
    workspace: Workspace, tailing: Tail, logs: Path
) -> None:
    log = logs / "gw.jsonl"
    writer = log.open("w", encoding="utf-8")  # no O_APPEND: writes at its own offset
    writer.write(lines(0, 100))
    writer.flush()
    tailing(0)
    wait_for(exactly(workspace, 100), what="the first lines")
    shutil.copyfile(log, logs / "gw.jsonl.1")
    os.truncate(log, 0)
    writer.write(lines(100, 30))  # lands after a hole of NUL bytes as long as the copy
    writer.close()
    assert log.read_bytes()[:1] == b"\0"
    wait_for(exactly(workspace, 130), what="the lines after the NUL hole")
    assert quarantined(workspace) == []
