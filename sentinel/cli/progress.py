"""The CLI's progress bars: rich on a terminal, nothing otherwise.

Quiet when `--quiet` is given or stderr is not a TTY (cron, CI, pipes), so logs and
captured output never fill with bar redraws. Implements `sentinel.ingest.progress.Progress`,
which ingest (bytes) and the scan (rules) both report to; rich stays out of the library.
"""

from __future__ import annotations

import os
import sys
from typing import Any


class ProgressBar:
    """A rich progress bar on stderr when it is a terminal; a no-op otherwise.

    `unit` is "bytes" (size, speed and time left) or a word for counted items ("rules").
    """

    def __init__(self, label: str, unit: str = "bytes") -> None:
        self.label = label
        self.unit = unit
        self.bar: Any = None
        self.task: Any = None

    def start(self, total: int) -> None:
        if not _may_be_terminal():
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(stderr=True)
        if not console.is_terminal:
            return
        columns: list[Any] = (
            [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
            if self.unit == "bytes"
            else [MofNCompleteColumn(), TextColumn(self.unit)]
        )
        self.bar = Progress(
            TextColumn(self.label), BarColumn(), *columns, console=console, transient=True
        )
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=total)

    def advance(self, done: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, done)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _may_be_terminal() -> bool:
    """False when rich would find that stderr is no terminal: then rich (30 ms of every
    scan from cron) is not imported. Its own overrides leave the decision to it."""
    if os.environ.get("FORCE_TERMINAL") is not None or os.environ.get("TTY_COMPATIBLE"):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def ingest_progress(quiet: bool) -> ProgressBar | None:
    """What `sentinel ingest` and `sentinel demo` pass to ingest as `progress`."""
    return None if quiet else ProgressBar("ingest")


def scan_progress(quiet: bool) -> ProgressBar | None:
    """What `sentinel scan` and `sentinel demo` pass to the scan as `progress`."""
    return None if quiet else ProgressBar("scan", unit="rules")
