"""The scan use case: rules over the events committed since they last ran -> alerts.

`run_scan(ws)` is what `sentinel scan`, `sentinel demo` and the daemon call; see
`sentinel.scan.runner` (watermarks, locking), `sentinel.scan.lakefiles` (which files)
and `sentinel.scan.evaluate` (the passes and alerts).
"""

from sentinel.scan.report import RuleStat, ScanReport
from sentinel.scan.runner import parse_since, run_scan, summarise

__all__ = ["RuleStat", "ScanReport", "parse_since", "run_scan", "summarise"]
