"""What the daemon watches: each `[[watch]]` table as a root to observe and a matcher.

A path is a file, a directory (watched recursively; hidden files skipped) or a glob
(`*`, `?`, `[…]`, `**`); `exclude` patterns are matched against the file name and the
full path. The workspace itself is never watched, so the lake can never feed itself.
File events are only hints: `list_files` is the truth the periodic rescan relies on.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sentinel.config import WatchConfig
from sentinel.workspace import Workspace

_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Target:
    config: WatchConfig
    root: Path
    """The directory to observe (the file's directory, or a glob's fixed prefix)."""
    kind: str
    """"file", "directory" or "glob"."""
    pattern: str
    """The absolute path or glob this target matches."""
    workspace: Path

    @classmethod
    def of(cls, config: WatchConfig, ws: Workspace) -> Target:
        raw = os.path.abspath(os.path.expanduser(config.path))
        if any(ch in raw for ch in _GLOB_CHARS):
            fixed = []
            for part in Path(raw).parts:
                if any(ch in part for ch in _GLOB_CHARS):
                    break
                fixed.append(part)
            return cls(config, Path(*fixed), "glob", raw, ws.root)
        path = Path(raw)
        if path.is_dir():
            return cls(config, path, "directory", raw, ws.root)
        return cls(config, path.parent, "file", raw, ws.root)

    @property
    def recursive(self) -> bool:
        return self.kind != "file"

    def matches(self, path: Path) -> bool:
        text = str(path)
        if path.is_relative_to(self.workspace):
            return False
        if self.kind == "file":
            matched = text == self.pattern
        elif self.kind == "directory":
            matched = path.is_relative_to(self.root) and not any(
                part.startswith(".") for part in path.relative_to(self.root).parts
            )
        else:
            matched = _glob_regex(self.pattern).fullmatch(text) is not None
        return matched and not self.excluded(path)

    def excluded(self, path: Path) -> bool:
        return any(
            fnmatch.fnmatchcase(path.name, pattern) or fnmatch.fnmatchcase(str(path), pattern)
            for pattern in self.config.exclude
        )

    def list_files(self) -> Iterator[Path]:
        """Every regular file this target names right now."""
        if self.kind == "file":
            candidates: Iterator[Path] = iter([Path(self.pattern)])
        elif self.kind == "glob":
            candidates = (Path(p) for p in glob.iglob(self.pattern, recursive=True))
        else:
            candidates = _walk(self.root)
        for path in candidates:
            if self.matches(path) and _is_file(path):
                yield path


@functools.lru_cache(maxsize=64)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as `glob.glob` reads it: `*` and `?` stay within a directory, `**/` spans
    any number of them (Python 3.13's `glob.translate`, for 3.11)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            close = pattern.index("]", i + 2)
            body = pattern[i + 1 : close]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def targets_of(ws: Workspace) -> list[Target]:
    return [Target.of(config, ws) for config in ws.config.watch]


def _walk(root: Path) -> Iterator[Path]:
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(directory, name)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False
