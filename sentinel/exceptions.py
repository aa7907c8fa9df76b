"""One error root for everything sentinel reports to a user.

Expected failures (a bad config line, an unreadable file, a rule that does not compile)
raise a `SentinelError` subclass with a short `title` and a readable `message`; the CLI
prints them on stderr without a traceback. Third-party errors are translated where they
enter sentinel (`raise ConfigError(...) from exc`).

Where the error is in a file the user wrote (config, rule, playbook), it carries a
`Location` as data, so each front end renders it in its own way: `location` and
`detail` (the message alone) for a TUI that links to the line; `message` (and
`str(error)`) is the compiler-style `path:line:column: detail`, what the CLI prints and
what a log line or a test reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where in a user's file an error is: path, and 1-based line and column when known."""

    path: Path | str | None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else "<defaults>"
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return where


class SentinelError(Exception):
    """Base of every error sentinel expects and explains to a user."""

    title = "Sentinel error"

    def __init__(
        self, message: str, title: str | None = None, location: Location | None = None
    ) -> None:
        self.detail = message
        """What is wrong, without the location."""
        self.location = location
        self.message = f"{location}: {message}" if location is not None else message
        """The location (when known) and the detail: the one-line form."""
        super().__init__(self.message)
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class ConfigError(SentinelError):
    title = "Configuration error"


class WorkspaceError(SentinelError):
    title = "Workspace error"


class SourceError(SentinelError):
    title = "Log source error"


class QueryError(SentinelError):
    title = "Query error"


class RuleError(SentinelError):
    title = "Detection rule error"


class PlaybookError(SentinelError):
    title = "Playbook error"


class StoreError(SentinelError):
    title = "Case store error"


class UsageError(SentinelError):
    """The command line asks for something impossible (front ends map it to their own)."""

    title = "Usage error"
