"""How the dashboard writes times and sizes tables: ages against the one clock, event
times to the minute, and columns as wide as their widest cell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from sentinel.tui import cells, health
from sentinel.workspace import Workspace

NOW = datetime(2025, 1, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("recorded", "shown"), [
    ("2025-01-25T11:55:00+00:00", "5m ago"),
    ("2025-01-25T11:59:59.500000+00:00", "0s ago"),
    ("2025-01-23T12:00:00Z", "2d ago"),
    ("2025-01-25T10:00:00", "2h ago"),  # no offset: sentinel writes UTC
    (datetime(2025, 1, 25, 11, 0, tzinfo=UTC), "1h ago"),
    ("2025-01-25T12:10:00+00:00", "-10m ago"),  # a clock that went back shows as such
])
def test_ago_is_measured_against_the_given_now(recorded: object, shown: str) -> None:
    assert cells.ago(recorded, NOW).plain == shown  # type: ignore[arg-type]


@pytest.mark.parametrize("never", [None, ""])
def test_ago_of_nothing_is_a_dash(never: str | None) -> None:
    assert cells.ago(never, NOW).plain == "—"


def test_stamp_shows_utc_to_the_minute() -> None:
    paris = timezone(timedelta(hours=1))
    assert cells.stamp(datetime(2025, 1, 24, 10, 20, 46, tzinfo=paris)).plain == "2025-01-24 09:20"
    assert cells.stamp(datetime(2025, 1, 24, 9, 20, 46)).plain == "2025-01-24 09:20"
    assert cells.stamp(None).plain == "—"


def test_shown_path_is_relative_inside_the_workspace_only(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    assert health.shown_path(ws, str(tmp_path / "ws" / "demo-logs" / "a.jsonl")) == (
        "demo-logs/a.jsonl"
    )
    assert health.shown_path(ws, "/var/log/gw.jsonl") == "/var/log/gw.jsonl"
    assert health.shown_path(ws, str(tmp_path / "wsx" / "a.jsonl")) == str(
        tmp_path / "wsx" / "a.jsonl"
    )


class OneTable(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable()


@pytest.mark.asyncio
async def test_fill_sizes_each_column_to_its_widest_cell() -> None:
    app = OneTable()
    async with app.run_test(size=(80, 10)):
        table = app.query_one(DataTable)
        table.add_column("old")
        cells.fill(table, ("#", "step"), [
            [Text("1"), Text("Scope the exposure")], [Text("10"), Text("Done")],
        ], keys=["a", "b"])
        assert [c.label.plain for c in table.ordered_columns] == ["#", "step"]
        assert [c.width for c in table.ordered_columns] == [2, len("Scope the exposure")]
        assert [c.auto_width for c in table.ordered_columns] == [False, False]
        assert table.get_row("b") == [Text("10"), Text("Done")]
        cells.fill(table, ("#",), [])
        assert table.row_count == 0 and [c.width for c in table.ordered_columns] == [1]
        cells.fill(table, ("#",), [[Text("1")], [Text("2")]], fit=True)
        assert table.styles.height is not None and table.styles.height.value == 3  # + header
