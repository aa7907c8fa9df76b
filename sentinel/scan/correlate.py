"""Correlation rules in a scan: the new batches' files plus the rule's state, never the
old lake files, with the alerts a full evaluation over the whole history would give.

The result is defined over the whole history: the rule's query (`detect.correlation`)
over every matched event, and, of its bursts, those that end at or after the first new
matched event (`low`); a burst that lies wholly before it has no new event and was
reported before. A burst's alert id comes from its first event and time
(`store.alerts.alert_id_for`), so a burst that goes on across scans keeps its id and is
not reported twice — which is why the start of a long burst must be known, however far
back it lies.

How an increment gets there without the old files (the *state*, `scan.corrstate`):
a hit at `ts` depends only on the matched events in `[ts - timespan, ts]`, and whether a
hit joins the burst before it depends only on that burst's last hit. So the state keeps,
as of a time `settled`:

- the *tail*: every matched event at or after `settled - timespan`, with its provenance;
- the *frozen* bursts: per group, the burst of its last hit before `settled` (its start,
  first event, last hit and its number of events before `settled`);
- the *kept hits*: the hits at or after `settled`, each with its burst's start.

New matched events at or after `settled` are decided exactly: the hits from the first
new matched event (`cut`) on are recomputed over tail + new events with the rule's own
decision SQL (`CorrelationParts.decide`, the same text as the full query); the kept hits
stand before `cut` (a hit depends only on the events in its window); each group's last
one (or its frozen last hit) is put back in front of the recomputed ones, and bursts
form as in the full query (`scan.corrbursts`). Then `settled` moves to
`min(newest event, now) - LATENESS` and the state is written before the watermark
commits. A new matched event older than `settled` (more than `LATENESS` late), a burst
going on whose alert is not in `state.db`, or a missing, damaged or changed state make
the scan read the rule's whole history once (the full path, the same code with an empty
state) and rebuild the state from it. A `--since` rescan takes the full path and leaves
the state alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from sentinel.detect.compiler import CachedRule, CompiledRule
from sentinel.detect.corrparts import CorrelationParts
from sentinel.detect.fields import quote_identifier, quote_literal
from sentinel.scan import corrbursts, corrrows, corrstate
from sentinel.scan.evaluate import (
    MAX_EVENTS_PER_ALERT,
    ScanError,
    _arrow,
    _keep_links,
    _record,
    _run,
)
from sentinel.scan.lakefiles import all_files, batch_range
from sentinel.scan.report import RuleStat
from sentinel.store.alerts import AlertRecord
from sentinel.workspace import Workspace

if TYPE_CHECKING:
    import sqlite3

FEW_BURSTS = 4
"""Up to this many reported bursts in a group, their events are found by a hash join on
the group (events x bursts of their group), else by an ASOF join."""
LATENESS = timedelta(hours=2)
"""How late (behind the newest matched event) an event may arrive and still be decided
from the state; an older one makes the scan re-read the rule's history once."""


@dataclass
class Context:
    """What a scan gives every correlation rule it runs."""

    ws: Workspace
    duck: duckdb.DuckDBPyConnection
    con: sqlite3.Connection
    after: dict[str, int]
    """Per rule id, the watermark it last ran to (0: never)."""
    upto: int | None
    """The batch the scan advances to; None for a `--since` rescan (no state written)."""
    since: datetime | None
    opened: set[str]
    stats: dict[str, RuleStat]
    lateness: timedelta | None = None
    """None: `LATENESS`."""
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def evaluate_correlation(
    ctx: Context, rule: CompiledRule, sources: list[str], new_files: list[str]
) -> list[AlertRecord]:
    """The rule's alerts for the events of `new_files`; links left in LINKS_TABLE."""
    parts, old_matched = cut(rule)
    directory = corrstate.state_dir(ctx.ws.root, rule.rule_id)
    hash_ = rule_state_hash(rule)
    stat = ctx.stats[rule.rule_id]
    if ctx.since is None and ctx.upto is not None:
        after = ctx.after.get(rule.rule_id, 0)
        state = corrstate.load(directory, rule.rule_id, hash_, after,
                               lambda upto: _quiet(ctx, sources, upto, after))
        reason = "no state of this definition at its watermark"
        if state is not None:
            found = _decide(ctx, rule, sources, parts, old_matched, state, None, new_files)
            if not isinstance(found, str):
                stat.shared = "from the new files and its state"
                return found
            reason = found
        history = batch_range(ctx.ws, ctx.con, 0, ctx.upto).files
        paths = [p for s in sources for p in history.get(s, [])]
    else:
        reason = "a --since rescan"
        paths = [p for ps in all_files(ctx.ws, sources, None).values() for p in ps]
    stat.shared = f"whole history read ({reason})"
    rebuilt = corrstate.empty(directory, rule.rule_id, hash_)
    found = _decide(ctx, rule, sources, parts, old_matched, rebuilt, paths, new_files)
    assert not isinstance(found, str)  # an empty state never sends the scan to the lake
    return found


