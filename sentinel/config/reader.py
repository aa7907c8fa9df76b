"""Reading TOML tables strictly: types, choices and unknown keys, each located by line.

`tomllib` gives values without positions, so a problem's `path:line` is found again in
the text (best effort: the first `key =` or `[...key]` at or after a given line). A
reader collects problems instead of stopping at the first, so `sentinel config check`
can list them all.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sentinel.exceptions import ConfigError, Location

_T = TypeVar("_T")


class TableReader:
    """Checks of one config file's tables, raising `ConfigError` at the key's line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.problems: list[ConfigError] = []

    def collect(self, parse: Callable[[], _T], default: _T) -> _T:
        """`parse()`, or `default` with its problem recorded, so parsing goes on."""
        try:
            return parse()
        except ConfigError as exc:
            self.problems.append(exc)
            return default

    def line_of(self, key: str, after: int = 0) -> int:
        """Best-effort line number of `key = …` or `[…key]` (1-based; 0 if unknown)."""
        return self.position_of(key, after)[0]

    def position_of(self, key: str, after: int = 0) -> tuple[int, int]:
        """Best-effort (line, column) of `key = …` or `[…key]` (1-based; (0, 0) if unknown)."""
        pattern = re.compile(rf"^\s*(\[+[^\]]*\b{re.escape(key)}\]+|\"?{re.escape(key)}\"?\s*=)")
        for number, line in enumerate(self.lines[after:], start=after + 1):
            found = pattern.search(line)
            if found:
                return number, found.start(1) + 1
        return 0, 0

    def fail(self, key: str, message: str, after: int = 0) -> ConfigError:
        line, column = self.position_of(key, after)
        return ConfigError(message, location=Location(self.path, line or None, column or None))

    def error(self, line: int, message: str) -> ConfigError:
        return ConfigError(message, location=Location(self.path, line or None))

    def table(self, data: Any, name: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(name, f"[{name}] must be a table")
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(key, f"unknown key {key!r} in [{name}]{hint}")
        return data

    def typed(
        self, data: dict[str, Any], key: str, kind: type | tuple[type, ...], after: int = 0
    ) -> Any:
        value = data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            kinds = (kind,) if isinstance(kind, type) else kind
            expected = "/".join(k.__name__ for k in kinds)
            raise self.fail(key, f"{key!r} must be {expected}, got {shown(value)}", after)
        return value

    def choice(self, data: dict[str, Any], key: str, choices: tuple[str, ...], after: int) -> str:
        value: str = self.typed(data, key, str, after)
        if value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(
                key, f"{key!r} must be one of {', '.join(choices)}, got {value!r}{hint}", after
            )
        return value


def toml_position(exc: tomllib.TOMLDecodeError) -> tuple[int | None, int | None]:
    """(line, column) of a TOML syntax error: attributes on 3.14+, else from the message."""
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if line is None:
        found = re.search(r"at line (\d+), column (\d+)", str(exc))
        if found:
            line, column = int(found[1]), int(found[2])
    return line, column


def shown(value: Any) -> str:
    """A wrong value as the user wrote it, shortened: `5`, `"yes"`, a table or an array."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = f'"{value}"' if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
