"""Workspace configuration: `sentinel.toml`, parsed strictly into frozen dataclasses.

Discovery order: the file `<workspace>/sentinel.toml`; a missing file means all
defaults. Unknown keys and wrong types are rejected with `path:line` and a "did you
mean" hint, because a typo in a security tool's config must not silently turn a
setting off. The parser collects every problem (one section or `[[…]]` entry failing
does not hide the next): `load_config` raises the first, `check_config` returns all.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sentinel.exceptions import ConfigError, Location
from sentinel.sources.base import SOURCE_NAME

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
    """Processes that scan a large batch together; 0: one per core. At most
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
        where = Location(path, *_toml_position(exc))
        return Config(path=path), [ConfigError(f"invalid TOML: {exc}", location=where)]
    parser = _Parser(path, text)
    config = parser.parse(data)
    return config, parser.problems


_T = TypeVar("_T")


class _Parser:
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
            raise self.fail(key, f"{key!r} must be {expected}, got {_shown(value)}", after)
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

    def parse(self, data: dict[str, Any]) -> Config:
        top = self.collect(
            lambda: self.table(data, "sentinel.toml", _TOP_LEVEL),
            {key: value for key, value in data.items() if key in _TOP_LEVEL},
        )
        return Config(
            path=self.path,
            ingest=self.collect(lambda: self.parse_ingest(top.get("ingest")), IngestConfig()),
            privacy=self.collect(lambda: self.parse_privacy(top.get("privacy")), PrivacyConfig()),
            pii=self.collect(lambda: self.parse_pii(top.get("pii")), PiiConfig()),
            watch=self.collect(lambda: self.parse_watch(top.get("watch", [])), ()),
            daemon=self.collect(lambda: self.parse_daemon(top.get("daemon")), DaemonConfig()),
            sources=self.collect(lambda: self.parse_sources(top.get("sources", {})), ()),
            incidents=self.collect(
                lambda: self.parse_incidents(top.get("incidents")), IncidentsConfig()
            ),
            detect=self.collect(lambda: self.parse_detect(top.get("detect")), DetectConfig()),
            scan=self.collect(lambda: self.parse_scan(top.get("scan")), ScanConfig()),
        )

    def parse_scan(self, data: Any) -> ScanConfig:
        if data is None:
            return ScanConfig()
        section = self.table(data, "scan", tuple(ScanConfig.__dataclass_fields__))
        values: dict[str, Any] = {}
        if "memory_limit" in section:
            limit = self.typed(section, "memory_limit", str)
            if not MEMORY_SIZE.match(limit):
                raise self.fail("memory_limit", f"'memory_limit' must be a size such as "
                                f"\"1GB\" or \"512MB\", got {_shown(limit)}")
            values["memory_limit"] = limit.replace(" ", "")
        if "threads" in section:
            threads = self.typed(section, "threads", int)
            if threads < 0:
                raise self.fail("threads", "'threads' must be 0 (one per core) or more")
            values["threads"] = threads
        return ScanConfig(**values)

    def parse_detect(self, data: Any) -> DetectConfig:
        if data is None:
            return DetectConfig()
        section = self.table(
            data, "detect", ("rules", "baselines", "bundled", "filters", "disabled", "variables")
        )

        def strings(key: str) -> tuple[str, ...]:
            value = section.get(key, [])
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.fail(key, f"[detect] {key!r} must be a string or a list of strings")
            return tuple(value)

        variables = self.table(
            section.get("variables", {}), "detect.variables",
            tuple(section.get("variables", {})) if isinstance(section.get("variables"), dict)
            else (),
        )
        values: dict[str, tuple[str, ...]] = {}
        for name, value in variables.items():
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.fail(name, f"[detect.variables] {name!r} must be a list of strings")
            values[name] = tuple(value)
        bundled = self.typed(section, "bundled", bool) if "bundled" in section else True
        return DetectConfig(
            rules=strings("rules"), baselines=strings("baselines"), bundled=bundled,
            filters=strings("filters"), disabled=strings("disabled"), variables=values,
        )

    def parse_ingest(self, data: Any) -> IngestConfig:
        if data is None:
            return IngestConfig()
        section = self.table(data, "ingest", tuple(IngestConfig.__dataclass_fields__))
        values = {k: self.typed(section, k, int) for k in section}
        for key, value in values.items():
            if value <= 0:
                raise self.fail(key, f"{key!r} must be positive")
            if value > INGEST_MAXIMA.get(key, value):
                raise self.fail(key, f"{key!r} must be at most {INGEST_MAXIMA[key]:,} bytes")
        return IngestConfig(**values)

    def parse_privacy(self, data: Any) -> PrivacyConfig:
        if data is None:
            return PrivacyConfig()
        section = self.table(data, "privacy", ("store_text", "mask_identities"))
        mode = "full"
        if "store_text" in section:
            mode = self.choice(section, "store_text", STORE_TEXT_MODES, 0)
        identities = False
        if "mask_identities" in section:
            identities = self.typed(section, "mask_identities", bool)
        return PrivacyConfig(store_text=mode, mask_identities=identities)

    def parse_incidents(self, data: Any) -> IncidentsConfig:
        if data is None:
            return IncidentsConfig()
        section = self.table(data, "incidents", ("dedup_window", "playbooks", "webhooks"))
        window = IncidentsConfig.dedup_window
        if "dedup_window" in section:
            try:
                window = parse_duration(self.typed(section, "dedup_window", str))
            except ValueError as exc:
                raise self.fail("dedup_window", f"dedup_window: {exc}") from exc
        playbooks = self.typed(section, "playbooks", str) if "playbooks" in section else None
        hooks = []
        for name, entry in self.table(
            section.get("webhooks", {}), "incidents.webhooks", tuple(section.get("webhooks", {}))
        ).items():
            where = f"incidents.webhooks.{name}"
            item = self.table(entry, where, ("url", "format", "timeout", "retries"))
            if not isinstance(item.get("url"), str) or not item["url"].startswith(
                ("http://", "https://")
            ):
                raise self.fail(where, f"[{where}] needs url = \"https://…\"")
            fmt = item.get("format", "json")
            if fmt not in ("json", "slack"):
                raise self.fail("format", f"[{where}] format must be json or slack", 0)
            timeout = float(self.typed(item, "timeout", (int, float))) if "timeout" in item else 5.0
            retries = self.typed(item, "retries", int) if "retries" in item else 2
            if timeout <= 0 or retries < 0:
                raise self.fail(where, f"[{where}] timeout must be > 0 and retries >= 0")
            hooks.append(WebhookConfig(name, item["url"], fmt, timeout, retries,
                                       self.line_of(where)))
        return IncidentsConfig(window, playbooks, tuple(hooks))

    def parse_pii(self, data: Any) -> PiiConfig:
        if data is None:
            return PiiConfig()
        section = self.table(data, "pii", ("scan", "processes", "detectors"))
        scan = self.collect(
            lambda: self.typed(section, "scan", bool) if "scan" in section else True, True
        )
        processes = self.collect(lambda: self.parse_processes(section), 0)
        entries = section.get("detectors", [])
        if not isinstance(entries, list):
            raise self.fail(
                "detectors",
                f"'detectors' must be an array of [[pii.detectors]] tables, got {_shown(entries)}",
            )
        detectors = []
        after = 0
        for entry in entries:
            # `[[pii.detectors]]` tables, or an inline `detectors = [...]` under [pii]
            line = self.line_of("pii.detectors", after) or self.line_of("detectors")
            after = line
            try:
                detectors.append(self.parse_detector(entry, line))
            except ConfigError as exc:
                self.problems.append(exc)
        return PiiConfig(scan=scan, detectors=tuple(detectors), processes=processes)

    def parse_processes(self, section: dict[str, Any]) -> int:
        processes: int = self.typed(section, "processes", int) if "processes" in section else 0
        if not 0 <= processes <= MAX_PII_PROCESSES:
            raise self.fail(
                "processes",
                f"'processes' must be 0 (one per core) to {MAX_PII_PROCESSES}, not {processes}",
            )
        return processes

    def parse_detector(self, entry: Any, line: int) -> DetectorConfig:
        where = f"{self.path}:{line}"
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{where}: each [[pii.detectors]] entry must be a table, got {_shown(entry)}"
            )
        allowed = tuple(f for f in DetectorConfig.__dataclass_fields__ if f != "line")
        for key in entry:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(key, f"unknown key {key!r} in [[pii.detectors]]{hint}", line - 1)
        for required in ("name", "pattern"):
            if required not in entry:
                raise ConfigError(f"{where}: [[pii.detectors]] needs {required!r}")
        start = max(line - 1, 0)
        name = self.typed(entry, "name", str, start)
        pattern = self.typed(entry, "pattern", str, start)
        validator = self.typed(entry, "validator", str, start) if "validator" in entry else None
        severity = (
            self.choice(entry, "severity", SEVERITIES, start) if "severity" in entry else "medium"
        )
        return DetectorConfig(
            name=name,
            pattern=pattern,
            validator=validator or None,
            severity=severity,
            line=self.line_of("pattern", start) or line,
        )

    def parse_watch(self, data: Any) -> tuple[WatchConfig, ...]:
        if not isinstance(data, list):
            raise self.fail("watch", "[[watch]] entries must be an array of tables")
        watches = []
        after = 0
        for entry in data:
            line = self.line_of("watch", after)
            after = line
            item = self.table(entry, "watch", ("path", "source", "exclude", "start_at", "poll"))
            if "path" not in item:
                raise self.error(line, "[[watch]] needs 'path'")
            start = max(line - 1, 0)
            path = self.typed(item, "path", str, start)
            source = self.typed(item, "source", str, start) if "source" in item else None
            exclude = item.get("exclude", [])
            if not isinstance(exclude, list) or not all(isinstance(e, str) for e in exclude):
                raise self.fail("exclude", "'exclude' must be a list of glob patterns", after)
            start_at = self.typed(item, "start_at", str) if "start_at" in item else "beginning"
            if start_at not in START_AT:
                raise self.fail(
                    "start_at", f"start_at must be one of {', '.join(START_AT)}", after
                )
            poll = self.typed(item, "poll", bool) if "poll" in item else False
            watches.append(
                WatchConfig(
                    path=path, source=source, exclude=tuple(exclude), start_at=start_at,
                    poll=poll, line=line,
                )
            )
        return tuple(watches)

    def parse_daemon(self, data: Any) -> DaemonConfig:
        if data is None:
            return DaemonConfig()
        section = self.table(data, "daemon", tuple(DaemonConfig.__dataclass_fields__))
        values: dict[str, Any] = {}
        for key, value in section.items():
            kind = type(getattr(DaemonConfig, key))
            typed = self.typed(section, key, (int, float) if kind is float else int)
            if key == "duckdb_threads" and typed == 0:
                values[key] = 0  # one per core
                continue
            if isinstance(typed, bool) or typed <= 0:
                raise self.fail(key, f"{key!r} must be a positive number, got {value!r}")
            values[key] = kind(typed)
        return DaemonConfig(**values)

    def parse_sources(self, data: Any) -> tuple[CustomSourceConfig, ...]:
        section = self.table(data, "sources", tuple(data) if isinstance(data, dict) else ())
        result = []
        for name, entry in section.items():
            line = self.line_of(f"sources.{name}")
            item = self.table(
                entry, f"sources.{name}", ("format", "match", "fields", "defaults", "logsource")
            )
            if item.get("format", "jsonl") != "jsonl":
                raise self.error(line, f"sources.{name}: format must be 'jsonl'")
            fields = item.get("fields")
            if not isinstance(fields, dict) or not all(
                isinstance(v, str) for v in fields.values()
            ):
                raise self.error(line, f"sources.{name} needs a [sources.{name}.fields] table "
                    "of column = \"$.json.path\""
                )
            defaults = item.get("defaults", {})
            if not isinstance(defaults, dict) or not all(
                isinstance(v, str) for v in defaults.values()
            ):
                raise self.error(line, f"[sources.{name}.defaults] must map column = \"value\""
                )
            if not SOURCE_NAME.fullmatch(name):
                raise self.error(line, f"source name {name!r} must be lowercase letters, "
                    "digits and underscores, starting with a letter (at most 63)"
                )
            if "match" in item:
                self.typed(item, "match", str, max(line - 1, 0))
            result.append(
                CustomSourceConfig(
                    name=name, fields=dict(fields), match=item.get("match"),
                    defaults=dict(defaults), line=line,
                    logsource=self.parse_logsource(item.get("logsource"), name),
                )
            )
        return tuple(result)

    def parse_logsource(self, data: Any, name: str) -> tuple[str, str | None] | None:
        if data is None:
            return None
        where = f"sources.{name}.logsource"
        section = self.table(data, where, ("product", "service"))
        if "product" not in section:
            raise self.fail("logsource", f"[{where}] needs 'product' (e.g. \"ai_gateway\")")
        product = self.typed(section, "product", str)
        service = self.typed(section, "service", str) if "service" in section else None
        for value in (product, service):
            if value is not None and not SOURCE_NAME.fullmatch(value):
                raise self.fail(
                    "logsource", f"[{where}]: {value!r} must be lowercase letters, digits, _"
                )
        return product, service


def _toml_position(exc: tomllib.TOMLDecodeError) -> tuple[int | None, int | None]:
    """(line, column) of a TOML syntax error: attributes on 3.14+, else from the message."""
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if line is None:
        found = re.search(r"at line (\d+), column (\d+)", str(exc))
        if found:
            line, column = int(found[1]), int(found[2])
    return line, column


_TOP_LEVEL = (
    "ingest", "privacy", "pii", "watch", "daemon", "sources", "incidents", "detect", "scan",
)
MEMORY_SIZE = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


def _shown(value: Any) -> str:
    """A wrong value as the user wrote it, shortened: `5`, `"yes"`, a table or an array."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = f'"{value}"' if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
