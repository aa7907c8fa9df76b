"""The daemon's scan thread keeps the compiled pack until a rule file or the config changes."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sentinel.scan.evaluate import ScanError
from sentinel.scan.report import ScanReport
from sentinel.watch.detection import (
    LOOKBACK_EVENTS,
    LOOKBACK_MEMORY_MB,
    MIN_LOOKBACK_EVENTS,
    Detector,
    next_full_after,
    out_of_memory,
    rules_stamp,
)
from sentinel.watch.log import EventLog
from sentinel.workspace import Workspace

RULES = Path(__file__).parents[3] / "detections" / "ai_gateway"


def rules_in(ws: Workspace, *names: str) -> Path:
    """Only these rules: the workspace's own, the bundled pack off."""
    ws.config_path.write_text(ws.config_path.read_text() + "\n[detect]\nbundled = false\n")
    folder = ws.root / "detections"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(RULES / name, folder / name)
    return folder


class FakeScan:
    def __init__(self) -> None:
        self.packs: list[Any] = []
        self.baselines: list[bool] = []
        self.limits: list[Any] = []
        self.steps: list[int | None] = []
        self.kept: list[tuple[Any, Any]] = []
        self.fail: BaseException | None = None

    def __call__(self, ws: Workspace, **kwargs: Any) -> ScanReport:
        self.kept.append((kwargs["duck"], kwargs["playbooks"]))
        self.limits.append(kwargs["limits"])
        self.steps.append(kwargs.get("max_events"))
        if self.fail is not None:
            raise self.fail
        self.packs.append(kwargs["compiled_pack"])
        self.baselines.append(kwargs.get("baselines_too", True))
        return ScanReport("scan", batch_seq=len(self.packs))


def test_the_pack_is_compiled_once_and_again_when_a_rule_file_changes(
    workspace: Workspace,
) -> None:
    folder = rules_in(workspace, "credit_card_in_prompt.yml")
    scan = FakeScan()
    out = io.StringIO()
    detector = Detector(workspace, EventLog("text", out), scan=scan)
    detector._scan_once()
    detector._scan_once()
    assert scan.packs[0] is scan.packs[1]
    assert [r.title for r in scan.packs[0][0]] == ["Payment card number sent to an AI model"]
    assert out.getvalue().count("detect.rules") == 1

    shutil.copy(RULES / "iban_in_prompt.yml", folder / "iban_in_prompt.yml")  # a new rule
    detector._scan_once()
    assert scan.packs[2] is not scan.packs[1] and len(scan.packs[2][0]) == 2

    rule = folder / "iban_in_prompt.yml"
    rule.write_text(rule.read_text().replace("level: high", "level: low"))
    os.utime(rule, ns=(1, 1))  # an edit, even one that keeps the size
    detector._scan_once()
    assert scan.packs[3] is not scan.packs[2]
    assert {r.level for r in scan.packs[3][0]} == {"high", "low"}

    detector.reload(workspace)  # SIGHUP: compiled again even if no file changed
    detector._scan_once()
    assert scan.packs[4] is not scan.packs[3]
    assert detector.scanned == 5 and detector.scans == 5


def test_the_stamp_follows_rule_and_filter_files(workspace: Workspace) -> None:
    folder = rules_in(workspace, "credit_card_in_prompt.yml")
    before = rules_stamp(workspace)
    (folder / "credit_card_in_prompt.yml").unlink()
    assert rules_stamp(workspace) != before


