"""One error root for everything sentinel reports to a user.

Expected failures (a bad config line, an unreadable file, a rule that does not compile)
raise a `SentinelError` subclass with a short `title` and a readable `message`; the CLI
prints them on stderr without a traceback. Third-party errors are translated where they
enter sentinel (`raise ConfigError(...) from exc`).
"""

from __future__ import annotations


class SentinelError(Exception):
    """Base of every error sentinel expects and explains to a user."""

    title = "Sentinel error"

    def __init__(self, message: str, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
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
