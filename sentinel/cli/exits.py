"""Exit codes: the one place where what a failure costs the process is decided.

- 0 success; 1 a command's documented partial result (`ingest`: some files skipped,
  `rules test`: a rule failed its examples);
- 2 usage or configuration error (`ConfigError`, `WorkspaceError`, `UsageError`,
  click's own usage errors);
- 3 runtime failure: any other `SentinelError`, and any unexpected exception;
- 130 interrupted (Ctrl-C).

Commands never pick a code for an error themselves: they raise, and the command group
(`sentinel.cli.main`) asks `exit_code`.
"""

from __future__ import annotations

import os

import click

from sentinel.exceptions import ConfigError, SentinelError, UsageError, WorkspaceError

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_RUNTIME = 3
EXIT_INTERRUPTED = 130

DEBUG_ENV = "SENTINEL_DEBUG"

_USAGE_ERRORS = (ConfigError, WorkspaceError, UsageError, click.UsageError)


def exit_code(exc: BaseException) -> int:
    """The exit code a failure ends the process with (see the module docstring)."""
    if isinstance(exc, _USAGE_ERRORS):
        return EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_RUNTIME


def render(exc: SentinelError) -> str:
    """One line for stderr: the title, then the location (if any) and the message."""
    return f"{exc.title}: {exc}"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")
