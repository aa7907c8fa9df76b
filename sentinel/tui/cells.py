"""How every screen shows an incident's severity, age and deadline: one rendering each.

The queue, the incident detail and the playbook stepper show the same three facts; they
read them from here so a responder sees one colour for "high" and one way of writing
"3h left" wherever they look. These are sentinel's own values (levels, durations), not
log text; log text goes through `sentinel.tui.safe`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.text import Text

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


def time_left(due: datetime | None, now: datetime, suffix: str = "") -> Text:
    """Time to a deadline (`4h left`, `overdue 2h`), red under `DEADLINE_WARNING`."""
    if due is None:
        return Text("—", style="dim")
    left = due - now
    if left.total_seconds() < 0:
        return Text("overdue " + short_age(-left), style="bold red")
    return Text(short_age(left) + suffix, style="bold red" if left < DEADLINE_WARNING else "")
