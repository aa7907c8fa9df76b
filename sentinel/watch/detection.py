"""Detection on arrival: the incremental scan, run after each pass that committed events.

The scan itself (rules since their watermark -> alerts -> incidents) belongs to
`sentinel scan` (issue 10); the daemon only calls it with the sources that received
events, so a new line becomes an alert within one pass. `scan_hook` returns that
function, or None while the scan is not part of this installation; the daemon then
logs once that detection on arrival is off and keeps ingesting.
"""

from __future__ import annotations

from collections.abc import Callable

from sentinel.workspace import Workspace

ScanHook = Callable[[Workspace, frozenset[str]], int]
"""(workspace, sources with new events) -> number of new alerts."""


def scan_hook() -> ScanHook | None:
    """The incremental scan entry point, when available (wired once `sentinel scan` lands)."""
    return None
