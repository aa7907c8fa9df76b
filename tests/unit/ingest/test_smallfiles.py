"""Small files normalised in groups: one query for many files, and still exactly once per file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sentinel.exceptions import SourceError, StoreError
from sentinel.ingest import batches, engine, smallfiles
from sentinel.workspace import Workspace
from tests.conftest import litellm_line


def lake(ws: Workspace) -> list[tuple[str, str, int]]:
    """(event id, source file name, source offset) of every event, sorted."""
    files = [str(f) for f in ws.lake_dir.rglob("*.parquet")]
    if not files:
        return []
    con = duckdb.connect()
    rows = con.execute(
        "SELECT event_id, source_file, source_offset FROM read_parquet($f) ORDER BY ALL",
        {"f": files},
    ).fetchall()
    return [(event_id, Path(name).name, int(offset)) for event_id, name, offset in rows]


def tree(root: Path) -> dict[str, int]:
    """An S3-sync-style tree of awkward small files; name -> the events it holds."""
    root.mkdir()
    (root / "one.json").write_text(litellm_line(1))  # one object, no final newline
    (root / "pretty.json").write_text(json.dumps(json.loads(litellm_line(2)), indent=2))
    array = [json.loads(litellm_line(i)) for i in (3, 4, 5)]
    (root / "export.json").write_text(json.dumps(array, indent=2))  # a document: 3 records
    (root / "lines.jsonl").write_text("".join(litellm_line(i) + "\n" for i in (6, 7, 8)))
    (root / "mixed.jsonl").write_text(litellm_line(9) + "\nnot json\n" + litellm_line(10) + "\n")
    return {"one.json": 1, "pretty.json": 1, "export.json": 3, "lines.jsonl": 3,
            "mixed.jsonl": 2}


@pytest.fixture()
def queries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows of every normalise query of the grouped path."""
    seen: list[int] = []
    normalise = smallfiles.normalise

    def counted(session: Any, source: Any, records: Any, *args: Any) -> Any:
        seen.append(records.num_rows)
        return normalise(session, source, records, *args)

    monkeypatch.setattr(smallfiles, "normalise", counted)
    return seen


def test_a_tree_of_small_files_is_one_query_and_each_file_keeps_its_records(
    workspace: Workspace, tmp_path: Path, queries: list[int]
) -> None:
    expected = tree(tmp_path / "bucket")
    report = engine.ingest_paths(workspace, [tmp_path / "bucket"])
    assert {Path(f.path).name: f.events for f in report.files} == expected
    assert len(queries) == 1  # five files, one normalise query
    assert report.quarantined == 1  # "not json", in mixed.jsonl
    events = lake(workspace)
    assert len(events) == sum(expected.values())
    by_file: dict[str, list[int]] = {}
    for _, name, offset in events:
        by_file.setdefault(name, []).append(offset)
    assert sorted(by_file["export.json"]) == [0, 1, 2]  # a document's records by index
    lines = (tmp_path / "bucket" / "lines.jsonl").read_bytes()
    assert sorted(by_file["lines.jsonl"]) == [0, lines.index(b"\n") + 1,
                                              lines.index(b"\n", lines.index(b"\n") + 1) + 1]
    assert by_file["one.json"] == [0] and by_file["pretty.json"] == [0]
    quarantine = [json.loads(line) for f in workspace.quarantine_dir.glob("*.jsonl")
                  for line in f.read_text().splitlines()]
    assert [(Path(q["file"]).name, q["offset"]) for q in quarantine] == [
        ("mixed.jsonl", len(litellm_line(9)) + 1)
    ]
    # Each file has its own batch and checkpoint: nothing is new the second time.
    again = engine.ingest_paths(workspace, [tmp_path / "bucket"])
    assert again.events == 0 and len(lake(workspace)) == len(events)


