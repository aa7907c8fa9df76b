"""The sections of `sentinel.toml`, each parsed into its dataclass of `config.model`.

One method per section; a section that fails is replaced by its defaults and its
problem recorded (`TableReader.collect`), so one bad table does not hide the next.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from sentinel.config.model import (
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
from sentinel.config.reader import TableReader, shown
from sentinel.exceptions import ConfigError
from sentinel.sources.base import SOURCE_NAME

_TOP_LEVEL = (
    "ingest", "privacy", "pii", "watch", "daemon", "sources", "incidents", "detect", "scan",
)
MEMORY_SIZE = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


class SectionParser(TableReader):
    """The whole file: `parse(data)` gives a `Config` and leaves problems in `problems`."""

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
                                f"\"1GB\" or \"512MB\", got {shown(limit)}")
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
                f"'detectors' must be an array of [[pii.detectors]] tables, got {shown(entries)}",
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
                f"{where}: each [[pii.detectors]] entry must be a table, got {shown(entry)}"
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