def rule_state_hash(rule: CompiledRule) -> str:
    """The state's definition: the rule's SQL (another SQL, another state)."""
    return hashlib.sha256(rule.sql.encode()).hexdigest()[:16]


def cut(rule: CompiledRule) -> tuple[CorrelationParts, str]:
    """The rule's query in parts over the new files (`corr_new`), checked against the SQL
    it was compiled to, and its `matched` select over the history (`corr_old`). A rule
    from a kept compile (`scan.packcache`) brings them along, checked when it was read:
    cutting it again would import pySigma and compile the pack."""
    if isinstance(rule.loaded, CachedRule) and rule.loaded.cut is not None:
        return rule.loaded.cut
    from sentinel.detect.correlation import correlation_parts  # pySigma: only when cutting

    sigma = rule.loaded.rule
    try:
        plain = correlation_parts("events", sigma)  # type: ignore[arg-type]
        parts = correlation_parts("corr_new", sigma, provenance=True)  # type: ignore[arg-type]
        old = correlation_parts("corr_old", sigma, provenance=True)  # type: ignore[arg-type]
    except Exception as exc:  # the rule compiled once: any failure here is ours
        raise ScanError(f"correlation {rule.title!r} cannot be cut into parts: {exc}",
                        title="Scan failed") from exc
    if plain.query() != rule.sql:
        raise ScanError(f"correlation {rule.title!r}: its parts do not make its compiled SQL",
                        title="Scan failed")
    return parts, old.matched


def _quiet(ctx: Context, sources: list[str], upto: int, after: int) -> bool:
    files = batch_range(ctx.ws, ctx.con, upto, after).files
    return not any(files.get(s) for s in sources)


def _decide(
    ctx: Context,
    rule: CompiledRule,
    sources: list[str],
    parts: CorrelationParts,
    old_matched: str,
    state: corrstate.State,
    history: list[str] | None,
    new_files: list[str],
) -> list[AlertRecord] | str:
    """Alerts (and the next state) from `state` plus the new files, or, when `history` is
    given, from an empty state and every file in it; a string: why the state cannot
    decide."""
    duck, stat = ctx.duck, ctx.stats[rule.rule_id]
    reading = history if history is not None else new_files
    shift = corrrows.lake_rows(duck, parts, old_matched, ctx.since, history, new_files)
    ctx.opened.update(reading)
    stat.files_read += (len(reading) + len(state.tail_files) + len(state.hit_files)
                        + (1 if state.frozen else 0))
    listed = ", ".join(quote_literal(p) for p in [*reading, *state.tail_files])
    stat.rows_read += int(_run(duck, "SELECT sum(num_rows) FROM parquet_file_metadata("
                               f"[{listed}])").fetchall()[0][0] or 0)
    low, newest = _run(duck, "SELECT min(ts), max(ts) FROM corr_cand WHERE is_new").fetchall()[0]
    if ctx.since is not None and low is not None:
        low = max(low, ctx.since)
    settled = state.settled
    if history is None and settled is not None and low is not None and low < settled:
        _drop(duck)
        return f"an event {settled - low} older than its state allows"
    group = parts.group
    cut, fresh = _cut(state, history, low)
    kept_start = corrbursts.kept_start(duck, state, group, cut, parts.seconds) if fresh else None
    corrrows.add_tail(duck, state, corrrows.tail_floor(state, parts.seconds, cut, fresh,
                                                       kept_start))
    corrbursts.bursts(duck, parts, state, cut, fresh)
    records, numbers, going_on = _report(duck, rule, tuple(sources), group, low, settled,
                                         shift, state)
    if going_on and history is None:
        known = {row[0] for row in ctx.con.execute(
            f"SELECT alert_id FROM alerts WHERE alert_id IN ({', '.join('?' * len(going_on))})",
            going_on)}
        if known != set(going_on):
            _drop(duck)  # its first events are linked from the lake
            return "a burst goes on whose alert is not recorded"
    _keep_links(duck, ctx.ws, "correlation_links", numbers)
    if ctx.since is None and ctx.upto is not None:
        _advance(ctx, parts, state, newest, history is not None, shift, cut, fresh)
    _drop(duck)
    return records


def _cut(
    state: corrstate.State, history: list[str] | None, low: datetime | None
) -> tuple[datetime | None, bool]:
    """From when the hits are recomputed (None: from the first matched event) and
    whether any are: from the first new matched event when the state keeps the hits
    before it, from `settled` when it does not keep them (an older state), not at all
    when nothing new matched."""
    if history is not None:
        return None, True
    if state.hits is None or state.settled is None:  # none kept: from `settled` (or all)
        return state.settled, True
    if low is None:
        return None, False
    return low, True


