"""`sentinel scan`: every enabled rule over the events committed since that rule last ran.

One scan of a rule class at a time per workspace (an exclusive lock file beside the
lake, taken with a wait; `scan_lock`): two scans started together run one after the
other, and the second finds what the first left, usually nothing. Detection rules and
the rules that read a lookback (correlations, baselines) lock apart, so the watcher's
per-event scans never wait behind a long correlation scan; a rule's watermark is only
ever read and advanced under its class's lock. As a second line, alert ids are derived from their
content and the store ignores a repeat (`sentinel.store.alerts`), so even a scan that
re-reads a range never doubles an alert.

Per rule, alerts and the new watermark commit together; a scan that dies half-way leaves
the rules it finished advanced and the others where they were. The incident intake runs
after those commits, over every alert still pending (`store.alerts.pending`): alerts an
intake did not take because it failed, or its process died, are taken by the next scan.

The SQL comes from `sentinel.detect.engine` (one pass per source for all detection
rules); this module decides which files each pass reads, runs it and records the result.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from sentinel.content import rules_dir
from sentinel.detect.compiler import CompiledRule, compile_pack
from sentinel.detect.inputs import RuleProblem
from sentinel.detect.pipeline import Taxonomy
from sentinel.detect.sqlmacros import install_macros
from sentinel.exceptions import ConfigError, SentinelError
from sentinel.ingest.progress import NoProgress, Progress
from sentinel.scan import baselines, corrstate, evaluate, packcache
from sentinel.scan.lakefiles import all_files, batch_range, newest_seq, seq_within
from sentinel.scan.report import RuleStat, ScanReport, peak_rss_mb, rule_hash
from sentinel.store import alerts as alert_store
from sentinel.store.db import open_db, transaction
from sentinel.workspace import Workspace, workspace_lock

if TYPE_CHECKING:
    from sentinel.respond.books import Playbooks


def rule_paths(ws: Workspace, rules: Sequence[Path] | None) -> list[Path]:
    """The rule inputs, in override order: `--rules` alone when given; else the bundled
    pack (unless `[detect] bundled = false`), then `<workspace>/detections`, then
    `[detect] rules`. A later rule with an earlier one's id replaces it (`load_rules`)."""
    if rules:
        return list(rules)
    paths = [rules_dir()] if ws.config.detect.bundled and rules_dir().is_dir() else []
    if (ws.root / "detections").is_dir():
        paths.append(ws.root / "detections")
    paths += [ws.root / p for p in ws.config.detect.rules]
    if not paths:
        raise SentinelError(
            "no detection rules: pass --rules PATH, or set [detect] rules in sentinel.toml "
            "(the bundled pack is off: [detect] bundled = false)",
            title="No rules",
        )
    return paths


def compile_rules(
    ws: Workspace, rules: Sequence[Path] | None, *, cache: bool = True
) -> tuple[list[CompiledRule], list[RuleProblem], Taxonomy]:
    """The enabled rules of the workspace, compiled against its sources and variables.

    With `cache` (the default), a compile of the same rule files, sources, variables and
    compiler kept in the workspace is reused (`sentinel.scan.packcache`) and a new one
    kept; without, the pack is compiled and nothing is read or written."""
    from sentinel.sources.registry import configured_sources

    taxonomy = Taxonomy.installed(configured_sources(ws.config.sources))
    filters = [ws.root / path for path in ws.config.detect.filters]
    missing = [str(path) for path in filters if not path.exists()]
    if missing:
        raise ConfigError(f"{ws.config_path}: [detect] filters: no such path {', '.join(missing)}")
    inputs = rule_paths(ws, rules)
    variables = {k: list(v) for k, v in ws.config.detect.variables.items()}

    def compile_now() -> tuple[list[CompiledRule], list[RuleProblem]]:
        from sentinel.detect.rules import load_rules

        return compile_pack(load_rules(inputs, filters), variables, taxonomy=taxonomy)

    if cache:
        pack = packcache.pack_inputs(inputs, filters, taxonomy, variables)
        compiled, problems = packcache.compiled_pack(ws.root, pack, compile_now)
    else:
        compiled, problems = compile_now()
    disabled = set(ws.config.detect.disabled)
    retired = ("deprecated", "unsupported")
    enabled = [
        rule for rule in compiled
        if not disabled & {rule.rule_id, rule.title} and rule.loaded.status not in retired
    ]
    return enabled, problems, taxonomy


