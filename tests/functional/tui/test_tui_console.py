"""The SQL console's privacy through the real app: every PII type masked, reveal audited.

The console's grid shows what the session's masked views return and passes the rows it
draws through the output-side net (`sentinel.tui.grid`). These tests read the cells as
the grid draws them, for every row.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import Static, TextArea

from sentinel.ingest.engine import ingest_paths
from sentinel.output import cell_text
from sentinel.pii.catalog import default_catalog
from sentinel.store import audit
from sentinel.store.db import open_db
from sentinel.tui.app import SentinelApp
from sentinel.tui.screens.sql import ResultGrid, SqlScreen
from sentinel.workspace import Workspace
from tests.conftest import litellm_line, write_lines
from tests.functional.tui.conftest import CARD
from tests.unit.pii.test_catalog_examples import EXAMPLES

pytestmark = pytest.mark.asyncio

CUSTOM = ("employee_id", "staff EMP-482913 asked", "EMP-482913")
CUSTOM_DETECTOR = '\n[[pii.detectors]]\nname = "employee_id"\npattern = "EMP-[0-9]{6}"\n'
PLANTED = [(kind, text, value) for kind, cases in EXAMPLES.items() for text, value, _ in cases]
PLANTED.append(CUSTOM)


async def wait_for(pilot: Any, condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the app did not get there in time")
        await pilot.pause(0.05)


def status(screen: SqlScreen) -> str:
    rendered = screen.query_one("#status", Static).render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


async def run(pilot: Any, app: SentinelApp, query: str) -> list[list[str]]:
    """Run `query` in the console and return every row as the grid draws it."""
    if not isinstance(app.screen, SqlScreen):
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
    screen = app.screen
    assert isinstance(screen, SqlScreen)
    before = screen.result
    screen.query_one(TextArea).text = query
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: screen.result is not before and screen.complete
                   and "row" in status(screen))
    grid = screen.query_one("#result", ResultGrid)
    return [[str(cell) for cell in grid.get_row_at(i)] for i in range(grid.row_count)]


@pytest.fixture()
def pii_workspace(tmp_path: Path) -> Workspace:
    """One event per example of every detector (built-in and a custom one)."""
    ws = Workspace.init(tmp_path / "ws")
    with ws.config_path.open("a", encoding="utf-8") as config:
        config.write(CUSTOM_DETECTOR)
    ws = Workspace.open(ws.root)
    lines = [litellm_line(i, prompt=text) for i, (_, text, _) in enumerate(PLANTED)]
    ingest_paths(ws, [write_lines(tmp_path / "gw.jsonl", lines)])
    return ws


async def test_the_plants_cover_every_type_the_masker_knows() -> None:
    known = {detector.name for detector in default_catalog().detectors} | {CUSTOM[0]}
    assert {kind for kind, _, _ in PLANTED} == known


async def test_console_output_is_masked_for_every_pii_type(pii_workspace: Workspace) -> None:
    app = SentinelApp(pii_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        rows = await run(pilot, app, "SELECT prompt_text, response_text, raw FROM events")
        assert len(rows) == len(PLANTED)
        shown = "\n".join("\t".join(row) for row in rows)
        for kind, _, value in PLANTED:
            for form in {value, cell_text(value)}:
                assert form not in shown, f"{kind} shown in clear"
        assert "card ****1111" in shown and "employee_id" in shown


async def test_a_value_a_query_builds_is_caught_by_the_net(pii_workspace: Workspace) -> None:
    """No stored text holds this card; the query assembles it, the drawn row is masked."""
    app = SentinelApp(pii_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        rows = await run(pilot, app, "SELECT 'card ' || '4111 1111 ' || '1111 1111' AS built")
        assert rows and CARD not in rows[0][0] and "****1111" in rows[0][0]


async def test_console_reveal_is_audited_and_shows_clear_text(pii_workspace: Workspace) -> None:
    app = SentinelApp(pii_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        query = "SELECT prompt_text FROM events WHERE prompt_text LIKE '%1111%'"
        rows = await run(pilot, app, query)
        assert rows and not any(CARD in row[0] for row in rows)
        screen = app.screen
        assert isinstance(screen, SqlScreen)
        masked = screen.result
        await pilot.press("ctrl+o")
        await pilot.press(*"chargeback dispute")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.result is not masked and screen.complete)
        grid = screen.query_one("#result", ResultGrid)
        shown = [str(grid.get_row_at(i)[0]) for i in range(grid.row_count)]
        assert any(CARD in cell for cell in shown)
    con = open_db(pii_workspace.state_db)
    try:
        reveals = [e for e in audit.entries(con) if e.action == "reveal"]
    finally:
        con.close()
    assert reveals and reveals[-1].detail["reason"] == "chargeback dispute"
    assert reveals[-1].detail["command"] == "tui sql"


HIGHLIGHTED = (
    "SELECT actor_key, count(*)  AS n, 'a  b' AS s -- two  spaces\n"
    "FROM events WHERE pii_count >= 1 AND model <> 'x'\n"
    "GROUP BY 1 ORDER BY 1 DESC"
)


async def test_the_editor_draws_the_query_it_runs(pii_workspace: Workspace) -> None:
    """Highlighted, every line is drawn with exactly the query's characters, in order."""
    app = SentinelApp(pii_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        editor = app.screen.query_one(TextArea)
        editor.text = HIGHLIGHTED
        editor.cursor_blink = False
        await pilot.pause(0.2)
        assert editor.language == "sql"
        for y, line in enumerate(HIGHLIGHTED.split("\n")):
            strip = editor.render_line(y)
            assert strip.text[editor.gutter_width:].rstrip() == line
        def style_of(word: str) -> Any:  # on line 1: the cursor sits on line 0
            return next(s.style for s in editor.render_line(1) if word in s.text)

        assert style_of("FROM") != style_of("events")  # highlighted, not plain


async def test_console_sessions_compute_little_ahead_and_stay_sandboxed(
    pii_workspace: Workspace,
) -> None:
    from sentinel.exceptions import QueryError
    from sentinel.tui import sessions

    console = sessions.Console(pii_workspace)
    try:
        setting = "SELECT current_setting('streaming_buffer_size') AS s"
        for reason in (None, "checking the buffer"):
            result = console.run(setting, reason)
            shown = result.fetch(10).column("s").to_pylist()[0]
            assert shown in ("1.0 KiB", "1KB", "1000 bytes", "1.0 KB"), shown
        # The setting is made before the sandbox locks the configuration, not after.
        with pytest.raises(QueryError):
            console.run("SET streaming_buffer_size = '1GB'")
    finally:
        console.close()


async def test_a_query_typed_while_the_lake_opens_runs_once_it_is_open(
    tui_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The editor takes keys at once; the session opens in a worker (held open here until
    released, as a 10M-event lake holds it for seconds) and a query run meanwhile waits
    for it, then runs."""
    import threading

    from sentinel.tui import sessions

    release = threading.Event()
    opening = sessions.Console.schema

    def slow_schema(self: sessions.Console) -> dict[str, list[tuple[str, str]]]:
        with self.lock:  # what a slow open holds: the session's lock
            release.wait(30)
            return opening(self)

    monkeypatch.setattr(sessions.Console, "schema", slow_schema)
    app = SentinelApp(tui_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        assert isinstance(screen, SqlScreen)
        await wait_for(pilot, lambda: "opening the lake" in status(screen))
        editor = screen.query_one(TextArea)
        editor.text = ""
        await pilot.press(*"SELECT count(*) AS n FROM events")  # typed while it opens
        assert editor.text == "SELECT count(*) AS n FROM events" and not screen.lake_open
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "then running" in status(screen))
        await pilot.pause(0.2)
        assert screen.result is None  # nothing ran: the session is not open yet
        release.set()
        await wait_for(pilot, lambda: screen.result is not None and screen.complete
                       and "row" in status(screen))
        grid = screen.query_one("#result", ResultGrid)
        assert [str(cell) for cell in grid.get_row_at(0)] == ["7"] and screen.lake_open

