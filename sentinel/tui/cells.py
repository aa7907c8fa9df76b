"""How every screen shows an incident's severity, age and deadline: one rendering each.

The queue, the incident detail and the playbook stepper show the same three facts; they
read them from here so a responder sees one colour for "high" and one way of writing
"3h left" wherever they look. These are sentinel's own values (levels, durations), not
log text; log text goes through `sentinel.tui.safe`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from sentinel.store import incidents as store

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "informational": "dim",
}
DEADLINE_WARNING = timedelta(hours=12)
"""A deadline closer than this is shown in red."""


def severity(level: str) -> Text:
    return Text(level, style=SEVERITY_STYLE.get(level, ""))


def short_age(delta: timedelta) -> str:
    """A duration in its largest whole unit: `3d`, `5h`, `12m`, `40s` (negative: `-5h`)."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "-" + short_age(-delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def age(first_seen: str, now: datetime) -> Text:
    """How long ago an incident's first event happened (`first_seen`, ISO 8601)."""
    return Text(short_age(now - store.parse_ts(first_seen)))


def ago(ts: str | datetime | None, now: datetime) -> Text:
    """How long before `now` something sentinel recorded happened (`5m ago`); `—` never."""
    if ts is None or ts == "":
        return Text("—", style="dim")
    moment = ts if isinstance(ts, datetime) else store.parse_ts(ts)
    return Text(short_age(now - moment) + " ago")


def stamp(ts: datetime | None) -> Text:
    """An event time to the minute, in UTC (`2025-01-24 09:20`): the lake's `ts` column."""
    if ts is None:
        return Text("—", style="dim")
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return Text(f"{ts:%Y-%m-%d %H:%M}")


def time_left(due: datetime | None, now: datetime, suffix: str = "") -> Text:
    """Time to a deadline (`4h left`, `overdue 2h`), red under `DEADLINE_WARNING`."""
    if due is None:
        return Text("—", style="dim")
    left = due - now
    if left.total_seconds() < 0:
        return Text("overdue " + short_age(-left), style="bold red")
    return Text(short_age(left) + suffix, style="bold red" if left < DEADLINE_WARNING else "")


def fill(
    table: DataTable[Any], labels: Sequence[str], rows: Sequence[Sequence[Text]],
    keys: Sequence[str] | None = None, *, fit: bool = False,
) -> None:
    """Replace `table`'s columns and rows, each column as wide as its widest cell.

    Textual's DataTable measures new rows on its next idle, but a row drawn before that
    stays cached at the headers' widths (the cache key does not change when the widths
    do): a table filled from a worker sometimes showed `Sco…` for a whole title until
    the cursor moved. Widths given up front leave nothing to measure later. Its height
    is still worked out on idle, and a widget idles only after a message of its own:
    filled from its screen's handler, a table could keep the height of no rows (absent
    from the screen) until something touched it, so it is prompted here.

    `fit`: the table is as tall as its rows (within its CSS `max-height`), set here rather
    than left to `height: auto`, which sometimes laid a just-filled table out at the
    height of no rows.
    """
    table.clear(columns=True)
    for index, label in enumerate(labels):
        width = max([len(label), *(row[index].cell_len for row in rows)])
        table.add_column(label, width=width)
    for number, row in enumerate(rows):
        table.add_row(*row, key=keys[number] if keys is not None else None)
    if fit:
        table.styles.height = len(rows) + (1 if table.show_header else 0)
    table.check_idle()
