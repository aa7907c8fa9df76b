"""The daemon's log: one structured line per event on stderr.

Text lines read `2026-01-24T09:20:46.123Z info batch path=/var/log/a.log events=12`;
with `--log-format json` each line is one JSON object with the same keys. Values come
from log files and paths an attacker may control, so text values that are not plain
tokens are JSON-quoted: no newline, ANSI escape or `key=value` can be forged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

_PLAIN = re.compile(r"[A-Za-z0-9_./:@+,-]+")
LEVELS = ("debug", "info", "warning", "error")


class EventLog:
    """Writes events; thread-safe (the watchdog thread logs too)."""

    def __init__(self, fmt: str = "text", stream: IO[str] | None = None) -> None:
        if fmt not in ("text", "json"):
            raise ValueError(f"unknown log format {fmt!r}")
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stderr
        self.lock = threading.Lock()

    def __call__(self, level: str, event: str, **fields: Any) -> None:
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        if self.fmt == "json":
            line = json.dumps(
                {"ts": stamp, "level": level, "event": event, **fields},
                ensure_ascii=True, default=str,
            )
        else:
            parts = [stamp, level, event]
            parts += [f"{key}={_text(value)}" for key, value in fields.items()]
            line = " ".join(parts)
        with self.lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stderr closed (journald restarted): keep tailing, lose the log line

    def info(self, event: str, **fields: Any) -> None:
        self("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self("error", event, **fields)


def _text(value: Any) -> str:
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    text = str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=True)


class _Forward(logging.Handler):
    def __init__(self, log: EventLog) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        self.log(level, "library", logger=record.name, message=record.getMessage())


@contextlib.contextmanager
def library_warnings(log: EventLog) -> Iterator[None]:
    """While the daemon runs, the `sentinel` logger's warnings are events of `log` (one
    structured line each) instead of the CLI's plain `warning: …` lines."""
    logger = logging.getLogger("sentinel")
    saved, level = list(logger.handlers), logger.level
    for handler in saved:
        logger.removeHandler(handler)
    forward = _Forward(log)
    logger.addHandler(forward)
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(forward)
        for handler in saved:
            logger.addHandler(handler)
        logger.setLevel(level)
