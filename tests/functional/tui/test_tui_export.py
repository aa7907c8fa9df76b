"""The SQL console's export: masked like the grid, streamed a chunk at a time, audited."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from textual.widgets import TextArea

from sentinel.exceptions import SentinelError
from sentinel.store import audit
from sentinel.store.db import open_db
from sentinel.tui import export
from sentinel.tui.app import SentinelApp
from sentinel.tui.screens.sql import SqlScreen
from sentinel.workspace import Workspace
from tests.functional.tui.conftest import CARD

QUERY = (
    "SELECT event_id, prompt_text, '=HYPERLINK(\"http://x\")' AS formula, "
    f"'typed {CARD}' AS typed FROM events ORDER BY event_id"
)


def exports(ws: Workspace) -> list[audit.Entry]:
    con = open_db(ws.state_db)
    try:
        return [e for e in audit.entries(con) if e.action == "export"]
    finally:
        con.close()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_an_export_is_masked_private_and_audited(
    tui_workspace: Workspace, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"out{suffix}"
    assert export.export_result(tui_workspace, QUERY, path) == 7
    assert path.stat().st_mode & 0o777 == 0o600
    if suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    elif suffix == ".csv":
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
    else:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    text = json.dumps(rows)
    assert len(rows) == 7 and CARD not in text
    assert "card ****1111" in text  # the view's masking of the stored prompt
    assert all("****1111" in row["typed"] for row in rows)  # the net, on a built value
    if suffix == ".csv":  # a spreadsheet would run it: shown as text
        assert rows[0]["formula"].startswith("'=HYPERLINK")
    [entry] = exports(tui_workspace)
    assert entry.detail["rows"] == 7 and entry.detail["path"] == str(path)
    assert CARD not in json.dumps(entry.detail)  # the query is recorded masked


def test_an_export_is_written_a_chunk_at_a_time(
    tui_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 1000)
    seen: list[int] = []
    path = tmp_path / "n.parquet"
    rows = export.export_result(tui_workspace, "SELECT range AS n FROM range(4500)", path,
                                seen.append)
    assert rows == 4500
    assert pq.ParquetFile(path).metadata.num_row_groups == 5  # one per chunk
    assert seen == [1000, 2000, 3000, 4000, 4500]
    assert pq.read_table(path).column("n").to_pylist() == list(range(4500))


def test_a_failed_export_leaves_the_old_file_and_no_partial_one(
    tui_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 1000)
    folder = tmp_path / "exports"
    folder.mkdir()
    path = folder / "out.csv"
    path.write_text("kept\n", encoding="utf-8")
    failing = ("SELECT CASE WHEN range < 300000 THEN range ELSE error('boom') END AS n "
               "FROM range(400000)")
    with pytest.raises(SentinelError, match="boom"):
        export.export_result(tui_workspace, failing, path)
    assert path.read_text(encoding="utf-8") == "kept\n"
    assert [p.name for p in folder.iterdir()] == ["out.csv"]

    def stop_halfway(rows: int) -> None:  # after two chunks were written (a full disk)
        if rows >= 2000:
            raise OSError(28, "No space left on device")

    with pytest.raises(SentinelError, match="No space left"):
        export.export_result(tui_workspace, "SELECT range FROM range(5000)", path, stop_halfway)
    assert path.read_text(encoding="utf-8") == "kept\n"
    assert [p.name for p in folder.iterdir()] == ["out.csv"]
    assert exports(tui_workspace) == []
    with pytest.raises(SentinelError, match="csv"):
        export.export_result(tui_workspace, "SELECT 1", tmp_path / "out.xlsx")


@pytest.mark.asyncio
async def test_ctrl_e_exports_from_the_editor(tui_workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "console.csv"
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        while not isinstance(app.screen, SqlScreen):
            await pilot.pause(0.05)
        screen = app.screen
        screen.query_one(TextArea).text = "SELECT prompt_text FROM events"
        await pilot.press("ctrl+r")
        deadline = time.monotonic() + 60
        while screen.shown_rows is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        screen.query_one(TextArea).focus()
        await pilot.press("ctrl+e")  # from the editor, which binds ctrl+e itself
        await pilot.press(*str(path))
        await pilot.press("enter")
        while not path.exists() and time.monotonic() < deadline:
            await pilot.pause(0.05)
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") == 8 and "card ****1111" in text and CARD not in text