_ts, _keys = corrbursts.ts_sql, corrbursts.keys_sql


def _report(
    duck: duckdb.DuckDBPyConnection,
    rule: CompiledRule,
    sources: tuple[str, ...],
    group: tuple[str, ...],
    low: datetime | None,
    settled: datetime | None,
    shift: int | None,
    state: corrstate.State,
) -> tuple[list[AlertRecord], list[tuple[int, AlertRecord]], list[str]]:
    """The bursts that end at or after `low`, as records; (burst number, record) of those
    whose events are linked (`correlation_links`); the ids of bursts going on from the
    frozen state (their first events lie before `settled`: not linked again)."""
    where = f"window_end >= {_ts(low)}" if low is not None else "false"
    columns = "".join(f", {quote_identifier(g)}" for g in group)
    since = _ts(settled) if settled is not None else "NULL"
    _run(duck, "CREATE OR REPLACE TEMP TABLE correlation_bursts AS SELECT row_number() OVER "
         f"(ORDER BY window_start{columns}) AS burst_no, *, CASE WHEN frozen_count IS NULL "
         f"THEN window_start ELSE {since} END AS count_from FROM corr_spans WHERE {where}")
    # A group's bursts are disjoint, so each event belongs to the burst that starts last at
    # or before it, if it has not ended: an ASOF join (one sort), not events x bursts. With
    # a few bursts per group (a key over its threshold for days has one), a hash join on
    # the group is the same and skips that sort of every event.
    by_group = f" GROUP BY {columns.removeprefix(', ')}" if group else ""
    most = _run(duck, "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM "
                f"correlation_bursts{by_group})").fetchall()[0][0]
    if most <= FEW_BURSTS:
        member = (f"FROM corr_cand m JOIN {{bursts}} r ON m.ts BETWEEN r.count_from AND "
                  f"r.window_end{_keys(group, 'm', 'r')}")
    else:
        member = ("FROM (SELECT * FROM corr_cand WHERE ts >= (SELECT min(count_from) FROM "
                  f"{{bursts}})) m ASOF JOIN {{bursts}} r ON m.ts >= r.count_from"
                  f"{_keys(group, 'm', 'r')} WHERE m.ts <= r.window_end")
    rows = _run(
        duck,
        f"WITH counted AS (SELECT r.burst_no, count(DISTINCT m.event_id) AS events, "
        "min(m.event_id) FILTER (WHERE m.ts = r.window_start) AS first_event "
        f"{member.format(bursts='correlation_bursts')} GROUP BY r.burst_no) "
        f"SELECT r.burst_no{columns.replace(', ', ', r.')}, r.window_start, r.window_end, "
        "r.frozen_first, r.frozen_count, coalesce(c.events, 0), c.first_event "
        "FROM correlation_bursts r LEFT JOIN counted c USING (burst_no) ORDER BY r.burst_no",
    ).fetchall()
    # Links only for bursts that start here (one going on was linked when it started). An
    # event in several rows (two rules, two files) is linked once, from its first file.
    _run(duck, "CREATE OR REPLACE TEMP TABLE correlation_links AS SELECT r.burst_no AS "
         "alert_no, m.event_id, m.ts, m.file_no, m.file_row, m.tail_no "
         + member.format(bursts="(SELECT * FROM correlation_bursts WHERE frozen_count IS NULL)"))
    corrrows.tail_provenance(duck, "correlation_links", state)
    _run(
        duck,
        "CREATE OR REPLACE TEMP TABLE correlation_links AS SELECT * FROM (SELECT *, "
        "row_number() OVER (PARTITION BY alert_no ORDER BY ts, event_id) AS n FROM ("
        "SELECT * EXCLUDE (tail_no, lake_file) FROM correlation_links QUALIFY row_number() "
        "OVER (PARTITION BY alert_no, event_id ORDER BY file_no, file_row, source_offset) = 1"
        f")) WHERE n <= {MAX_EVENTS_PER_ALERT}",
    )
    _run(
        duck,
        "CREATE OR REPLACE TEMP TABLE correlation_links AS SELECT * FROM ("
        + corrrows.lake_provenance(duck, "SELECT * FROM correlation_links", shift)
        + ") JOIN corr_files USING (file_no)",
    )
    records: list[AlertRecord] = []
    numbers: list[tuple[int, AlertRecord]] = []
    going_on: list[str] = []
    width = len(group)
    for row in rows:
        burst_no, values = row[0], row[1:1 + width]
        start, end, frozen_first, frozen_count, events, first_event = row[1 + width:]
        fields: dict[str, Any] = dict(zip(group, values, strict=True))
        group_key = ", ".join(f"{k}={v}" for k, v in fields.items())
        count = int(events) + int(frozen_count or 0)
        first = frozen_first if frozen_count is not None else first_event
        record = _record(rule, group_key, fields, start, end, count, first, count, sources)
        records.append(record)
        if frozen_count is None:
            numbers.append((int(burst_no), record))
        else:
            going_on.append(record.alert.alert_id)
    return records, numbers, going_on