def test_correlations_run_on_their_own_cadence(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules_in(workspace, "credit_card_in_prompt.yml", "failed_requests_burst.yml")
    scan = FakeScan()
    out = io.StringIO()
    detector = Detector(workspace, EventLog("text", out), scan=scan)
    detector._scan_once(lookback=True)
    detector._scan_once(lookback=False)
    lookback, per_event = scan.packs
    assert [r.kind for r in lookback[0]] == ["correlation"]
    assert [r.kind for r in per_event[0]] == ["detection"]
    assert scan.baselines == [True, False]  # baselines look back too: the lookback lane
    assert detector.scanned == 2 and detector.scanned_full == 1
    assert [limits.threads for limits in scan.limits] == [1, 0]  # lookback: one core
    assert [limits.memory_mb for limits in scan.limits] == [LOOKBACK_MEMORY_MB, 256]
    assert scan.steps == [LOOKBACK_EVENTS, None]  # the lookback reads a backlog in steps
    assert "detect.lookback" in out.getvalue() and "next_in=30.0" in out.getvalue()


def test_full_scans_take_at_most_a_tenth_of_the_time() -> None:
    assert next_full_after(0.5) == 30.0  # short ones: every 30 s
    assert next_full_after(20.0) == pytest.approx(180.0)  # 20 s of 200


def test_each_lane_keeps_its_duckdb_and_playbooks_until_a_reload_or_a_failure(
    workspace: Workspace,
) -> None:
    rules_in(workspace, "credit_card_in_prompt.yml", "failed_requests_burst.yml")
    scan = FakeScan()
    detector = Detector(workspace, EventLog("text", io.StringIO()), scan=scan)
    for _ in range(3):
        detector._scan_once(lookback=False)
    detector._scan_once(lookback=True)
    (duck, books), *rest, (lookback_duck, _) = scan.kept
    assert all(kept == (duck, books) for kept in rest)  # one per lane, kept
    assert lookback_duck is not duck
    assert duck.execute("SELECT current_setting('allocator_flush_threshold')").fetchone()[0]
    assert books.strict and detector.per_event.opened == 1

    detector.reload(workspace)  # SIGHUP: new limits, new playbook directories
    detector._scan_once(lookback=False)
    assert scan.kept[-1][0] is not duck and detector.per_event.opened == 2
    with pytest.raises(Exception, match="closed"):
        duck.execute("SELECT 1")  # the old one was closed

    scan.fail = RuntimeError("the query failed")
    with pytest.raises(RuntimeError):
        detector._scan_once(lookback=False)
    scan.fail = None
    detector._scan_once(lookback=False)
    assert detector.per_event.opened == 3  # a failed scan's connection is not reused


def test_the_lookback_lane_halves_its_step_then_doubles_its_memory_when_it_runs_out(
    workspace: Workspace,
) -> None:
    rules_in(workspace, "credit_card_in_prompt.yml", "failed_requests_burst.yml")
    scan = FakeScan()
    out = io.StringIO()
    detector = Detector(workspace, EventLog("text", out), scan=scan)
    try:
        duckdb.connect().execute("SET memory_limit = '1MB'; SELECT list(range(1000000))")
    except duckdb.Error as exc:
        scan.fail = ScanError("scan query failed: out of memory")
        scan.fail.__cause__ = exc  # as `evaluate._run` raises it
    assert out_of_memory(scan.fail) and not out_of_memory(RuntimeError("another failure"))
    for _ in range(6):
        with pytest.raises(ScanError):
            detector._scan_once(lookback=True)
        with pytest.raises(ScanError):
            detector._scan_once(lookback=False)  # the per-event lane keeps its limits
    # Fewer events per step first (the memory a lookback scan takes grows with them)…
    assert scan.steps[::2] == [100_000, 50_000, 25_000, 25_000, 25_000, 25_000]
    assert MIN_LOOKBACK_EVENTS == 25_000
    # … then, at the smallest step, more memory: up to `duckdb_memory_mb`, never past it.
    lookback = [limits.memory_mb for limits in scan.limits[::2]]
    assert lookback == [64, 64, 64, 128, 256, 256]
    assert {limits.memory_mb for limits in scan.limits[1::2]} == {256}
    assert set(scan.steps[1::2]) == {None}
    assert out.getvalue().count("detect.step_lowered") == 2
    assert out.getvalue().count("detect.memory_raised") == 2

    scan.fail = None
    detector._scan_once(lookback=True)
    assert scan.limits[-1].memory_mb == 256  # kept while the window needs it
    assert scan.steps[-1] == MIN_LOOKBACK_EVENTS
    detector.reload(workspace)  # … until the config is read again
    detector._scan_once(lookback=True)
    assert scan.limits[-1].memory_mb == LOOKBACK_MEMORY_MB
    assert scan.steps[-1] == LOOKBACK_EVENTS
