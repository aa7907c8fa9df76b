"""What a scan found and what it cost: the report every scan phase fills in (`--stats`).

Its own module so the phases (`evaluate`, `correlate`, `baselines`) and the driver
(`runner`) all depend on it and none of them on another's driver: the report's types are
the only thing they share.
"""

from __future__ import annotations

import hashlib
import resource
import time
from dataclasses import dataclass, field

from sentinel.detect.compiler import CompiledRule
from sentinel.detect.inputs import RuleProblem
from sentinel.store import alerts as alert_store
from sentinel.store.incidents import Alert


@dataclass
class RuleStat:
    """What one rule cost and found in a scan (`--stats`)."""

    rule_id: str
    title: str
    kind: str
    level: str
    seconds: float = 0.0
    rows_read: int = 0
    files_read: int = 0
    matches: int = 0
    alerts: int = 0
    shared: str = ""
    """For detection rules: the pass they shared (its time is the whole pass's)."""
    peak_mb: float = 0.0
    """The scan process's peak RSS once this rule had run (where the peak was reached)."""

    def mark_memory(self) -> None:
        self.peak_mb = peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class ScanReport:
    scan_id: str
    batch_seq: int
    new_batches: int = 0
    alerts: list[Alert] = field(default_factory=list)
    """Alerts recorded by this scan (never one an earlier scan recorded)."""
    stats: list[RuleStat] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    files_read: int = 0
    seconds: float = 0.0
    incidents_opened: int = 0
    peaks: dict[str, float] = field(default_factory=dict)
    """Peak RSS (MB) after each phase: rules, baselines, incidents (`--stats`)."""
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds per phase: rules (evaluating them and building their alerts), recording
    (alerts and links into state.db), baselines, incidents (`--stats`)."""

    def timed(self, phase: str, started: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + time.monotonic() - started

    def at_or_above(self, level: str) -> list[Alert]:
        rank = alert_store.level_rank(level)
        return [a for a in self.alerts if alert_store.level_rank(a.level) >= rank]


def rule_hash(rule: CompiledRule) -> str:
    return hashlib.sha256(rule.sql.encode()).hexdigest()[:16]