def _advance(
    ctx: Context,
    parts: CorrelationParts,
    state: corrstate.State,
    newest: datetime | None,
    rebuilt: bool,
    shift: int | None,
    cut: datetime | None,
    fresh: bool,
) -> None:
    """Write the state at `ctx.upto`: `settled` moved on, the tail, frozen bursts and
    kept hits with it; the manifest last (`corrstate.commit`)."""
    assert ctx.upto is not None
    duck, group = ctx.duck, parts.group
    span = timedelta(seconds=parts.seconds)
    if state.newest is not None and (newest is None or state.newest > newest):
        newest = state.newest
    settled = state.settled
    if newest is not None:
        lateness = LATENESS if ctx.lateness is None else ctx.lateness
        candidate = min(newest, ctx.now()) - lateness
        settled = candidate if settled is None else max(settled, candidate)
    directory = state.directory
    tail = [t for t in state.tail if settled is None or
            datetime.fromisoformat(t["newest"]) >= settled - span] if not rebuilt else []
    rewrite = not rebuilt and len(tail) >= corrstate.MAX_TAIL_FILES
    which = "true" if rebuilt else "is_new"
    if rewrite:
        tail = []
    table = corrrows.tail_rows(duck, state, which, settled - span if settled is not None
                               else None, shift, rewrite)
    if table.num_rows:
        name = corrstate.write_table(directory, f"tail-{ctx.upto}-{len(tail)}.parquet", table)
        last = table.column("ts")[-1].as_py()  # the rows are in time order
        tail.append({"file": name, "newest": last.isoformat()})
    frozen = None
    hits: list[dict[str, Any]] = []
    if settled is not None:
        sql = corrbursts.frozen_sql(group, state.settled, settled, span)
        frozen_table = _arrow(duck, sql)
        if frozen_table.num_rows:
            frozen = corrstate.write_table(directory, f"frozen-{ctx.upto}.parquet", frozen_table)
        hits = _keep_hits(ctx, group, state, settled, cut, fresh)
    new = corrstate.State(directory, state.rule, state.hash, ctx.upto, settled, newest, tail,
                          frozen, hits)
    corrstate.commit(None if rebuilt else state, new)


def _keep_hits(
    ctx: Context,
    group: tuple[str, ...],
    state: corrstate.State,
    settled: datetime,
    cut: datetime | None,
    fresh: bool,
) -> list[dict[str, Any]]:
    """The kept hits' layers as of `settled`: the state's layers that still hold hits at
    or after it (cut at `cut`), and the recomputed hits from `cut` on as a new layer
    (written also when empty: it overrides the older layers from `cut` on). After
    `MAX_TAIL_FILES` layers they are rewritten as one."""
    assert ctx.upto is not None
    layers = []
    if state.hits is not None and (cut is not None or not fresh):
        for layer, (_, start, until) in zip(state.hits, state.layers(), strict=True):
            if fresh:  # the new layer holds from `cut` on
                assert cut is not None
                if start >= cut:
                    continue
                until = cut if until is None else min(until, cut)
            if until is None or until > settled:
                layers.append(layer)
    if not fresh:
        return layers
    columns = "".join(f"{quote_identifier(g)}, " for g in group)
    rows = f"SELECT {columns}ts, burst_start FROM corr_new_hits WHERE ts >= {_ts(settled)}"
    start = max(cut, settled) if cut is not None else settled
    if len(layers) >= corrstate.MAX_TAIL_FILES:
        kept = corrbursts.kept_sql(state, group, settled, cut)
        rows = f"{kept} UNION ALL {rows}" if kept else rows
        layers, start = [], settled
    table = _arrow(ctx.duck, rows, order="ts")
    name = corrstate.write_table(state.directory, f"hits-{ctx.upto}.parquet", table)
    return [*layers, {"file": name, "from": start.isoformat()}]


def _drop(duck: duckdb.DuckDBPyConnection) -> None:
    for table in ("corr_cand", "corr_hits", "corr_kept", "corr_frozen", "corr_burst_hits",
                  "corr_spans", "corr_new_hits", "correlation_bursts", "correlation_links",
                  "corr_files"):
        _run(duck, f"DROP TABLE IF EXISTS {table}")
    _run(duck, "DROP VIEW IF EXISTS corr_new")
    _run(duck, "DROP VIEW IF EXISTS corr_old")
