"""The layout of each screen, pinned as SVG snapshots at 120×40 and 80×24.

Update after an intended change with `pytest tests/functional/tui --snapshot-update` and
look at the SVGs before committing them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from textual.widgets import Static, TextArea, Tree

from sentinel.store import alerts as alert_store
from sentinel.store import triage
from sentinel.store.db import open_db, transaction
from sentinel.tui.app import SentinelApp
from sentinel.tui.screens.incident import IncidentScreen
from sentinel.tui.screens.playbook import PlaybookScreen
from sentinel.workspace import Workspace
from tests.functional.tui.conftest import FROZEN_NOW

SIZES = [(120, 40), (80, 24)]


async def settle(pilot: Any, condition: Any) -> None:
    for _ in range(400):
        if condition():
            break
        await pilot.pause(0.05)
    await pilot.pause(0.3)


def rows(app: SentinelApp, selector: str) -> int:
    found = app.screen.query(selector)
    return found.first().row_count if found else -1


@pytest.mark.parametrize("size", SIZES)
def test_incident_queue(snap_compare: Any, tui_workspace: Workspace, size: tuple[int, int]) -> None:
    app = SentinelApp(tui_workspace, label="demo workspace")

    async def ready(pilot: Any) -> None:
        await settle(pilot, lambda: rows(app, "#queue") == 3
                     and getattr(app.screen, "vendors_read", False))

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_incident_detail(
    snap_compare: Any, tui_workspace: Workspace, size: tuple[int, int]
) -> None:
    app = SentinelApp(tui_workspace, label="demo workspace")

    async def ready(pilot: Any) -> None:
        await settle(pilot, lambda: rows(app, "#queue") == 3)
        app.open_incident(1)
        await settle(pilot, lambda: isinstance(app.screen, IncidentScreen)
                     and rows(app, "#evidence") == 1)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_sql_console(snap_compare: Any, tui_workspace: Workspace, size: tuple[int, int]) -> None:
    app = SentinelApp(tui_workspace, label="demo workspace")

    async def ready(pilot: Any) -> None:
        await settle(pilot, lambda: rows(app, "#queue") == 3)
        await pilot.press("s")
        await settle(pilot, lambda: bool(app.screen.query(TextArea)))
        # The schema sidebar fills from a worker: wait for it, or the picture races it.
        await settle(pilot, lambda: len(app.screen.query_one(Tree).root.children) > 0)
        app.screen.query_one(TextArea).text = (
            "SELECT actor_key, count(*) AS n FROM events GROUP BY 1 ORDER BY 1"
        )
        await pilot.press("ctrl+r")
        await settle(pilot, lambda: "row" in str(app.screen.query_one("#status").render()))
        app.screen.query_one("#status", Static).update("1 row")  # without the timing
        app.screen.query_one(TextArea).cursor_blink = False
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=ready)


def record_scan(ws: Workspace) -> None:
    """A finished scan with two rules' figures, as the scan runner records one, at pinned
    moments (its real timings would move the picture on every run)."""
    started = (FROZEN_NOW - timedelta(minutes=3)).isoformat()
    finished = (FROZEN_NOW - timedelta(minutes=3) + timedelta(seconds=1.5)).isoformat()
    con = open_db(ws.state_db)
    try:
        alert_store.begin_scan(con, "20250125T115700-0a1b2c3d")
        alert_store.finish_scan(
            con, "20250125T115700-0a1b2c3d", batch_seq=1, rules=2, alerts=1,
            stats={
                "card_to_vendor": {"seconds": 0.42, "rows_read": 7, "files_read": 1,
                                   "matches": 1, "alerts": 1},
                "secret_in_prompt": {"seconds": 0.05, "rows_read": 7, "files_read": 1,
                                     "matches": 0, "alerts": 0},
            },
        )
        with transaction(con):
            con.execute("UPDATE scans SET started_at = ?, finished_at = ?", (started, finished))
    finally:
        con.close()


@pytest.mark.parametrize("size", SIZES)
def test_sources(snap_compare: Any, tui_workspace: Workspace, size: tuple[int, int]) -> None:
    record_scan(tui_workspace)
    app = SentinelApp(tui_workspace, label="demo workspace")

    async def ready(pilot: Any) -> None:
        await settle(pilot, lambda: rows(app, "#queue") == 3)
        await pilot.press("w")
        await settle(pilot, lambda: rows(app, "#sources") == 1 and rows(app, "#rules") == 2
                     and rows(app, "#files") == 1)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_playbook(snap_compare: Any, tui_workspace: Workspace, size: tuple[int, int]) -> None:
    con = open_db(tui_workspace.state_db)
    try:
        triage.set_playbook(con, 1, "customer-pii-to-vendor")
    finally:
        con.close()
    app = SentinelApp(tui_workspace, label="demo workspace")

    async def ready(pilot: Any) -> None:
        await settle(pilot, lambda: rows(app, "#queue") == 3)
        app.open_playbook(1)
        await settle(pilot, lambda: isinstance(app.screen, PlaybookScreen)
                     and rows(app, "#steps") > 3)

    assert snap_compare(app, terminal_size=size, run_before=ready)