@contextmanager
def scan_lock(ws: Workspace, *, per_event: bool = True, lookback: bool = True) -> Iterator[None]:
    """One scan of each rule class at a time per workspace; a second one waits.

    `per_event`: the detection rules ("scan" lock); `lookback`: correlations and
    baselines ("correlate" lock). Taken in that fixed order, so scans never deadlock."""
    with ExitStack() as stack:
        if per_event or not lookback:
            stack.enter_context(workspace_lock(ws, "scan"))
        if lookback:
            stack.enter_context(workspace_lock(ws, "correlate"))
        yield


@dataclass(frozen=True)
class DuckLimits:
    """Bounds for a scan's DuckDB given by the caller (the watcher's lanes); without them a
    scan takes `[scan] memory_limit` and `[scan] threads`."""

    memory_mb: int | None = None
    """`memory_limit`: beyond it DuckDB spills what it can and fails the query otherwise."""
    threads: int | None = None
    """`threads`; None or 0: one per core."""
    flush_mb: int | None = None
    """`allocator_flush_threshold`: a connection kept between scans (the watcher's
    lanes) hands freed memory back beyond this instead of keeping it for reuse."""


def connect(ws: Workspace, limits: DuckLimits | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can read the lake and the baseline models and nothing else,
    within `limits` or else `[scan] memory_limit` and `[scan] threads`, spilling to
    `state/tmp`; the configuration is locked once set, so no query can change it."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    install_macros(con)
    settings = ws.config.scan
    spill = ws.root / "state" / "tmp"
    spill.mkdir(parents=True, exist_ok=True, mode=0o700)
    if limits is not None and limits.memory_mb:
        con.execute("SET memory_limit = ?", [f"{int(limits.memory_mb)}MB"])
    else:
        con.execute("SET memory_limit = ?", [settings.memory_limit])
    con.execute("SET temp_directory = ?", [str(spill)])
    threads = limits.threads if limits is not None and limits.threads else settings.threads
    if threads:
        con.execute("SET threads = ?", [int(threads)])
    if limits is not None and limits.flush_mb:
        con.execute("SET allocator_flush_threshold = ?", [f"{int(limits.flush_mb)}MB"])
    models = baselines.basemodel.models_dir(ws.root)  # derived state, beside the lake
    states = corrstate.states_dir(ws.root)
    con.execute("SET allowed_directories = ?", [[
        str(ws.lake_dir) + "/", str(models) + "/", str(states) + "/", str(spill) + "/"]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_scan(
    ws: Workspace,
    *,
    rules: Sequence[Path] | None = None,
    since: datetime | None = None,
    progress: Progress | None = None,
    open_incidents: bool = True,
    compiled_pack: tuple[list[CompiledRule], list[RuleProblem], Taxonomy] | None = None,
    baselines_too: bool = True,
    limits: DuckLimits | None = None,
    duck: duckdb.DuckDBPyConnection | None = None,
    playbooks: Playbooks | None = None,
    max_events: int | None = None,
) -> ScanReport:
    """Scan the new events (or, with `since`, every event from then on) and record alerts.

    `compiled_pack` is `compile_rules(ws, rules)` done earlier (the watcher keeps it while
    the rule files are unchanged). `baselines_too=False` skips the baselines (the watcher's
    quick scans; their watermarks stay, so the next full scan covers those batches).
    Only the locks of the rule classes scanned are taken (`scan_lock`); `limits` bound
    the scan's DuckDB. A caller that scans again and again (the watcher's lanes) passes
    its own `duck` (from `connect`, kept open between scans) and its `playbooks` cache:
    opening a DuckDB with its macros and parsing the playbooks were a third of a small
    increment's time; without one, the intake routes by the playbooks' routes kept in the
    workspace (`scan.routecache`). `open_incidents=False` leaves the alerts pending for the
    next scan that opens incidents. `max_events` stops the scan at the batch where its
    rules' oldest watermark has that many events behind it (the watcher's lookback lane
    reads a backlog in steps: a scan's memory grows with the batches it reads); the next
    scan goes on."""
    started = time.monotonic()
    compiled, problems, taxonomy = compiled_pack or compile_rules(ws, rules)
    # Baselines are a handful of small YAML files: read on every scan (never stale). Like
    # correlations they read a lookback, so the watcher runs them on its slower cadence.
    bases, base_problems = (
        baselines.compile_baselines(ws, taxonomy) if baselines_too else ([], [])
    )
    con = open_db(ws.state_db)
    # Recording inserts each link into the event-id index of `alert_links` in random
    # places: SQLite's default 2 MB page cache re-read pages (~4.3 s for 300,000 links
    # with 64 MB against 4.8-6.5 s, measured on this machine, with the links of
    # migration 3). A bound, used as needed.
    con.execute("PRAGMA cache_size = -65536")
    try:
        per_event = any(rule.kind == "detection" for rule in compiled)
        # A scan without detection rules (the watcher's lookback lane) locks as a lookback
        # scan even when it has nothing to run: it never waits on a per-event scan.
        lookback = not per_event or bool(bases) or any(r.kind != "detection" for r in compiled)
        with scan_lock(ws, per_event=per_event, lookback=lookback):
            report = _scan(ws, con, compiled, taxonomy, since, progress, bases, limits, duck,
                           max_events)
            report.problems = problems + base_problems
            # Every alert not taken yet: this scan's, and any an earlier intake left behind
            # (it failed, or its process died, after the alerts committed). The intake and
            # its playbooks are imported only when there is one.
            if open_incidents and (report.alerts or alert_store.pending(con)):
                from sentinel.respond.intake import take_pending
                from sentinel.scan.routecache import KeptRoutes

                begun = time.monotonic()
                routes = playbooks if playbooks is not None else KeptRoutes(ws)
                outcomes = take_pending(ws, con, report.alerts, playbooks=routes)
                report.incidents_opened = sum(1 for o in outcomes if o.opened)
                report.timed("incidents", begun)
            report.peaks["incidents"] = peak_rss_mb()
    finally:
        con.close()
    report.seconds = time.monotonic() - started
    return report


def _scan(
    ws: Workspace,
    con: sqlite3.Connection,
    compiled: list[CompiledRule],
    taxonomy: Taxonomy,
    since: datetime | None,
    progress: Progress | None,
    bases: Sequence[baselines.CompiledBaseline] = (),
    limits: DuckLimits | None = None,
    kept: duckdb.DuckDBPyConnection | None = None,
    max_events: int | None = None,
) -> ScanReport:
    scan_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    alert_store.begin_scan(con, scan_id)
    upto = newest_seq(con)
    marks = alert_store.watermarks(con)
    if max_events is not None and since is None:
        ids = [r.rule_id for r in compiled] + [b.rule_id for b in bases]
        oldest = min((marks.get(i, (0, ""))[0] for i in ids), default=upto)
        upto = seq_within(con, oldest, upto, max_events) if oldest < upto else upto
    report = ScanReport(scan_id, upto)
    # Rules that last ran at the same batch read the same files: one set of passes each.
    groups: dict[int, list[CompiledRule]] = defaultdict(list)
    for rule in compiled:
        groups[-1 if since else marks.get(rule.rule_id, (0, ""))[0]].append(rule)
    duck = kept or connect(ws, limits)
    stats: dict[str, RuleStat] = {
        r.rule_id: RuleStat(r.rule_id, r.title, r.kind, r.level) for r in compiled
    }
    opened: set[str] = set()
    bar = progress or NoProgress()  # counts rules; a front end decides how to draw it
    bar.start(len(compiled))
    try:
        for after, group in sorted(groups.items()):
            if since is not None:
                sources = sorted({s for r in group for s in r.loaded.sources_in(taxonomy)})
                files = all_files(ws, sources, since)
                seq = None
            elif after >= upto:
                continue  # nothing committed since these rules last ran: no file opened
            else:
                rng = batch_range(ws, con, after, upto)
                report.new_batches = max(report.new_batches, rng.batches)
                files, seq = rng.files, upto
            after_marks = {r.rule_id: marks.get(r.rule_id, (0, ""))[0] for r in group}
            begun = time.monotonic()
            results = evaluate.evaluate(
                ws, duck, group, taxonomy, files, since=since, stats=stats, opened=opened,
                step=bar.advance,
                correlate=_correlator(ws, duck, con, after_marks, seq, since, opened, stats),
            )
            report.timed("rules", begun)
            begun = time.monotonic()
            # One state.db transaction for the group (each rule a savepoint in it): the
            # per-rule commits were most of a small increment's time (37 for the pack).
            with transaction(con):
                for rule in group:
                    new = alert_store.commit_rule(
                        con, scan_id, rule.rule_id, results.get(rule.rule_id, []),
                        batch_seq=seq, rule_hash=rule_hash(rule),
                        links=evaluate.links_of(duck, rule.rule_id),
                    )
                    stats[rule.rule_id].alerts = len(new)
                    report.alerts.extend(new)
            report.timed("recording", begun)
    finally:
        bar.stop()
    report.stats = list(stats.values())
    report.peaks["rules"] = peak_rss_mb()
    begun = time.monotonic()
    baselines.run_baselines(ws, con, duck, list(bases), since=since, report=report, opened=opened)
    report.timed("baselines", begun)
    report.peaks["baselines"] = peak_rss_mb()
    if kept is None:
        duck.close()
    else:  # kept for the next scan: without this scan's event links
        evaluate.drop_links(duck)
    report.files_read = len(opened)
    alert_store.finish_scan(
        con, scan_id, batch_seq=upto, rules=len(compiled) + len(bases),
        alerts=len(report.alerts),
        stats={s.rule_id: _stat_json(s) for s in report.stats},
    )
    return report


def _correlator(
    ws: Workspace,
    duck: duckdb.DuckDBPyConnection,
    con: sqlite3.Connection,
    after: dict[str, int],
    upto: int | None,
    since: datetime | None,
    opened: set[str],
    stats: dict[str, RuleStat],
) -> Callable[[CompiledRule, list[str], list[str]], list[alert_store.AlertRecord]]:
    """`correlate.evaluate_correlation` in a `correlate.Context` of these, imported when a
    correlation has new files to read: that module, and the pySigma it cuts correlations
    with, are no cost of a scan that has none."""

    def run(rule: CompiledRule, sources: list[str], new_files: list[str]) -> list[Any]:
        from sentinel.scan import correlate

        context = correlate.Context(ws, duck, con, after, upto, since, opened, stats)
        return correlate.evaluate_correlation(context, rule, sources, new_files)

    return run


def summarise(report: ScanReport) -> list[tuple[str, str, int, int]]:
    """(level, rule title, alerts, events) per rule with new alerts, most severe first."""
    per_rule: dict[tuple[str, str], list[int]] = {}
    for alert in report.alerts:
        counts = per_rule.setdefault((alert.level, alert.rule_title), [0, 0])
        counts[0] += 1
        counts[1] += alert.event_count
    return sorted(
        ((level, title, n, events) for (level, title), (n, events) in per_rule.items()),
        key=lambda row: (-alert_store.level_rank(row[0]), row[1]),
    )


def _stat_json(stat: RuleStat) -> dict[str, Any]:
    return {
        "seconds": round(stat.seconds, 4), "rows_read": stat.rows_read,
        "files_read": stat.files_read, "matches": stat.matches, "alerts": stat.alerts,
    }


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: a duration (`90m`, `36h`, `7d`, `2w`) back from now, or an ISO timestamp."""
    now = now or datetime.now(UTC)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = text.strip()
    if value[:-1].isdigit() and value[-1:] in units:
        return now - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is neither a duration (e.g. 36h, 7d) nor a timestamp (2026-11-01T00:00)"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
