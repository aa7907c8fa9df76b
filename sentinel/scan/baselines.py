"""Baselines in `sentinel scan`: each over the batches committed since it last ran.

A baseline is scanned like a rule: its watermark (a `batches.rowid`, in the same
`rule_watermarks` table, under the baseline's id) says which batches it has seen, and its
alerts and new watermark commit together (`store.alerts.commit_rule`). A scan with
nothing new opens no file for it.

What it reads: the new batches' files tell the time range of the new events. An
increment then reads those files and the baseline's *model* of its history (hourly
aggregates kept between scans, `sentinel.scan.basemodel`), never the old lake files; the
model is extended with the increment's aggregates before the watermark moves, and
rebuilt once from the lake when it is missing, damaged or of another definition. A
`--since` rescan instead reads the baseline's sources over its lookback (whole days from
`low - lookback` to `high`) by date partition (`lakefiles.lookback_files`), `ts` pushed
down to row groups, and leaves the model alone. Both give the same alerts (a
differential test). Only events of the new files can alert; the rest is history.
A silence baseline takes the range of the new events of *every* source: a source that has
gone quiet has no new files, and the others' events say how long it has been quiet.

Alerts are grouped by principal (the `by` columns, e.g. `actor_key=…`), so they join the
incident of earlier alerts of the same baseline and principal; the new value, hour or gap
is in the alert's `detail`. An alert's id is derived from its first event and time, so a
rescan (`--since`) or a racing scan never doubles one.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from sentinel.content import baselines_dir
from sentinel.detect.baseline_compiled import CompiledBaseline
from sentinel.detect.engine import parquet_relation
from sentinel.detect.inputs import BASELINE_SUFFIXES, RuleProblem, files_under
from sentinel.detect.pipeline import Taxonomy
from sentinel.scan import basemodel
from sentinel.scan.evaluate import MAX_EVENTS_PER_ALERT, ScanError
from sentinel.scan.lakefiles import all_files, batch_range, lookback_files, relative_lake_file
from sentinel.scan.report import RuleStat, ScanReport
from sentinel.schema import EVENT_SCHEMA
from sentinel.store import alerts as alert_store
from sentinel.store.alerts import AlertRecord, alert_id_for
from sentinel.store.incidents import Alert, AlertEvent
from sentinel.workspace import Workspace

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def baseline_inputs(ws: Workspace, given: Sequence[Path] | None = None) -> list[Path]:
    """The baseline inputs, in override order (as for rules): `given` alone; else the
    bundled set (unless `[detect] bundled = false`), then `<workspace>/baselines`, then
    `[detect] baselines`. A later baseline with an earlier one's id replaces it."""
    if given:
        return list(given)
    paths = [baselines_dir()] if ws.config.detect.bundled and baselines_dir().is_dir() else []
    if (ws.root / "baselines").is_dir():
        paths.append(ws.root / "baselines")
    return paths + [ws.root / p for p in ws.config.detect.baselines]


def compile_baselines(
    ws: Workspace, taxonomy: Taxonomy, given: Sequence[Path] | None = None, *,
    cache: bool = True,
) -> tuple[list[CompiledBaseline], list[RuleProblem]]:
    """The workspace's enabled baselines, compiled; every problem located, none raised.

    With `cache` (the default) a compile of the same files, sources and `[detect]
    disabled` kept in the workspace is reused (`sentinel.scan.packcache`): no baseline
    file is parsed and pydantic is not imported."""
    from sentinel.scan import packcache

    inputs = baseline_inputs(ws, given)
    disabled = sorted(ws.config.detect.disabled)
    if not cache:
        return _compile_baselines(inputs, taxonomy, disabled)
    files = files_under(inputs, BASELINE_SUFFIXES)
    return packcache.compiled_baselines(
        ws.root, packcache.PackInputs(files, taxonomy, {"disabled": disabled}),
        lambda: _compile_baselines(inputs, taxonomy, disabled),
    )


