"""The one place sentinel reaches past google-re2's public API, with a public fallback.

`re2._Regexp.finditer` wraps every match in an object that decodes offsets group by
group; the extension's own `Match` returns every group's byte span at once, at a third
of the cost. That call and the anchor constant are private: they are looked up once
here, and if a google-re2 release renames them, `all_spans` falls back to `finditer`
(the same spans, slower) instead of failing. The dependency is bounded below 2 in
`pyproject.toml`; `tests/unit/pii/test_re2compat.py` checks both paths agree.
"""

from __future__ import annotations

from typing import Any

import re2

Regexp = Any
"""A compiled google-re2 pattern (`re2.compile(...)`); its class is private."""

try:
    _UNANCHORED: Any = re2._Anchor.UNANCHORED
except AttributeError:  # a google-re2 without the private enum: use the public path
    _UNANCHORED = None


def fast_path(engine: Regexp) -> bool:
    """Whether `engine` offers the private all-groups `Match` this module uses."""
    return _UNANCHORED is not None and hasattr(getattr(engine, "_regexp", None), "Match")


def all_spans(engine: Regexp, data: bytes) -> list[list[tuple[int, int]]]:
    """The byte spans of every group of each successive match of `engine` in `data`.

    A group that did not take part is `(-1, -1)`. Empty matches step over one byte.
    """
    if not fast_path(engine):
        return public_spans(engine, data)
    match = engine._regexp.Match
    pos, end = 0, len(data)
    found: list[list[tuple[int, int]]] = []
    while True:
        spans = match(_UNANCHORED, data, pos, end)
        start, stop = spans[0]
        if start < 0:
            return found
        found.append(spans)
        if stop == pos:  # empty match: step over one byte
            if pos == end:
                return found
            pos += 1
        else:
            pos = stop


def public_spans(engine: Regexp, data: bytes) -> list[list[tuple[int, int]]]:
    """`all_spans` through the public `finditer` (the fallback, and the reference)."""
    groups = engine.groups + 1
    return [[m.span(g) for g in range(groups)] for m in engine.finditer(data)]
