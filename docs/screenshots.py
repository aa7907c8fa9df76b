"""Save the README's SVG pictures of the dashboard from a workspace (`make screenshots`).

Drives the real app headless (Textual's pilot) through the main screens of the demo
workspace (`make run` builds it) and saves each as an SVG under `--out`: the queue, an
incident's summary, one of its events (the prompt masked), its playbook, the SQL console
over masked prompts, and the sources screen.

The pictures are published, so they are checked before the command succeeds: no value
of a PII finding stored in the lake may appear in any of them (`leaks`). Masking must
show, not just be claimed.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import sys
from pathlib import Path
from typing import Any

from textual.widgets import TabbedContent, TextArea

from sentinel.tui.app import SentinelApp
from sentinel.workspace import Workspace

SQL = (
    "SELECT regexp_extract(prompt_text, '.{0,30}[*]{4}.{0,20}') AS around_the_finding,\n"
    "       pii_types, model\n"
    "FROM events WHERE pii_count > 0 ORDER BY ts"
)
"""The console's picture: what prompts that held PII show around the finding (masked)."""


async def _settle(pilot: Any, condition: Any, seconds: float = 60) -> None:
    for _ in range(int(seconds / 0.1)):
        if condition():
            break
        await pilot.pause(0.1)
    await pilot.pause(0.5)


def _rows(app: SentinelApp, selector: str) -> int:
    found = app.screen.query(selector)
    return int(found.first().row_count) if found else -1


def _example(ws: Workspace) -> int:
    """The incident the pictures open: the first open one with a playbook and evidence."""
    from sentinel.store import incidents as store
    from sentinel.store.db import open_db

    con = open_db(ws.state_db)
    try:
        cases = store.list_incidents(con, include_closed=False)
    finally:
        con.close()
    with_book = [c for c in cases if c.playbook and c.event_count]
    chosen = min(with_book or cases, key=lambda c: (-store.severity_rank(c.severity),
                                                       c.incident_id))
    return chosen.incident_id


async def shoot(ws: Workspace, out: Path, size: tuple[int, int]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    app = SentinelApp(ws, label="demo workspace")
    saved: list[Path] = []
    incident = _example(ws)

    def save(name: str) -> None:
        saved.append(Path(app.save_screenshot(filename=f"{name}.svg", path=str(out))))

    async with app.run_test(size=size) as pilot:
        await _settle(pilot, lambda: _rows(app, "#queue") > 0
                      and getattr(app.screen, "vendors_read", False))
        save("incidents")
        app.open_incident(incident)
        await _settle(pilot, lambda: _rows(app, "#evidence") > 0)
        save("incident")
        app.screen.query_one(TabbedContent).active = "events"
        await _settle(pilot, lambda: True)
        app.screen.query_one("#evidence").focus()
        await pilot.press("enter")  # the first linked event: its prompt, masked
        await _settle(pilot, lambda: "****" in screen_text(app))
        save("event")
        await pilot.press("escape", "p")
        await _settle(pilot, lambda: _rows(app, "#steps") > 0)
        save("playbook")
        await pilot.press("escape", "escape", "s")
        await _settle(pilot, lambda: bool(app.screen.query(TextArea)))
        app.screen.query_one(TextArea).text = SQL
        await pilot.press("ctrl+r")
        await _settle(pilot, lambda: "row" in str(app.screen.query_one("#status").render()))
        app.screen.query_one(TextArea).cursor_blink = False
        save("sql")
        await pilot.press("escape", "w")
        await _settle(pilot, lambda: _rows(app, "#files") > 0)
        save("sources")
    return saved


def screen_text(app: SentinelApp) -> str:
    """The plain text of the screen's Static widgets (to wait for a masked prompt)."""
    from textual.widgets import Static

    return "\n".join(str(getattr(w.render(), "plain", "")) for w in app.screen.query(Static))


def svg_text(path: Path) -> str:
    """The text a Textual SVG shows, one line per terminal row (styled runs joined)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for match in re.finditer(r'<text[^>]* x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>',
                             path.read_text(encoding="utf-8"), re.S):
        text = html.unescape(match.group(3)).replace("\xa0", " ")
        rows.setdefault(float(match.group(2)), []).append((float(match.group(1)), text))
    return "\n".join("".join(t for _, t in sorted(parts)) for _, parts in sorted(rows.items()))


def finding_values(ws: Workspace) -> set[str]:
    """Every PII value the lake's findings point at, in clear (read to check, not shown)."""
    from sentinel.lake.query import open_lake

    con = open_lake(ws)
    try:
        rows = con.sql(
            "SELECT prompt_text, response_text, raw, pii_findings FROM events "
            "WHERE pii_count > 0"
        ).fetchall()
    finally:
        con.close()
    values = set()
    for prompt, response, raw, findings in rows:
        texts = {"prompt_text": prompt, "response_text": response, "raw": raw}
        for finding in findings or []:
            text = texts.get(finding["field"]) or ""
            value = text[finding["start"]:finding["end"]]
            if len(value.strip()) >= 6:
                values.add(value)
    return values


def leaks(ws: Workspace, pictures: list[Path]) -> list[str]:
    """`picture: value` for each finding value shown in clear in a picture."""
    values = finding_values(ws)
    found = []
    for picture in pictures:
        shown = svg_text(picture)
        found += [f"{picture.name}: {value!r}" for value in sorted(values) if value in shown]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", default="sentinel-data")
    parser.add_argument("--out", type=Path, default=Path("docs/screens"))
    parser.add_argument("--size", default="120x40")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    ws = Workspace.open(args.workspace)
    pictures = asyncio.run(shoot(ws, args.out, (width, height)))
    found = leaks(ws, pictures)
    if found:
        for line in found:
            print(f"unmasked PII in a picture: {line}", file=sys.stderr)
        raise SystemExit(1)
    for path in pictures:
        print(path)


if __name__ == "__main__":
    main()
