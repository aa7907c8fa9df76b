"""Text tables that fit the terminal: how `--format table` lays out a query result.

A result is laid out for a width (the terminal's, or `COLUMNS` when output is piped; no
limit when neither is known). Columns keep their natural width while the row fits; when
it does not, the widest columns give way first, down to a floor. When even the floors do
not fit, each row is shown as a block of `column | value` lines, the way `psql \\x` does,
so a wide `SELECT *` stays readable in 80 columns.

Invariants:
- Cells arrive as already escaped single-line text (`output.cell_text`): this module only
  measures and shortens, it never interprets a character.
- A shortened cell keeps its head and its tail around one "…": the end of an ARN (the
  user name) or of an e-mail address stays visible.
- Widths are terminal cells (wide CJK characters count two), measured with `wcwidth`,
  except printable ASCII, one cell a character (what wcwidth says of it), counted
  directly: a table of ids, levels, times and hints never imports wcwidth (~20 ms).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import TextIO

ELLIPSIS = "…"
GAP = "  "
MAX_CELL_WIDTH = 60
"""With no width to fit (piped, no COLUMNS), a cell is still cut at this many cells."""
MIN_CELL_WIDTH = 10
"""A column is not squeezed narrower than this (or its header, if shorter) before the
layout switches to one block per record."""


def cells(text: str) -> int:
    """Terminal cells `text` takes (escaped text has no control characters)."""
    if text.isascii() and text.isprintable():
        return len(text)
    from wcwidth import wcswidth, wcwidth

    width = wcswidth(text)
    if width >= 0:
        return width
    # A control character (only in unescaped text) makes wcswidth give up: count the
    # rest character by character, the way `_take` does, so the two always agree.
    return sum(max(wcwidth(char), 0) for char in text)


def shorten(text: str, width: int) -> str:
    """`text` cut to at most `width` cells, keeping its head and tail around `…`."""
    if cells(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    room = width - 1
    head_room = (room + 1) // 2
    head = _take(text, head_room)
    tail = _take(text[::-1], room - cells(head))[::-1]
    return head + ELLIPSIS + tail


def _take(text: str, width: int) -> str:
    taken, used = [], 0
    for char in text:
        size = max(cells(char), 0)
        if used + size > width:
            break
        taken.append(char)
        used += size
    return "".join(taken)


def output_width(stream: TextIO) -> int | None:
    """The width to fit: the terminal's, else `COLUMNS`, else None (no limit)."""
    env = os.environ.get("COLUMNS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        return shutil.get_terminal_size((80, 24)).columns
    return None


def fit_widths(natural: Sequence[int], floors: Sequence[int], width: int) -> list[int] | None:
    """Column widths that fit `width` (with gaps), or None when the floors alone do not."""
    gaps = len(GAP) * max(len(natural) - 1, 0)
    widths = list(natural)
    if sum(widths) + gaps <= width:
        return widths
    if sum(floors) + gaps > width:
        return None
    # Take one cell at a time from the widest column still above its floor.
    excess = sum(widths) + gaps - width
    while excess > 0:
        widest = max(
            (i for i in range(len(widths)) if widths[i] > floors[i]), key=lambda i: widths[i]
        )
        widths[widest] -= 1
        excess -= 1
    return widths


def render(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Sequence[bool],
    width: int | None,
) -> list[str]:
    """The lines of a table (or of record blocks when it cannot fit `width`)."""
    limit = MAX_CELL_WIDTH if width is None else max(width, 1)
    natural = [
        min(max([cells(h), *(cells(r[i]) for r in rows)]), limit) for i, h in enumerate(headers)
    ]
    if width is None:
        widths: list[int] | None = natural
    else:
        floors = [min(n, max(MIN_CELL_WIDTH, min(cells(h), MAX_CELL_WIDTH)))
                  for n, h in zip(natural, headers, strict=True)]
        widths = fit_widths(natural, floors, width)
    if widths is None:
        assert width is not None
        return _records(headers, rows, width)
    return _grid(headers, rows, numeric, widths)


def _grid(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool],
    widths: Sequence[int],
) -> list[str]:
    def line(values: Sequence[str]) -> str:
        padded = []
        for value, size, right in zip(values, widths, numeric, strict=True):
            value = shorten(value, size)
            pad = " " * (size - cells(value))
            padded.append(pad + value if right else value + pad)
        return GAP.join(padded).rstrip()

    out = [line(headers), GAP.join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    return out


def _records(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    label = min(max(cells(h) for h in headers), max(width // 3, 1))
    value_width = max(width - label - 3, 1)
    out: list[str] = []
    for number, row in enumerate(rows, start=1):
        title = f"-[ RECORD {number} ]"
        out.append(title + "-" * max(width - cells(title), 0))
        for header, value in zip(headers, row, strict=True):
            name = shorten(header, label)
            line = f"{name}{' ' * (label - cells(name))} | {shorten(value, value_width)}"
            out.append(line.rstrip())
    return out
