"""The dashboard on a large workspace: real screen states timed with Textual's headless pilot.

A workspace of N events (default 10,000,000) written straight into the lake as committed
batches (the generator of `bench/scan.py`, imported, not copied) and M incidents (default
10,000) opened through the store's own `open_or_update`, a third of them with a playbook
(so the queue's deadline column has work to do). Then, each in a fresh app driven by
`App.run_test()` at 120×40, the time from the action to the screen state a user waits for:

  startup   app start → the incident list filled with every open incident and drawn.
            Target < 1 s. (The imports before it, timed in a fresh process, are reported
            beside it.)
  groupby   `SELECT source, count(*) … GROUP BY` over all events, typed into the SQL
            console once it is ready (its schema sidebar filled; the time to that is
            reported beside) and run → the result rows in the grid. Target < 2 s.
  select    `SELECT * FROM events` → the first rows in the grid. Target < 1 s, with every
            row reachable (fetched lazily as the analyst scrolls, never capped).
  scroll    `SELECT * FROM events LIMIT 1000000`, then `ctrl+end` → the grid's cursor on
            row 1,000,000 with that row drawn.
  typeahead `s`, the `GROUP BY` typed as soon as the editor has the focus (a key event a
            character) and run without waiting for the console's session: seconds from
            `s` to the editor focused, to the last character in it and to the results
            drawn, and the event loop's longest stall meanwhile.

The workspace is kept under `--work` and reused (`--rebuild` starts over). Run under
`flock /work/bench.lock` on a shared machine; each figure is printed with the load average
at the time it was taken.

    flock /work/bench.lock .venv/bin/python bench/tui.py
    flock /work/bench.lock .venv/bin/python bench/tui.py --events 1000000 --only startup
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan import START, init, write_lake  # noqa: E402  (bench/scan.py: the lake generator)

SIZE = (120, 40)
PLAYBOOKS = ("secret-in-prompt", "customer-pii-to-vendor", "bulk-customer-data")
LEVELS = ("critical", "high", "medium", "low", "informational")
GROUP_BY = ("SELECT source, count(*) AS events, sum(pii_count) AS findings "
            "FROM events GROUP BY source ORDER BY events DESC")


def build(root: Path, events: int, incidents: int) -> None:
    """A workspace with `events` generated events and `incidents` incidents over them."""
    init(root)
    started = time.perf_counter()
    batches = write_lake(root, 0, events, days=30)
    print(f"build: {events:,} events in {batches} batches "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    started = time.perf_counter()
    open_incidents(root, events, incidents)
    print(f"build: {incidents:,} incidents ({time.perf_counter() - started:.1f} s)",
          file=sys.stderr)
    (root / "bench-built.json").write_text(json.dumps({"events": events,
                                                       "incidents": incidents}))


def open_incidents(root: Path, events: int, count: int) -> None:
    """`count` incidents, one alert each, linked to three generated events apiece."""
    from sentinel.store import incidents as store
    from sentinel.store.db import open_db
    from sentinel.workspace import Workspace

    ws = Workspace.open(root)
    con = open_db(ws.state_db)
    step = max(1, events // max(count, 1))
    try:
        for n in range(count):
            first = START + timedelta(seconds=n * 30 * 86400 // max(count, 1))
            ids = [f"ev-{(n * step + k) % max(events, 1)}" for k in range(3)]
            alert = store.Alert(
                alert_id=f"bench-{n}", rule_id=f"bench-rule-{n % 40}",
                rule_title=f"Bench rule {n % 40}: card sent to a vendor",
                level=LEVELS[n % len(LEVELS)], group_key=f"actor_key=key-{n % 40}",
                first_ts=first.isoformat(), last_ts=(first + timedelta(minutes=5)).isoformat(),
                event_count=len(ids),
                events=tuple(store.AlertEvent(event_id=e, ts=first.isoformat(), source="litellm")
                             for e in ids),
            )
            # A distinct group key per incident would merge nothing either; a window of
            # zero keeps each alert its own incident, as 10,000 distinct pages would be.
            store.open_or_update(con, alert, window=timedelta(0),
                                 playbook=PLAYBOOKS[n % 3] if n % 3 == 0 else None)
    finally:
        con.close()


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def send_key(app: Any, key: str) -> None:
    """`key` as the terminal sends it to the app.

    Not `pilot.press`: it returns only once the process looks idle (two waits of up to
    1 s each), and while a worker or DuckDB thread is busy that wait was timed as if the
    app were slow to show its rows.
    """
    from textual import events

    event = events.Key(key, None)
    event.set_sender(app)
    app._driver.send_message(event)  # noqa: SLF001


async def until(ready: Callable[[], bool], limit: float = 600.0) -> float:
    """Seconds until `ready()` holds, checked every 5 ms.

    A plain sleep, not `pilot.pause()`: the app runs on this event loop, so sleeping
    lets it work, while a pause waits for the app to go idle (up to half a second here).
    """
    started = time.perf_counter()
    while not ready():
        if time.perf_counter() - started > limit:
            raise SystemExit(f"not ready after {limit:.0f} s")
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def bench_startup(root: Path, expected: int) -> dict[str, Any]:
    from textual_fastdatatable import DataTable

    from sentinel.tui.app import SentinelApp
    from sentinel.workspace import Workspace

    started = time.perf_counter()
    app = SentinelApp(Workspace.open(root))
    async with app.run_test(size=SIZE):
        def ready() -> bool:
            found = app.screen.query("#queue")
            if not found:
                return False
            table = found.first(DataTable)
            return table.row_count >= expected and bool(table.render_line(1).text.strip())
        await until(ready)
        seconds = time.perf_counter() - started
        rows = app.screen.query_one("#queue", DataTable).row_count
    return {"seconds": round(seconds, 3), "rows": rows, "load": load(),
            "imports_seconds": import_seconds()}


def import_seconds() -> float:
    """What `sentinel tui` pays before the app starts: importing it, in a fresh process."""
    code = ("import time; t = time.perf_counter(); import sentinel.tui.app, "
            "sentinel.tui.screens.incidents; print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return round(float(out), 3)


async def console(root: Path, query: str, then: Callable[[Any, Any], Any] | None = None,
                  ) -> dict[str, Any]:
    """Open the console, run `query`; seconds from the key to its first rows on screen."""
    from textual.widgets import TextArea, Tree
    from textual_fastdatatable import DataTable as FastTable

    from sentinel.tui.app import SentinelApp
    from sentinel.tui.screens.sql import SqlScreen
    from sentinel.workspace import Workspace

    app = SentinelApp(Workspace.open(root))
    async with app.run_test(size=SIZE) as pilot:
        opened = time.perf_counter()
        await pilot.press("s")
        await until(lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        assert isinstance(screen, SqlScreen)
        # The console is ready when its schema sidebar is filled (its session is open):
        # an analyst reads it, or types a query, before pressing the run key.
        await until(lambda: len(screen.query_one(Tree).root.children) > 0)
        ready = time.perf_counter() - opened
        screen.query_one(TextArea).text = query
        await pilot.pause()

        def shown() -> bool:
            table = screen.query_one("#result", FastTable)
            return screen.shown_rows is not None and table.row_count > 0 and bool(
                table.render_line(2).text.strip())
        started = time.perf_counter()
        send_key(app, "ctrl+r")
        await until(shown)
        seconds = time.perf_counter() - started
        figure = {"seconds": round(seconds, 3), "console_ready_seconds": round(ready, 3),
                  "load": load(),
                  "rows_held": screen.query_one("#result", FastTable).row_count}
        if then is not None:
            figure.update(await then(pilot, screen))
    return figure


def type_text(app: Any, text: str) -> None:
    """`text` typed, one key event a character, as a terminal sends them."""
    from textual import events
    from textual.keys import _character_to_key

    for character in text:
        event = events.Key(_character_to_key(character), character)
        event.set_sender(app)
        app._driver.send_message(event)  # noqa: SLF001


async def typeahead(root: Path, query: str) -> dict[str, Any]:
    """The console used at once: `s`, the query typed and run without waiting for its
    session to open. Seconds from `s` to the last typed character in the editor and to the
    results drawn, and the longest the app's event loop was held meanwhile (a keystroke
    waits that long to show)."""
    from textual.widgets import TextArea
    from textual_fastdatatable import DataTable as FastTable

    from sentinel.tui.app import SentinelApp
    from sentinel.tui.screens.sql import SqlScreen
    from sentinel.workspace import Workspace

    app = SentinelApp(Workspace.open(root))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: bool(app.screen.query("#queue")))
        await pilot.pause(1.0)  # the queue settled: what follows is the console's alone
        gaps: list[float] = []
        watching = True

        async def watch() -> None:
            last = time.perf_counter()
            while watching:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        watcher = asyncio.create_task(watch())
        opened = time.perf_counter()
        send_key(app, "s")
        # Typed once the editor has the focus (a few frames after `s`), not before: keys
        # sent in the same instant as `s` reach the console before it is mounted.
        await until(lambda: isinstance(app.focused, TextArea))
        screen = app.screen
        assert isinstance(screen, SqlScreen)
        editor = screen.query_one(TextArea)
        focused = time.perf_counter() - opened
        editor.text = ""
        type_text(app, query)
        await until(lambda: editor.text == query)
        typed = time.perf_counter() - opened
        send_key(app, "ctrl+r")

        def shown() -> bool:
            table = screen.query_one("#result", FastTable)
            return screen.shown_rows is not None and table.row_count > 0 and bool(
                table.render_line(2).text.strip())
        await until(shown)
        seconds = time.perf_counter() - opened
        watching = False
        await watcher
    return {"focused_seconds": round(focused, 3), "typed_seconds": round(typed, 3),
            "seconds": round(seconds, 3),
            "longest_stall": round(max(gaps) - 0.005, 3), "load": load()}


async def scroll_to_end(pilot: Any, screen: Any) -> dict[str, Any]:
    from textual_fastdatatable import DataTable as FastTable

    table = screen.query_one("#result", FastTable)
    table.focus()
    await pilot.pause()
    started = time.perf_counter()
    send_key(screen.app, "ctrl+end")

    def at_end() -> bool:
        # The cursor's own line, wherever the grid put it: the widget's last line can be
        # blank (the horizontal scrollbar), which is what kept an earlier version of this
        # check from ever holding.
        line = table.cursor_row + table.header_height - int(table.scroll_y)
        return (screen.complete and table.cursor_row == table.row_count - 1
                and 0 <= line < table.size.height
                and bool(table.render_line(line).text.strip()))
    await until(at_end)
    return {"end_seconds": round(time.perf_counter() - started, 3), "end_load": load(),
            "end_row": table.cursor_row + 1}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    root: Path = args.work
    figures: dict[str, Any] = {}
    only = set(args.only or ("startup", "groupby", "select", "scroll", "typeahead"))
    con = sqlite3.connect(root / "state.db")
    open_cases = con.execute(
        "SELECT count(*) FROM incidents WHERE merged_into IS NULL "
        "AND status IN ('new', 'acknowledged', 'contained')").fetchone()[0]
    con.close()
    if "startup" in only:
        figures["startup"] = await bench_startup(root, open_cases)
        print("startup", figures["startup"], file=sys.stderr)
    if "groupby" in only:
        figures["groupby"] = await console(root, GROUP_BY)
        print("groupby", figures["groupby"], file=sys.stderr)
    if "select" in only:
        figures["select"] = await console(root, "SELECT * FROM events")
        print("select", figures["select"], file=sys.stderr)
    if "scroll" in only:
        figures["scroll"] = await console(root, "SELECT * FROM events LIMIT 1000000",
                                          scroll_to_end)
        print("scroll", figures["scroll"], file=sys.stderr)
    if "typeahead" in only:
        figures["typeahead"] = await typeahead(root, GROUP_BY)
        print("typeahead", figures["typeahead"], file=sys.stderr)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/sentinel-bench-tui"))
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--only", choices=["startup", "groupby", "select", "scroll",
                                           "typeahead"],
                        action="append")
    args = parser.parse_args()
    built = args.work / "bench-built.json"
    wanted = {"events": args.events, "incidents": args.incidents}
    if args.rebuild or not built.is_file() or json.loads(built.read_text()) != wanted:
        if args.work.exists():
            import shutil

            shutil.rmtree(args.work)
        build(args.work, args.events, args.incidents)
    if args.build_only:
        return
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
