"""The dashboard through Textual's pilot: each screen's main path, hostile text, live updates."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable, Static, TextArea
from textual_fastdatatable import DataTable as FastTable

from sentinel.store import audit
from sentinel.store import incidents as store
from sentinel.store.db import open_db
from sentinel.tui.app import SentinelApp
from sentinel.tui.screens.incident import EventScreen, IncidentScreen
from sentinel.tui.screens.incidents import IncidentsScreen
from sentinel.tui.screens.sources import SourcesScreen
from sentinel.tui.screens.sql import ResultGrid, SqlScreen
from sentinel.workspace import Workspace
from tests.functional.tui.conftest import CARD

pytestmark = pytest.mark.asyncio


async def wait_for(pilot, condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the app did not get there in time")
        await pilot.pause(0.05)


def rows_in(screen, selector: str) -> int:  # type: ignore[no-untyped-def]
    found = screen.query(selector)
    return found.first().row_count if found else -1


def queue_rows(app: SentinelApp) -> list[list[str]]:
    table = app.screen.query_one("#queue", FastTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def screen_text(app: SentinelApp) -> str:
    parts = []
    for widget in app.screen.query(Static):
        rendered = widget.render()
        parts.append(rendered.plain if isinstance(rendered, Text) else str(rendered))
    return "\n".join(parts)


async def test_queue_lists_incidents_and_acts_through_the_timeline(
    tui_workspace: Workspace,
) -> None:
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentsScreen)
                       and app.screen.query_one("#queue", FastTable).row_count == 3)
        rows = queue_rows(app)
        assert rows[0][1] == "low" and rows[2][5] == "Card sent to an AI vendor"
        # The vendor comes from the lake (the incidents' events), after the list shows.
        await wait_for(pilot, lambda: [r[6] for r in queue_rows(app)] == ["openai"] * 3)
        await pilot.press("o")  # sort by severity
        await wait_for(pilot, lambda: queue_rows(app)[0][1] == "high")
        app.screen.query_one("#queue", FastTable).move_cursor(row=0)
        await pilot.press("a")  # acknowledge the highlighted (high) incident
        con = open_db(tui_workspace.state_db)
        try:
            await wait_for(pilot, lambda: store.get(con, 1).status == "acknowledged")
            actions = [e.action for e in audit.entries(con, [1])]
            assert "incident.status" in actions
        finally:
            con.close()
        await pilot.press("slash")
        await pilot.press(*"quiet")
        await wait_for(pilot, lambda: len(queue_rows(app)) == 1)
        assert queue_rows(app)[0][5] == "Quiet informational"


async def test_incident_detail_masks_evidence_and_reveal_is_recorded(
    tui_workspace: Workspace,
) -> None:
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentsScreen)
                       and app.screen.query_one("#queue", FastTable).row_count == 3)
        app.open_incident(1)
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen))
        screen = app.screen
        await wait_for(pilot, lambda: rows_in(screen, "#evidence") == 1)
        cells = [str(c) for c in screen.query_one("#evidence", DataTable).get_row_at(0)]
        assert not any(CARD in cell for cell in cells)
        assert any("card ****1111" in cell for cell in cells)
        app.push_screen(EventScreen(1, "chatcmpl-00000006"))
        await wait_for(pilot, lambda: "card ****1111" in screen_text(app))
        assert CARD not in screen_text(app)
        await pilot.press("v")
        await pilot.press(*"customer asked for proof")
        await pilot.press("enter")
        await wait_for(pilot, lambda: CARD in screen_text(app))
        con = open_db(tui_workspace.state_db)
        try:
            revealed = [e for e in audit.entries(con, [1]) if e.action == "evidence.revealed"]
        finally:
            con.close()
        assert revealed and revealed[0].detail["reason"] == "customer asked for proof"


async def test_the_detail_screen_triages_with_the_queues_keys(tui_workspace: Workspace) -> None:
    from sentinel.tui.screens.triage import TRIAGE_BINDINGS

    keys = {binding.key for binding in TRIAGE_BINDINGS}
    assert keys == {"a", "g", "c", "r", "x", "n"}
    for screen in (IncidentsScreen, IncidentScreen):
        assert keys <= {binding.key for binding in screen.BINDINGS}  # type: ignore[union-attr]
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentsScreen))
        app.open_incident(1)
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen)
                       and "Card sent" in screen_text(app))
        await pilot.press("g")
        await pilot.press(*"alice")
        await pilot.press("enter")
        con = open_db(tui_workspace.state_db)
        try:
            await wait_for(pilot, lambda: store.get(con, 1).assignee == "alice")
            assert "incident.assigned" in [e.action for e in audit.entries(con, [1])]
        finally:
            con.close()
        # The screen reads the incident again once the change committed.
        await wait_for(pilot, lambda: "alice" in screen_text(app))


async def test_hostile_text_is_shown_literally(tui_workspace: Workspace) -> None:
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentsScreen)
                       and app.screen.query_one("#queue", FastTable).row_count == 3)
        titles = [row[5] for row in queue_rows(app)]
        hostile = next(t for t in titles if t.startswith("Hostile"))
        assert "[bold red]alarm[/] [@click=app.qu" in hostile  # literal (cut at 48)
        assert "\x1b" not in hostile and "\u202e" not in hostile
        app.push_screen(EventScreen(2, "chatcmpl-00000006"))
        await wait_for(pilot, lambda: "[@click=app.quit]" in screen_text(app))
        text = screen_text(app)
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "\\x1b[31mred\\x1b]8;;http://x\\x07link" in text  # visible, inert
        assert app.is_running  # the [@click=app.quit] never ran


async def test_a_one_megabyte_line_stays_one_cell(tui_workspace: Workspace) -> None:
    from sentinel.tui.safe import MAX_BODY, body, plain

    huge = "A" * 1_000_000 + "[bold]x[/]"
    assert len(plain(huge).plain) <= 200
    shown = body(huge)
    assert len(shown.plain) < MAX_BODY + 100 and "more characters" in shown.plain


async def test_an_incident_written_by_another_process_appears(tui_workspace: Workspace) -> None:
    app = SentinelApp(tui_workspace)
    script = (
        "import sys; from sentinel.store import incidents as s; from sentinel.store.db import "
        "open_db; con = open_db(sys.argv[1]); s.open_or_update(con, s.Alert(alert_id='late', "
        "rule_id='r-late', rule_title='Written by the daemon', level='critical', "
        "group_key='actor_key=k', first_ts='2025-01-24T10:00:00+00:00', "
        "last_ts='2025-01-24T10:00:00+00:00', event_count=1))"
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentsScreen)
                       and app.screen.query_one("#queue", FastTable).row_count == 3)
        subprocess.run([sys.executable, "-c", script, str(tui_workspace.state_db)], check=True)
        await wait_for(pilot, lambda: any(r[5] == "Written by the daemon" for r in queue_rows(app)))
        assert "critical 1" in screen_text(app)


async def test_sql_console_runs_masked_and_shows_errors(tui_workspace: Workspace) -> None:
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        editor = app.screen.query_one(TextArea)
        editor.text = "SELECT prompt_text FROM events WHERE prompt_text LIKE '%card%'"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "row" in screen_text(app))

        grid = app.screen.query_one("#result", FastTable)
        cell = str(grid.get_cell_at(__import__("textual").coordinate.Coordinate(0, 0)))
        assert "card ****1111" in cell and CARD not in cell
        editor.text = "COPY (SELECT 1) TO 'x.csv'"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "not allowed" in screen_text(app))
        editor.text = "SELECT * FROM nope"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "Query error" in screen_text(app))


async def test_sql_console_history_keys_leave_ctrl_p_to_the_palette(
    tui_workspace: Workspace,
) -> None:
    from textual.command import CommandPalette

    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        editor = screen.query_one(TextArea)
        for query in ("SELECT 1 AS one", "SELECT 2 AS two"):
            editor.text = query
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda query=query: screen.last_query == query
                           and "1 row" in screen_text(app))
        await pilot.press("ctrl+up")
        assert editor.text == "SELECT 1 AS one"
        await pilot.press("ctrl+down")
        assert editor.text == "SELECT 2 AS two"
        footer = {b.key: b.description for b in screen.BINDINGS if b.show}  # type: ignore[union-attr]
        assert footer["ctrl+up"] == "History" and "ctrl+p" not in footer
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))


async def test_sql_console_fetches_every_row(tui_workspace: Workspace) -> None:
    from sentinel.tui.screens import sql

    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        assert isinstance(screen, SqlScreen)
        screen.query_one(TextArea).text = "SELECT range AS n FROM range(250000)"
        await pilot.press("ctrl+r")
        # Fetched ahead of the cursor, not to the end: the rest waits for the analyst.
        await wait_for(pilot, lambda: (screen.shown_rows or 0) >= sql.AHEAD_ROWS)
        await pilot.pause(0.3)
        assert screen.shown_rows is not None and screen.shown_rows < 250_000
        assert "more as you scroll" in screen_text(app)
        grid = screen.query_one("#result", ResultGrid)
        grid.focus()
        await pilot.press("ctrl+end")  # every row is reachable: the rest is fetched
        await wait_for(pilot, lambda: screen.shown_rows == 250_000
                       and grid.cursor_row == 249_999)
        assert grid.get_row_at(249_999) == [249_999]
        assert "250,000 rows" in screen_text(app)


async def test_sources_screen_shows_a_real_scan_and_the_files_read(
    tui_workspace: Workspace,
) -> None:
    from sentinel.scan.runner import run_scan

    report = run_scan(tui_workspace, open_incidents=False)
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SourcesScreen))
        await wait_for(pilot, lambda: rows_in(app.screen, "#sources") == 1)
        await wait_for(pilot, lambda: rows_in(app.screen, "#files") == 1)
        # Every rule of the scan has its row: hits and timings as the runner recorded them.
        await wait_for(pilot, lambda: rows_in(app.screen, "#rules") == len(report.stats))
        text = screen_text(app)
        assert f"{len(report.alerts)} new alert" in text and "Watcher: not running" in text
        files = app.screen.query_one("#files", DataTable)
        assert str(files.get_row_at(0)[0]) == "incoming/gw.jsonl"  # relative to the workspace


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_every_screen_fits_small_terminals(tui_workspace: Workspace, size) -> None:  # type: ignore[no-untyped-def]
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentsScreen)
                       and app.screen.query_one("#queue", FastTable).row_count == 3)
        steps = (("s", SqlScreen), ("escape", IncidentsScreen), ("w", SourcesScreen),
                 ("i", IncidentsScreen))
        for key, kind in steps:
            await pilot.press(key)
            await wait_for(pilot, lambda kind=kind: isinstance(app.screen, kind))
        app.open_incident(1)
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen))
        assert app.is_running


async def test_playbook_screen_runs_a_query_step_and_finishes_a_manual_one(
    tui_workspace: Workspace,
) -> None:
    from sentinel.store import progress, triage
    from sentinel.tui.screens.playbook import PlaybookScreen

    con = open_db(tui_workspace.state_db)
    try:
        triage.set_playbook(con, 1, "customer-pii-to-vendor")
    finally:
        con.close()
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentsScreen))
        app.open_playbook(1)
        await wait_for(pilot, lambda: isinstance(app.screen, PlaybookScreen)
                       and rows_in(app.screen, "#steps") > 3)
        assert "GDPR" in screen_text(app) or "left" in screen_text(app)  # a deadline shows
        await pilot.press("r")  # the first step: a query over the lake, masked evidence
        con = open_db(tui_workspace.state_db)
        try:
            await wait_for(pilot, lambda: "scope-exposure" in progress.states(con, 1))
            assert progress.states(con, 1)["scope-exposure"].state == "done"
            evidence = progress.evidence_of(con, [1])
            assert evidence and CARD not in evidence[0].content
        finally:
            con.close()
        table = app.screen.query_one("#steps", DataTable)
        table.move_cursor(row=2)  # `contain`, a manual step (waits for nothing but scope)
        await pilot.press("k")
        await pilot.press(*"handled by the key owner")
        await pilot.press("enter")
        con = open_db(tui_workspace.state_db)
        try:
            await wait_for(pilot, lambda: "contain" in progress.states(con, 1))
            assert progress.states(con, 1)["contain"].state == "skipped"
        finally:
            con.close()


async def test_vendors_are_read_from_the_lake_for_the_incidents_asked(
    tui_workspace: Workspace,
) -> None:
    from sentinel.tui import data
    from sentinel.tui.sessions import SharedSession

    lake = SharedSession(tui_workspace, "tui", state_tables=())
    try:
        assert data.vendors(tui_workspace, lake, [1, 3, 999]) == {1: "openai", 3: "openai"}
        assert data.vendors(tui_workspace, lake, []) == {}
    finally:
        lake.close()


async def test_the_text_filter_finds_a_vendor_of_an_incident_never_drawn(
    tmp_path: Path,
) -> None:
    """The vendor column is read for drawn rows only; the filter still matches every
    incident's vendors (all are looked up once a filter is typed)."""
    from sentinel.ingest.engine import ingest_paths
    from tests.conftest import litellm_line, write_lines
    from tests.functional.tui.conftest import alert

    ws = Workspace.init(tmp_path / "ws")
    lines = [litellm_line(0, custom_llm_provider="anthropic", model="claude-3-5-sonnet")]
    lines += [litellm_line(i) for i in range(1, 42)]
    ingest_paths(ws, [write_lines(tmp_path / "gw.jsonl", lines)])
    con = open_db(ws.state_db)
    try:  # the oldest incident (listed last, far below the screen) went to anthropic
        store.open_or_update(con, alert(1, "Sent to Claude", "low", "actor_user=u0",
                                        ["chatcmpl-00000000"]))
        for i in range(2, 42):
            store.open_or_update(con, alert(i, f"Routine {i}", "low", f"actor_user=x{i}",
                                            [f"chatcmpl-{i:08d}"]))
    finally:
        con.close()
    app = SentinelApp(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentsScreen)
                       and len(app.screen.rows) == 41 and app.screen.vendors_read)
        screen = app.screen
        assert 1 not in screen.vendors  # never drawn: its vendor was not read for the column
        await pilot.press("slash")
        await pilot.press(*"anthropic")
        await wait_for(pilot, lambda: [r[5] for r in queue_rows(app)] == ["Sent to Claude"])
        assert "reading vendors" not in screen_text(app)  # the lookup is over
        await pilot.press(*"x")  # no vendor, title or principal holds "anthropicx"
        await wait_for(pilot, lambda: queue_rows(app) == [])
