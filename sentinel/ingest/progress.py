"""A progress bar over bytes for long ingests: shown on a terminal, silent otherwise.

Quiet when `--quiet` is given or stderr is not a TTY (cron, CI, pipes), so logs and
captured output never fill with bar redraws.
"""

from __future__ import annotations

from typing import Any


class ByteProgress:
    """A rich progress bar over bytes on a terminal; a no-op otherwise."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda n: None
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
            self.enabled = False
            return lambda n: None
        self.bar = Progress(
            TextColumn("ingest"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=console, transient=True,
        )
        self.bar.start()
        task = self.bar.add_task("ingest", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

