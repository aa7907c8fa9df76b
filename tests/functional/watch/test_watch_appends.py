"""The daemon on growing files: batches closed by size or time, partial lines held."""

from __future__ import annotations

import time
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import (
    Start,
    Tail,
    append,
    configure,
    lake_count,
    lake_ids,
    quarantined,
    query,
    wait_for,
)


def test_appends_are_ingested_in_batches_closed_by_time(
    workspace: Workspace, tailing: Tail
) -> None:
    log, watch = tailing(50)
    for round_ in range(3):
        append(log, 50 + round_ * 10, 10)
        wait_for(lambda r=round_: lake_count(workspace) == 60 + r * 10, what="appended lines")
    ids = lake_ids(workspace)
    assert len(ids) == len(set(ids)) == 80
    assert watch.stop() == 0
    assert "ingested" in watch.log


def test_a_large_append_is_cut_into_batches_by_size(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(
        workspace, f'path = "{logs}"',
        daemon="[daemon]\nbatch_bytes = 20000\nbatch_seconds = 30\nidle_timeout = 30\n",
    )
    daemon()
    append(logs / "gw.jsonl", 0, 400)  # ~200 KB: closed by size, long before 30 s
    wait_for(lambda: lake_count(workspace) == 400, timeout=15, what="400 events")
    batches = query(workspace, "SELECT count(*) FROM batches WHERE events > 0")[0][0]
    assert isinstance(batches, int) and batches >= 5


def test_a_partial_line_waits_for_its_newline(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"',
              daemon="[daemon]\nbatch_seconds = 0.2\nidle_timeout = 30\n")
    log = logs / "gw.jsonl"
    line = litellm_line(20)
    append(log, 0, 20, tail=line[:37])
    daemon()
    wait_for(lambda: lake_count(workspace) == 20, what="the complete lines")
    # Several batch periods later the partial line is still held back, not quarantined.
    with log.open("a", encoding="utf-8") as handle:
        handle.write(line[37:60])
    time.sleep(1.0)  # five batch periods: proving that nothing happens takes a wait
    assert query(workspace, "SELECT offset FROM files")[0][0] == log.stat().st_size - 60
    assert lake_count(workspace) == 20
    assert quarantined(workspace) == []
    with log.open("a", encoding="utf-8") as handle:
        handle.write(line[60:] + "\n")
    wait_for(lambda: lake_count(workspace) == 21, what="the finished line")
    assert quarantined(workspace) == []


def test_a_file_that_stops_growing_has_its_last_line_finished(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')  # idle_timeout = 1 s
    daemon()
    append(logs / "gw.jsonl", 0, 10, tail=litellm_line(10))  # no final newline, ever
    wait_for(lambda: lake_count(workspace) == 11, what="the unterminated last line")
    assert quarantined(workspace) == []


def test_polling_mode_for_network_filesystems(
    workspace: Workspace, daemon: Start, tmp_path: Path
) -> None:
    logs = tmp_path / "nfs"
    logs.mkdir()
    configure(workspace, f'path = "{logs}/*.jsonl"\npoll = true')
    daemon()
    append(logs / "gw.jsonl", 0, 10)
    wait_for(lambda: lake_count(workspace) == 10, what="lines seen by polling")
