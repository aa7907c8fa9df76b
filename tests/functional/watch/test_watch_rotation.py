"""The daemon across rotation: rename-and-create, copytruncate, truncation, deletion."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import (
    Start,
    append,
    configure,
    exactly,
    quarantined,
    wait_for,
)


def test_rename_and_create_reads_the_old_file_to_its_end(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    log = logs / "gw.jsonl"
    append(log, 0, 100)
    daemon()
    wait_for(exactly(workspace, 100), what="the first lines")
    with log.open("a", encoding="utf-8") as writer:  # the writer keeps its handle
        log.rename(logs / "gw.jsonl.1")
        writer.write("".join(litellm_line(i) + "\n" for i in range(100, 120)))
    append(log, 120, 30)  # the new file under the old name
    wait_for(exactly(workspace, 150), what="old file's tail and the new file")


def test_a_rotated_file_outside_the_glob_is_still_read_to_its_end(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}/*.log"')
    log = logs / "gw.log"
    append(log, 0, 40)
    daemon()
    wait_for(exactly(workspace, 40), what="the first lines")
    with log.open("a", encoding="utf-8") as writer:
        log.rename(logs / "gw.log.1")  # no longer matched by *.log: held open
        writer.write("".join(litellm_line(i) + "\n" for i in range(40, 55)))
    append(log, 55, 5)
    wait_for(exactly(workspace, 60), what="the rotated file's last lines")


def test_copytruncate_restarts_at_zero_and_skips_the_copy(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    log = logs / "gw.jsonl"
    append(log, 0, 100)
    daemon()
    wait_for(exactly(workspace, 100), what="the first lines")
    shutil.copyfile(log, logs / "gw.jsonl.1")  # logrotate copytruncate: copy, then truncate
    os.truncate(log, 0)
    append(log, 100, 30)
    wait_for(exactly(workspace, 130), what="the lines after the truncation")
    assert quarantined(workspace) == []


def test_truncation_in_place_starts_again_at_zero(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    log = logs / "gw.jsonl"
    append(log, 0, 60)
    daemon()
    wait_for(exactly(workspace, 60), what="the first lines")
    with log.open("w", encoding="utf-8") as handle:  # `> gw.jsonl`, then new lines
        handle.write("".join(litellm_line(i) + "\n" for i in range(60, 70)))
    wait_for(exactly(workspace, 70), what="the rewritten file")


def test_a_file_deleted_while_read_is_read_to_its_end(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    log = logs / "gw.jsonl"
    append(log, 0, 30)
    daemon()
    wait_for(exactly(workspace, 30), what="the first lines")
    with log.open("a", encoding="utf-8") as writer:
        writer.write("".join(litellm_line(i) + "\n" for i in range(30, 80)))
        writer.flush()
        log.unlink()  # gone from the directory; the daemon's handle still reads it
    wait_for(exactly(workspace, 80), what="the deleted file's last lines")


def test_a_file_deleted_and_recreated_starts_at_zero(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    log = logs / "gw.jsonl"
    append(log, 0, 30)
    daemon()
    wait_for(exactly(workspace, 30), what="the first lines")
    log.unlink()
    append(log, 30, 12)
    wait_for(exactly(workspace, 42), what="the recreated file from its start")


def test_copytruncate_without_o_append_skips_the_nul_hole(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    log = logs / "gw.jsonl"
    writer = log.open("w", encoding="utf-8")  # no O_APPEND: writes at its own offset
    writer.write(lines_of(0, 100))
    writer.flush()
    daemon()
    wait_for(exactly(workspace, 100), what="the first lines")
    shutil.copyfile(log, logs / "gw.jsonl.1")
    os.truncate(log, 0)
    writer.write(lines_of(100, 30))  # lands after a hole of NUL bytes as long as the copy
    writer.close()
    assert log.read_bytes()[:1] == b"\0"
    wait_for(exactly(workspace, 130), what="the lines after the NUL hole")
    assert quarantined(workspace) == []


def lines_of(first: int, count: int) -> str:
    return "".join(litellm_line(i) + "\n" for i in range(first, first + count))