def test_appended_small_files_add_only_their_new_lines(
    workspace: Workspace, tmp_path: Path, queries: list[int]
) -> None:
    tree(tmp_path / "bucket")
    engine.ingest_paths(workspace, [tmp_path / "bucket"])
    with (tmp_path / "bucket" / "lines.jsonl").open("a") as handle:
        handle.write(litellm_line(11) + "\n")
    with (tmp_path / "bucket" / "mixed.jsonl").open("a") as handle:
        handle.write(litellm_line(12) + "\n")
    report = engine.ingest_paths(workspace, [tmp_path / "bucket"])
    assert {Path(f.path).name: f.events for f in report.files if f.events} == {
        "lines.jsonl": 1, "mixed.jsonl": 1}
    ids = [event_id for event_id, _, _ in lake(workspace)]
    assert len(ids) == len(set(ids)) == 12


def test_a_crash_before_the_group_commits_loses_and_doubles_nothing(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = tree(tmp_path / "bucket")
    record = batches.record
    calls = {"n": 0}

    def fail_third(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise StoreError("injected: the disk went away mid-commit")
        record(*args, **kwargs)

    monkeypatch.setattr(batches, "record", fail_third)
    with pytest.raises(StoreError):
        engine.ingest_paths(workspace, [tmp_path / "bucket"])
    assert lake(workspace) == []  # one transaction: none of the group's files committed
    monkeypatch.setattr(batches, "record", record)
    report = engine.ingest_paths(workspace, [tmp_path / "bucket"])
    assert report.events == sum(expected.values())
    ids = [event_id for event_id, _, _ in lake(workspace)]
    assert len(ids) == len(set(ids)) == sum(expected.values())


def test_a_group_whose_query_fails_is_read_file_by_file(
    workspace: Workspace, tmp_path: Path, queries: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = tree(tmp_path / "bucket")
    normalise = smallfiles.normalise

    def fails_when_grouped(session: Any, source: Any, records: Any, *args: Any) -> Any:
        raise SourceError("injected: the grouped query failed")

    monkeypatch.setattr(smallfiles, "normalise", fails_when_grouped)
    report = engine.ingest_paths(workspace, [tmp_path / "bucket"])
    assert {Path(f.path).name: f.events for f in report.files} == expected
    assert len(lake(workspace)) == sum(expected.values())
    assert normalise is not None


def test_large_files_and_gzip_are_read_alone(
    workspace: Workspace, tmp_path: Path, queries: list[int]
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    count = smallfiles.SMALL_FILE_BYTES // len(litellm_line(0)) + 10
    (root / "big.jsonl").write_text("".join(litellm_line(i) + "\n" for i in range(count)))
    (root / "small.jsonl").write_text(litellm_line(count) + "\n")
    assert not smallfiles.grouped(root / "big.jsonl") and smallfiles.grouped(root / "small.jsonl")
    report = engine.ingest_paths(workspace, [root])
    assert report.events == count + 1
    assert queries == [1]  # only the small file went through the grouped path


def test_identical_files_in_one_tree_are_one_file_as_when_read_one_by_one(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "bucket"
    root.mkdir()
    for name in ("a.json", "b.json", "c.json"):  # the same object synced three times
        (root / name).write_text(litellm_line(1))
    (root / "d.json").write_text(litellm_line(2))
    report = engine.ingest_paths(workspace, [root])
    assert [f.events for f in report.files] == [1, 0, 0, 1]
    assert sorted(event_id for event_id, _, _ in lake(workspace)) == [
        "chatcmpl-00000001", "chatcmpl-00000002"]


def test_a_stopped_call_still_reads_its_first_file_and_reports_only_what_it_read(
    workspace: Workspace, tmp_path: Path
) -> None:
    from sentinel import duck
    from sentinel.ingest.engine import Tail, formats_for, ingest_files
    from sentinel.store.db import open_db

    root = tmp_path / "bucket"
    root.mkdir()
    paths = []
    for i in range(3):
        paths.append(root / f"{i}.json")
        paths[-1].write_text(litellm_line(i))
    con = open_db(workspace.state_db)
    try:
        reports = ingest_files(
            workspace, con, duck.connect(), paths, formats_for(workspace),
            workspace.secret_key(), Tail(finish=True, stop=lambda: True),
        )
    finally:
        con.close()
    # Past its time at once (a watcher's pass spent checking thousands of files): the
    # first file is still read, so every pass makes progress; the others wait.
    assert [r.events for r in reports] == [1]
    assert [event_id for event_id, _, _ in lake(workspace)] == ["chatcmpl-00000000"]
