"""How long runs report progress, without knowing how (or whether) it is shown.

Ingest calls a `Progress` with the bytes it is about to read and then the bytes read so
far; the scan (`sentinel.scan.runner`) does the same with the rules it evaluates; a
front end decides what to draw (the CLI: a rich bar on a terminal only,
`sentinel.cli.progress`; the TUI: its own widget; cron: nothing). Keeping the rendering
out of here keeps rich (and any terminal) out of the library.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives a run's progress: bytes for ingest, rules for a scan."""

    def start(self, total: int) -> None:
        """The run is about to do `total` units of work (a best estimate)."""

    def advance(self, done: int) -> None:
        """`done` more units are finished."""

    def stop(self) -> None:
        """The run has ended (normally or not)."""


class NoProgress:
    """A `Progress` that shows nothing (the default)."""

    def start(self, total: int) -> None:
        pass

    def advance(self, done: int) -> None:
        pass

    def stop(self) -> None:
        pass
