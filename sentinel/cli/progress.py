"""The CLI's ingest progress: a rich bar over bytes on a terminal, nothing otherwise.

Quiet when `--quiet` is given or stderr is not a TTY (cron, CI, pipes), so logs and
captured output never fill with bar redraws. Implements `sentinel.ingest.progress.Progress`.
"""

from __future__ import annotations

from typing import Any


class ByteProgressBar:
    """A rich progress bar over bytes on stderr when it is a terminal; a no-op otherwise."""

    def __init__(self, label: str = "ingest") -> None:
        self.label = label
        self.bar: Any = None
        self.task: Any = None

    def start(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(stderr=True)
        if not console.is_terminal:
            return
        self.bar = Progress(
            TextColumn(self.label), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=console, transient=True,
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


def ingest_progress(quiet: bool) -> ByteProgressBar | None:
    """What `sentinel ingest` and `sentinel demo` pass as `progress`."""
    return None if quiet else ByteProgressBar()