def _compile_baselines(
    inputs: Sequence[Path], taxonomy: Taxonomy, disabled: Sequence[str]
) -> tuple[list[CompiledBaseline], list[RuleProblem]]:
    from sentinel.detect.baseline import load_baselines
    from sentinel.detect.baseline_sql import compile_baseline

    pack = load_baselines(inputs)
    problems = list(pack.problems)
    compiled = []
    for loaded in pack.baselines:
        spec = loaded.spec
        if set(disabled) & {spec.id, spec.title} or spec.status == "deprecated":
            continue
        sources = taxonomy.select(spec.logsource.product, spec.logsource.service)
        if sources is None:
            problems.append(loaded.problem(
                ("logsource",),
                f"unsupported logsource (product {spec.logsource.product!r}, service "
                f"{spec.logsource.service!r}); the installed sources declare "
                f"{taxonomy.describe()}",
            ))
            continue
        compiled.append(compile_baseline(loaded, tuple(sources)))
    return compiled, problems


def baseline_hash(base: CompiledBaseline) -> str:
    text = base.template + json.dumps(base.params, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_baselines(
    ws: Workspace,
    con: sqlite3.Connection,
    duck: duckdb.DuckDBPyConnection,
    compiled: list[CompiledBaseline],
    *,
    since: datetime | None,
    report: ScanReport,
    opened: set[str],
    use_models: bool = True,
) -> None:
    """Scan every baseline over its new batches; record alerts, advance watermarks.

    An increment reads the new batches' files and the baseline's model
    (`sentinel.scan.basemodel`); a `--since` rescan, or `use_models=False`, reads the
    whole lookback from the lake instead (the same alerts: a test compares them)."""
    marks = alert_store.watermarks(con)
    upto = report.batch_seq
    ranges: dict[int, dict[str, list[str]]] = {}
    spans: dict[tuple[str, ...], tuple[datetime | None, datetime | None]] = {}
    for base in compiled:
        stat = RuleStat(base.rule_id, base.title, "baseline", base.level)
        report.stats.append(stat)
        after = marks.get(base.rule_id, (0, ""))[0]
        if since is None and after >= upto:
            continue  # nothing committed since it last ran: no file opened
        if since is not None:
            new = all_files(ws, sorted(_all_sources(ws)), since)
            seq = None
        else:
            if after not in ranges:
                rng = batch_range(ws, con, after, upto)
                report.new_batches = max(report.new_batches, rng.batches)
                ranges[after] = rng.files
            new, seq = ranges[after], upto
        started = time.monotonic()
        own = sorted(p for s in base.sources for p in new.get(s, []))
        span_files = sorted(p for ps in new.values() for p in ps) if base.loaded.kind == (
            "silence") else own
        low = high = None
        if span_files:
            key = tuple(span_files)
            if key not in spans:
                spans[key] = _span(duck, span_files)
            low, high = spans[key]
            if low is not None and since is not None:
                low = max(low, since)
        if since is None and use_models:
            records = _with_model(ws, con, duck, base, own, after, upto, low, high, opened, stat)
        elif low is not None and high is not None:
            records = _evaluate(ws, duck, base, own, low, high, since, opened, stat)
        else:
            records = []
        new_alerts = alert_store.commit_rule(
            con, report.scan_id, base.rule_id, records, batch_seq=seq,
            rule_hash=baseline_hash(base),
        )
        stat.seconds += time.monotonic() - started
        stat.alerts = len(new_alerts)
        stat.mark_memory()
        report.alerts.extend(new_alerts)


def _with_model(
    ws: Workspace,
    con: sqlite3.Connection,
    duck: duckdb.DuckDBPyConnection,
    base: CompiledBaseline,
    own: list[str],
    after: int,
    upto: int,
    low: datetime | None,
    high: datetime | None,
    opened: set[str],
    stat: RuleStat,
) -> list[AlertRecord]:
    """Alerts from the new files and the model, then the model extended to `upto` (its
    manifest is written before the watermark commits: see `basemodel`)."""
    extra = {"digest_key": ws.secret_key().hex()}
    params = basemodel.model_params(base, extra)
    model = _model(ws, con, duck, base, params, after, opened, stat)
    records: list[AlertRecord] = []
    new_relation = parquet_relation(own) if own else _NO_EVENTS
    if low is not None and high is not None:
        opened.update(own)
        stat.files_read += len(own) + len(model.files)
        stat.rows_read += _rows(duck, own + model.files) if own or model.files else 0
        rows = model_rows(
            duck, base, basemodel.relation(model, base, new_relation), new_relation,
            low=low, high=high, lake_start=lake_start(ws, base.sources), extra=extra,
        )
        stat.matches += sum(int(row["event_count"]) for row in rows)
        records = [_record(ws, base, row) for row in rows]
    delta = base.aggregate.replace("{relation}", new_relation) if own else None
    basemodel.write_delta(duck, model, delta, params, after, upto, base.combine)
    return records


def _model(
    ws: Workspace,
    con: sqlite3.Connection,
    duck: duckdb.DuckDBPyConnection,
    base: CompiledBaseline,
    params: dict[str, Any],
    after: int,
    opened: set[str],
    stat: RuleStat,
) -> basemodel.Model:
    """The baseline's model at watermark `after`; rebuilt from the lake when it is missing,
    damaged or of another definition (a cold read, once)."""
    directory = basemodel.models_dir(ws.root) / base.rule_id
    hash_ = basemodel.model_hash(base, params)
    found = basemodel.load(directory, hash_, after) if after else None
    if found is not None:
        return found
    model = basemodel.fresh(directory, hash_)
    if after == 0:
        return model
    files = batch_range(ws, con, 0, after).files
    paths = sorted(p for s in base.sources for p in files.get(s, []))
    opened.update(paths)
    stat.files_read += len(paths)
    sql = base.aggregate.replace("{relation}", parquet_relation(paths)) if paths else None
    return basemodel.write_delta(duck, model, sql, params, 0, after, base.combine)


def prime_models(
    ws: Workspace,
    con: sqlite3.Connection,
    duck: duckdb.DuckDBPyConnection,
    compiled: list[CompiledBaseline],
) -> None:
    """Build (or check) every baseline's model at its current watermark, without scanning:
    the cold read a first increment would otherwise pay (a bench or an upgrade does it
    ahead of time)."""
    marks = alert_store.watermarks(con)
    extra = {"digest_key": ws.secret_key().hex()}
    for base in compiled:
        after = marks.get(base.rule_id, (0, ""))[0]
        stat = RuleStat(base.rule_id, base.title, "baseline", base.level)
        _model(ws, con, duck, base, basemodel.model_params(base, extra), after, set(), stat)


def _all_sources(ws: Workspace) -> list[str]:
    return [p.name.removeprefix("source=") for p in ws.lake_dir.glob("source=*") if p.is_dir()]


def _run(duck: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    try:
        return duck.execute(sql, params or [])
    except duckdb.Error as exc:
        message = " ".join(str(exc).split())
        raise ScanError(f"baseline query failed: {message}", title="Scan failed") from exc


def _span(
    duck: duckdb.DuckDBPyConnection, files: list[str]
) -> tuple[datetime | None, datetime | None]:
    """The time range of the new events (the `ts` column only is read)."""
    row = _run(duck, f"SELECT min(ts), max(ts) FROM {parquet_relation(files)}").fetchall()[0]
    return row[0], row[1]


def _no_events() -> str:
    """An empty relation shaped like the lake's (a silence baseline whose own sources sent
    nothing new still decides: the quiet is what it looks for)."""
    types = {"string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER", "double": "DOUBLE",
             "list<item: string>": "VARCHAR[]"}
    columns = [
        f"NULL::{types.get(str(f.type), 'TIMESTAMPTZ')} AS {f.name}"
        for f in EVENT_SCHEMA if f.name != "pii_findings"
    ]
    return f"(SELECT {', '.join(columns)}, NULL::VARCHAR AS filename LIMIT 0)"


_NO_EVENTS = _no_events()


def _rows(duck: duckdb.DuckDBPyConnection, paths: list[str]) -> int:
    """Rows in the files read (Parquet footers only), for `--stats`."""
    listed = parquet_relation(paths).split("[", 1)[1].split("]", 1)[0]
    row = _run(duck, f"SELECT sum(num_rows) FROM parquet_file_metadata([{listed}])").fetchall()[0]
    return int(row[0] or 0)


def lake_start(ws: Workspace, sources: Sequence[str]) -> datetime | None:
    """Midnight of the first date partition of `sources` (None: nothing in the lake yet)."""
    days = [
        d.name.removeprefix("date=")
        for s in sources
        for d in (ws.lake_dir / f"source={s}").glob("date=*")
        if any(d.glob("*.parquet"))
    ]
    if not days:
        return None
    return datetime.fromisoformat(min(days)).replace(tzinfo=UTC)


def _evaluate(
    ws: Workspace,
    duck: duckdb.DuckDBPyConnection,
    base: CompiledBaseline,
    new_files: list[str],
    low: datetime,
    high: datetime,
    since: datetime | None,
    opened: set[str],
    stat: RuleStat,
) -> list[AlertRecord]:
    start = low - base.lookback
    paths = lookback_files(ws, list(base.sources), start, high)
    if not paths:
        return []
    opened.update(paths)
    stat.files_read += len(paths)
    stat.rows_read += _rows(duck, paths)
    rows = baseline_rows(duck, base, paths, new_files, low=low, high=high, since=since,
                         lake_start=lake_start(ws, base.sources),
                         extra={"digest_key": ws.secret_key().hex()})
    stat.matches += sum(int(row["event_count"]) for row in rows)
    return [_record(ws, base, row) for row in rows]


def window(base: CompiledBaseline, low: datetime, high: datetime) -> dict[str, Any]:
    """The history a baseline reads for new events in `[low, high]`: whole UTC days, from
    the day of `low - lookback` to the end of the day of `high` (`$start`, `$high`), so a
    model's daily and hourly buckets cover it exactly. `$newest` is the newest event."""
    day = timedelta(days=1)
    start = (low - base.lookback).replace(hour=0, minute=0, second=0, microsecond=0)
    end = high.replace(hour=0, minute=0, second=0, microsecond=0) + day
    return {"low": low, "start": start, "high": end - timedelta(microseconds=1),
            "newest": high}


def _execute(
    duck: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    used = set(re.findall(r"\$([a-z_0-9]+)", sql))  # DuckDB wants exactly the ones used
    result = _run(duck, sql, {k: v for k, v in params.items() if k in used})
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def baseline_rows(
    duck: duckdb.DuckDBPyConnection,
    base: CompiledBaseline,
    paths: list[str],
    new_files: list[str],
    *,
    low: datetime,
    high: datetime,
    since: datetime | None,
    lake_start: datetime | None,
    extra: dict[str, Any],
) -> list[dict[str, Any]]:
    """The baseline's alert rows over `paths` (history and new files), one dict each.
    `extra` holds `digest_key` (the workspace's key: prompt values are compared by it)."""
    params = {
        **base.params, **extra, "new_files": new_files, "since": since or EPOCH,
        **window(base, low, high), "lake_start": lake_start,
    }
    return _execute(duck, base.sql(parquet_relation(paths)), params)


def model_rows(
    duck: duckdb.DuckDBPyConnection,
    base: CompiledBaseline,
    model: str,
    new_relation: str,
    *,
    low: datetime,
    high: datetime,
    lake_start: datetime | None,
    extra: dict[str, Any],
) -> list[dict[str, Any]]:
    """The same rows as `baseline_rows`, from the new events and the history's model."""
    params = {**base.params, **extra, **window(base, low, high), "lake_start": lake_start}
    return _execute(duck, base.decide_sql(new_relation, model), params)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _record(ws: Workspace, base: CompiledBaseline, item: dict[str, Any]) -> AlertRecord:
    spec = base.loaded.spec
    fields = dict(zip(spec.by, item["principal"], strict=True))
    group_key = ", ".join(f"{k}={v}" for k, v in fields.items())
    events = item["events"] or []
    linked = tuple(
        AlertEvent(e["event_id"], _iso(e["ts"]), e["source"], e["source_file"],
                   e["source_offset"], relative_lake_file(e["lake_file"], ws))
        for e in events[:MAX_EVENTS_PER_ALERT]
    )
    first_ts = _iso(item["first_ts"])
    alert = Alert(
        alert_id=alert_id_for(base.rule_id, group_key, linked[0].event_id if linked else
                              str(item["subject"]), first_ts),
        rule_id=base.rule_id, rule_title=base.title, level=base.level, group_key=group_key,
        first_ts=first_ts, last_ts=_iso(item["last_ts"]),
        event_count=int(item["event_count"]), tags=tuple(spec.tags), events=linked,
    )
    detail: dict[str, Any] = {"baseline": spec.kind, _SUBJECT[spec.kind]: item["subject"]}
    detail.update(json.loads(item["detail"]) if item["detail"] else {})
    if len(events) > MAX_EVENTS_PER_ALERT:
        detail["events_truncated"] = True
    return AlertRecord(alert, "baseline", fields, detail)


_SUBJECT = {"first_seen": "value", "volume": "hour", "hours": "day", "silence": "gap_start"}


def describe_window(base: CompiledBaseline) -> str:
    """`14d (min history 7d)`: what `sentinel baselines list` shows."""
    spec = base.loaded.spec
    return f"{spec.learning} (min history {_short(spec.min_history_window)})"


def _short(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
