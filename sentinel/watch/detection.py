"""Detection on arrival: the incremental scan, run after each pass that committed events.

The scan itself (rules since their watermark -> alerts -> incidents) belongs to
`sentinel scan` (issue 10, `sentinel.scan.runner.run_scan`); the daemon only calls it,
so a new line becomes an alert, and an incident, within one pass. `scan_hook` returns
that call, or None while the scan is not part of this installation: the daemon then
logs `detection=off` at start and keeps ingesting. Rules and playbooks are read by the
scan on every call, so a SIGHUP (or simply a new rule file) takes effect on the next pass.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sentinel.workspace import Workspace

ScanHook = Callable[[Workspace, frozenset[str]], int]
"""(workspace, sources with new events) -> number of new alerts."""


def scan_hook() -> ScanHook | None:
    """The incremental scan entry point, when this installation has one."""
    try:
        runner = importlib.import_module("sentinel.scan.runner")
    except ImportError:
        return None
    run_scan = getattr(runner, "run_scan", None)
    if run_scan is None:
        return None

    def scan(ws: Workspace, sources: frozenset[str]) -> int:
        # The scan reads only the batches committed since each rule's watermark, which
        # are exactly the ones this pass added (`sources` is for the log line).
        report = run_scan(ws, open_incidents=True)
        return len(report.alerts)

    return scan
