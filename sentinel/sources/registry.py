"""Discovery of log sources through the `sentinel.sources` entry-point group.

Built-in sources register through the same group a third-party package would use, so
`pip install sentinel-source-foo` adds a format without touching sentinel. Sources
defined in `sentinel.toml` (generic JSON-lines mappings) are added by the caller.

A plugin that fails to load (its import raises, or it is not a `LogSource`) is left
out and reported once, as a warning on the `sentinel` logger naming its package; the
other sources keep working. Discovery runs once per process: entry points and the
modules they import do not change while it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from sentinel.exceptions import SourceError
from sentinel.sources.base import LogSource

ENTRY_POINT_GROUP = "sentinel.sources"

log = logging.getLogger(__name__)


@cache
def _builtin_sources() -> dict[str, type[LogSource]]:
    found: dict[str, type[LogSource]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not take the built-ins down
            _broken(ep, f"{type(exc).__name__}: {exc}")
            continue
        if not (isinstance(cls, type) and issubclass(cls, LogSource)):
            _broken(ep, f"{ep.value} is not a LogSource class")
            continue
        found[ep.name] = cls
    return found


def _broken(ep: EntryPoint, why: str) -> None:
    package = ep.dist.name if ep.dist is not None else ep.module.split(".")[0]
    log.warning(
        "log source plugin %r from package %r failed to load and is disabled (%s)",
        ep.name, package, " ".join(why.split())[:300],
    )


def available_sources(extra: Iterable[LogSource] = ()) -> dict[str, LogSource]:
    """Every known source by name: entry-point sources, then `extra` (config-defined)."""
    sources: dict[str, LogSource] = {name: cls() for name, cls in _builtin_sources().items()}
    for source in extra:
        sources[source.name] = source
    return sources


def configured_sources(configs: Iterable[Any]) -> list[LogSource]:
    """The JSON-lines sources declared in `sentinel.toml` (`config.sources`)."""
    from sentinel.sources.jsonl import JsonlSource

    return [
        JsonlSource(c.name, c.fields, match=c.match, defaults=c.defaults, logsource=c.logsource)
        for c in configs
    ]


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


BUILTIN_PACKAGE = "sentinel."
"""Entry-point sources whose class lives in this package are built-in; others are plugins."""


@dataclass(frozen=True)
class SourceInfo:
    """What `sentinel sources` shows about one installed source."""

    name: str
    product: str
    service: str
    description: str
    origin: str
    """`built-in`, `plugin` (another package's entry point) or `config` (sentinel.toml)."""


def describe_sources(extra: Iterable[LogSource] = ()) -> list[SourceInfo]:
    """Every known source with its Sigma logsource and origin, sorted by product and name.

    `extra` (the workspace's configured sources) wins over an entry point of the same
    name, as it does at ingest.
    """
    configured = {source.name for source in extra}
    infos = []
    for name, source in available_sources(extra).items():
        if name in configured:
            origin = "config"
        elif type(source).__module__.startswith(BUILTIN_PACKAGE):
            origin = "built-in"
        else:
            origin = "plugin"
        product, service = source.sigma_logsource
        infos.append(SourceInfo(name, product, service, source.description, origin))
    return sorted(infos, key=lambda info: (info.product, info.service, info.name))
