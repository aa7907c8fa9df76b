"""Workspace configuration: `sentinel.toml`, parsed strictly into frozen dataclasses.

Discovery order: the file `<workspace>/sentinel.toml`; a missing file means all
defaults. Unknown keys and wrong types are rejected with `path:line` and a "did you
mean" hint, because a typo in a security tool's config must not silently turn a
setting off. The parser collects every problem (one section or `[[…]]` entry failing
does not hide the next): `load_config` raises the first, `check_config` returns all.

The package: `model` (the dataclasses and their defaults), `reader` (strict TOML
table checks located by line), `sections` (one parser per section). Everything a
caller needs is importable from `sentinel.config`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from sentinel.config.model import (
    DURATION,
    DURATION_UNITS,
    INGEST_MAXIMA,
    MAX_PII_PROCESSES,
    SEVERITIES,
    START_AT,
    STORE_TEXT_MODES,
    Config,
    CustomSourceConfig,
    DaemonConfig,
    DetectConfig,
    DetectorConfig,
    IncidentsConfig,
    IngestConfig,
    PiiConfig,
    PrivacyConfig,
    ScanConfig,
    WatchConfig,
    WebhookConfig,
    parse_duration,
)
from sentinel.config.reader import toml_position
from sentinel.config.sections import SectionParser
from sentinel.exceptions import ConfigError, Location

__all__ = [
    "DURATION", "DURATION_UNITS", "INGEST_MAXIMA", "MAX_PII_PROCESSES", "SEVERITIES",
    "START_AT", "STORE_TEXT_MODES", "Config", "CustomSourceConfig", "DaemonConfig",
    "DetectConfig", "DetectorConfig", "IncidentsConfig", "IngestConfig", "PiiConfig",
    "PrivacyConfig", "ScanConfig", "WatchConfig", "WebhookConfig", "check_config",
    "load_config", "parse_duration",
]


def load_config(path: Path) -> Config:
    """Read and validate a `sentinel.toml`; a missing file gives the defaults."""
    config, problems = check_config(path)
    if problems:
        first = problems[0]
        more = len(problems) - 1
        if more:
            first = ConfigError(
                f"{first.message} (and {more} more problem{'s' if more > 1 else ''}: "
                "`sentinel config check` lists them)"
            )
        raise first
    return config


def check_config(path: Path) -> tuple[Config, list[ConfigError]]:
    """The config at `path` and every problem found in it.

    With problems, the config holds what did parse (defaults in place of what did not):
    enough for further checks (`sentinel config check` compiles its detectors), never
    to run with.
    """
    if not path.exists():
        return Config(path=None), []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Config(path=path), [ConfigError(f"cannot read: {exc}", location=Location(path))]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = Location(path, *toml_position(exc))
        return Config(path=path), [ConfigError(f"invalid TOML: {exc}", location=where)]
    parser = SectionParser(path, text)
    config = parser.parse(data)
    return config, parser.problems
