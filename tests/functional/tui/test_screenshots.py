"""The README's pictures (`make screenshots`, docs/screenshots.py) on a real demo workspace:
every main screen is saved, and none shows a stored PII value in clear."""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sentinel.workspace import Workspace

ROOT = Path(__file__).resolve().parents[3]
PICTURES = {"incidents", "incident", "event", "playbook", "sql", "sources"}


def screenshots() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "docs/screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.asyncio
async def test_the_readme_pictures_show_masking_and_no_pii(
    small_demo: tuple[Path, Any], tmp_path: Path
) -> None:
    shots = screenshots()
    ws = Workspace.open(small_demo[0])
    pictures = await shots.shoot(ws, tmp_path / "screens", (120, 40))
    assert {p.stem for p in pictures} == PICTURES
    values = shots.finding_values(ws)
    assert values  # the demo planted PII: the check has something to look for
    assert shots.leaks(ws, pictures) == []
    shown = {p.stem: shots.svg_text(p) for p in pictures}
    assert "****" in shown["event"] and "****" in shown["sql"]  # masking shows
    # The check sees a value that is shown, even split across two styled runs.
    value = sorted(values)[0]
    cut = len(value) // 2
    leaked = tmp_path / "leaked.svg"
    leaked.write_text(
        f'<svg><text x="0" y="20">{html.escape(value[:cut])}</text>'
        f'<text x="90" y="20">{html.escape(value[cut:])}</text></svg>', encoding="utf-8"
    )
    assert shots.leaks(ws, [leaked]) == [f"leaked.svg: {value!r}"]
