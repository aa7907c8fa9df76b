"""The settings of `sentinel.toml` as frozen dataclasses, with their defaults and limits.

Every field's default is the behaviour of a workspace without a config file; the
docstring under a field is what `sentinel.toml`'s documentation says of it. Parsing and
validation live in `sentinel.config.sections`; nothing here reads a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sentinel.exceptions import Location

STORE_TEXT_MODES = ("full", "masked", "none")
SEVERITIES = ("informational", "low", "medium", "high", "critical")

MAX_PII_PROCESSES = 64


@dataclass(frozen=True)
class IngestConfig:
    max_line_bytes: int = 8 * 1024 * 1024
    """A JSON line longer than this is quarantined instead of parsed."""
    batch_bytes: int = 64 * 1024 * 1024
    """Bytes of a source file read, normalised and committed as one batch."""
    max_document_bytes: int = 512 * 1024 * 1024
    """Largest single-document file (pretty JSON, JSON array, CloudTrail envelope)."""
    max_gzip_ratio: int = 200
    """A .gz file is read up to this many times its compressed size (at least 64 MiB)."""


# Buffers of these sizes are allocated whole: beyond this, a typo costs a MemoryError.
INGEST_MAXIMA = {"batch_bytes": 1 << 30, "max_line_bytes": 1 << 30,
                 "max_document_bytes": 4 << 30}


@dataclass(frozen=True)
class PrivacyConfig:
    store_text: str = "full"
    """full: prompts kept as logged; masked: findings replaced by [TYPE]; none: no text."""
    mask_identities: bool = False
    """Mask who and from where (actor_*, client_ip, user_agent, resource, endpoint) too."""


@dataclass(frozen=True)
class DetectorConfig:
    """A user-defined PII/secret detector from `[[pii.detectors]]`."""

    name: str
    pattern: str
    validator: str | None = None
    severity: str = "medium"
    line: int = 0


@dataclass(frozen=True)
class PiiConfig:
    scan: bool = True
    detectors: tuple[DetectorConfig, ...] = ()
    processes: int = 0
    """Processes that share a batch's many PII candidates; 0: one per core. At most
    MAX_PII_PROCESSES: each is a Python process with its own detectors, so a typo like 1000
    must not start a thousand."""


START_AT = ("beginning", "end")


@dataclass(frozen=True)
class WatchConfig:
    """One `[[watch]]` table: a file, a directory (recursive) or a glob to tail."""

    path: str
    source: str | None = None
    exclude: tuple[str, ...] = ()
    """Glob patterns (matched against the file name and the full path) never read."""
    start_at: str = "beginning"
    """"end": files present when the daemon first starts are read from their end."""
    poll: bool = False
    """Poll with stat() instead of inotify (NFS, SMB and other network filesystems)."""
    line: int = 0


@dataclass(frozen=True)
class DaemonConfig:
    """`[daemon]`: how `sentinel watch` batches, finishes and rescans."""

    batch_bytes: int = 16 * 1024 * 1024
    """A batch is closed once this many new bytes are waiting... (and a backlog is read
    in batches of this size: each batch has a fixed cost, and memory grows with it)."""
    batch_seconds: float = 1.0
    """...or once the first of them has waited this long, whichever comes first."""
    idle_timeout: float = 5.0
    """A file that stopped growing this long has its partial last line finished."""
    rescan_interval: float = 30.0
    """Full rescan of the watched paths: the safety net under file events."""
    max_open_files: int = 512
    """Files held open at once (to read a rotated or deleted file to its end)."""
    duckdb_memory_mb: int = 256
    """`memory_limit` of each DuckDB the daemon runs (ingest, each scan lane), in MB."""
    duckdb_threads: int = 0
    """Threads of the daemon's ingest and per-event scans (0: one per core); lookback
    scans (correlations, baselines) run on one, leaving the rest to ingest."""


@dataclass(frozen=True)
class CustomSourceConfig:
    """A generic JSON-lines source from `[sources.NAME]` (Portkey, Helicone, in-house)."""

    name: str
    fields: dict[str, str]
    match: str | None = None
    defaults: dict[str, str] = field(default_factory=dict)
    format: str = "jsonl"
    logsource: tuple[str, str | None] | None = None
    """Sigma (product, service) from `[sources.NAME.logsource]`; None: ai_gateway/NAME."""
    line: int = 0


DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `24h`, `7d`, `2w` as a timedelta; ValueError names the units."""
    match = DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: use a number and one of s, m, h, d, w")
    return timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])


@dataclass(frozen=True)
class WebhookConfig:
    """A webhook a playbook's `notify` step posts to (`[incidents.webhooks.NAME]`)."""

    name: str
    url: str
    format: str = "json"
    """json: the case summary as JSON; slack: a Slack-compatible `{"text": …}` body."""
    timeout: float = 5.0
    retries: int = 2
    line: int = 0


@dataclass(frozen=True)
class IncidentsConfig:
    dedup_window: timedelta = timedelta(hours=24)
    """Alerts of one rule and group key this close to an open incident join it."""
    playbooks: str | None = None
    """A directory of workspace playbooks (relative to the workspace), beside the shipped ones."""
    webhooks: tuple[WebhookConfig, ...] = ()


@dataclass(frozen=True)
class DetectConfig:
    """`[detect]`: which rules `sentinel scan` runs (paths relative to the workspace)."""

    rules: tuple[str, ...] = ()
    """Rule directories or files added to the bundled pack (and `<workspace>/detections`);
    a rule with the id of a bundled one replaces it."""
    bundled: bool = True
    """Whether the bundled pack runs at all (false: only the workspace's rules)."""
    baselines: tuple[str, ...] = ()
    """Baseline directories or files added to the bundled set (and `<workspace>/baselines`);
    a baseline with the id of a bundled one replaces it (`bundled = false`: only these)."""
    filters: tuple[str, ...] = ()
    """Directories or files of Sigma filters (meta-rules that tune rules without edits)."""
    disabled: tuple[str, ...] = ()
    """Rule ids or titles the scan skips."""
    variables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """`|expand` placeholder values, e.g. `allowed_models = ["gpt-4o", …]`."""


@dataclass(frozen=True)
class ScanConfig:
    """`[scan]`: the resources one `sentinel scan` may take (its in-process DuckDB)."""

    memory_limit: str = "1GB"
    """DuckDB's memory limit for the scan's queries: beyond it, joins, aggregates and
    sorts spill to `<workspace>/state/tmp` instead of growing (the process's own Python
    objects come on top). DuckDB's default would be 80 % of the machine's memory."""
    threads: int = 0
    """DuckDB threads for the scan; 0: one per core (DuckDB's default)."""


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    ingest: IngestConfig = field(default_factory=IngestConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    watch: tuple[WatchConfig, ...] = ()
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    sources: tuple[CustomSourceConfig, ...] = ()
    incidents: IncidentsConfig = field(default_factory=IncidentsConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)

    def where(self, line: int) -> str:
        """`path:line` for error messages about this config."""
        return f"{self.path}:{line}" if self.path else f"<defaults>:{line}"

    def location(self, line: int, column: int | None = None) -> Location:
        """The structured form of `where`, for `ConfigError(..., location=...)`."""
        return Location(self.path, line or None, column)
