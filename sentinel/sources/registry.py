"""Discovery of log sources through the `sentinel.sources` entry-point group.

Built-in sources register through the same group a third-party package would use, so
`pip install sentinel-source-foo` adds a format without touching sentinel. Sources
defined in `sentinel.toml` (generic JSON-lines mappings) are added by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from sentinel.exceptions import SourceError
from sentinel.sources.base import LogSource

ENTRY_POINT_GROUP = "sentinel.sources"


@cache
def _builtin_sources() -> dict[str, type[LogSource]]:
    found: dict[str, type[LogSource]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not take the built-ins down
            raise SourceError(f"log source plugin {ep.name!r} failed to load: {exc}") from exc
        found[ep.name] = cls
    return found


def available_sources(extra: Iterable[LogSource] = ()) -> dict[str, LogSource]:
    """Every known source by name: entry-point sources, then `extra` (config-defined)."""
    sources: dict[str, LogSource] = {name: cls() for name, cls in _builtin_sources().items()}
    for source in extra:
        sources[source.name] = source
    return sources


def get_source(name: str, extra: Iterable[LogSource] = ()) -> LogSource:
    sources = available_sources(extra)
    if name not in sources:
        known = ", ".join(sorted(sources))
        raise SourceError(f"unknown source {name!r}; known sources: {known}")
    return sources[name]


def recognise(record: Any, sources: Iterable[LogSource] | None = None) -> LogSource | None:
    """The first of `sources` (default: every known source) claiming this sample record."""
    if not isinstance(record, dict):
        return None
    for source in available_sources().values() if sources is None else sources:
        if source.recognise(record):
            return source
    return None
