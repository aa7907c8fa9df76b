"""`yamlsafe.load` with libyaml (the fast path every scan takes) reads exactly what the
pure-Python loader reads: the same data, lines and columns, and the same refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.content import baselines_dir, playbooks_dir
from sentinel.respond import yamlsafe

SHIPPED = sorted([*baselines_dir().glob("*.yml"), *playbooks_dir().glob("*.yml")])
BAD = {
    "alias": "a: &x [1, 2]\nb: *x\n",
    "anchor only": "a: &x 1\n",
    "alias bomb": "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
    "unclosed": "name: x\ntitle: [unclosed\n",
    "duplicate key": "a: 1\nb: 2\na: 3\n",
    "number key": "1: one\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "tab": "a:\n\tb: 1\n",
    "empty": "",
}


def _both(text: str, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    results: list[object] = []
    for fast in (yamlsafe._FAST, None):
        monkeypatch.setattr(yamlsafe, "_FAST", fast)
        try:
            doc = yamlsafe.load(text, what="baselines")
            results.append((doc.data, doc.lines, doc.columns))
        except yamlsafe.YamlProblem as exc:
            kind = "anchors" if "anchors and aliases" in exc.message else exc.message[:12]
            results.append(("problem", kind, exc.line))
    return results


def test_libyaml_is_the_fast_path_here() -> None:
    assert yamlsafe._FAST is not None


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_files_read_the_same(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, pure = _both(path.read_text(), monkeypatch)
    assert fast == pure


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_are_refused_the_same(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, pure = _both(BAD[name], monkeypatch)
    assert isinstance(fast, tuple) and fast[0] == "problem", fast
    assert fast == pure
