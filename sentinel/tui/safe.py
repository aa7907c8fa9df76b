"""Log text as something a terminal can show without obeying it.

A prompt can hold Rich markup (`[bold red]`), Textual actions (`[@click=app.quit]`),
ANSI/OSC escapes or a megabyte on one line. Everything shown from a log goes through
`plain()`: control characters become visible escapes (the same rule as the CLI's
`output.printable`) and the result is a `Text`, which Textual never parses as markup.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from sentinel.output import cell_text, printable

MAX_CELL = 200
"""A table cell shows at most this many characters (a 1 MB prompt stays one row)."""
MAX_BODY = 20_000
"""A prompt or response view shows at most this many characters, then says how many more."""


def plain(value: Any, limit: int = MAX_CELL, style: str = "") -> Text:
    """`value` as one line of literal text, cut at `limit` characters."""
    text = "NULL" if value is None else cell_text(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def body(value: Any) -> Text:
    """Multi-line log text (a prompt), newlines kept, everything else escaped."""
    if value is None:
        return Text("(none)", style="dim")
    raw = str(value)
    shown = raw[:MAX_BODY]
    lines = [printable(line) for line in shown.split("\n")]
    text = Text("\n".join(lines))
    if len(raw) > MAX_BODY:
        text.append(f"\n… {len(raw) - MAX_BODY:,} more characters", style="dim")
    return text


def title_bar(screen: str, app: Any) -> Text:
    """The one-line bar atop every screen: what this is and which workspace it shows."""
    bar = Text(" sentinel ", style="bold reverse")
    bar.append(f" {screen} ", style="bold")
    bar.append_text(plain(app.label, 200, "dim"))
    return bar
