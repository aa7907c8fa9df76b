"""Save the README's SVG pictures of the dashboard from a workspace (`make screenshots`).

Drives the real app headless (Textual's pilot) through the main screens of the demo
workspace and saves each as an SVG under `--out`. Run `make run` first so the workspace
has data, a scan and incidents.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, TextArea

from sentinel.tui.app import SentinelApp
from sentinel.workspace import Workspace


async def _settle(pilot: Any, condition: Any, seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.1)):
        if condition():
            break
        await pilot.pause(0.1)
    await pilot.pause(0.5)


def _rows(app: SentinelApp, selector: str) -> int:
    found = app.screen.query(selector)
    return found.first().row_count if found else -1


async def shoot(ws: Workspace, out: Path, size: tuple[int, int]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    app = SentinelApp(ws, label="demo workspace")
    saved: list[Path] = []

    def save(name: str) -> None:
        saved.append(Path(app.save_screenshot(filename=f"{name}.svg", path=str(out))))

    async with app.run_test(size=size) as pilot:
        await _settle(pilot, lambda: _rows(app, "#queue") > 0)
        save("incidents")
        table = app.screen.query_one("#queue", DataTable)
        if table.row_count:
            await pilot.press("enter")
            await _settle(pilot, lambda: _rows(app, "#evidence") > 0)
            save("incident")
            await pilot.press("escape")
        await pilot.press("s")
        await _settle(pilot, lambda: bool(app.screen.query(TextArea)))
        app.screen.query_one(TextArea).text = (
            "SELECT actor_user, vendor, count(*) AS findings FROM findings\n"
            "GROUP BY ALL ORDER BY findings DESC"
        )
        await pilot.press("ctrl+r")
        await _settle(pilot, lambda: "row" in str(app.screen.query_one("#status").render()))
        app.screen.query_one(TextArea).cursor_blink = False
        save("sql")
        await pilot.press("escape", "w")
        await _settle(pilot, lambda: _rows(app, "#files") > 0)
        save("sources")
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", default="sentinel-data")
    parser.add_argument("--out", type=Path, default=Path("docs/screens"))
    parser.add_argument("--size", default="120x40")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    for path in asyncio.run(shoot(Workspace.open(args.workspace), args.out, (width, height))):
        print(path)


if __name__ == "__main__":
    main()
