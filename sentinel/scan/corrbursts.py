"""A correlation scan's bursts from its state: the kept hits before the first new event,
the hits recomputed from it on, and the frozen bursts (`sentinel.scan.correlate`).

Why an increment may keep hits: a hit at `ts` depends only on the matched events in
`[ts - timespan, ts]`, so the hits before the first new matched event (`cut`) are those
the previous scan found, and only the hits from `cut` on are recomputed, over the
matched events from `cut - timespan` on. Whether a hit joins the burst before it depends
only on the last hit before it (its time) and on that burst's start, so of the kept hits
only each group's last one before `cut` is put back, in front of the new ones, with its
burst's start as its window start (as the frozen bursts are, `corrstate`): its burst then
spans from that start, and the numbering below is that of the whole history.

Temp tables (dropped by `correlate._drop`): `corr_hits` (recomputed hits, one row per
group and instant: its earliest window start), `corr_kept` (kept hits in
`[settled, cut)`: group, ts, burst_start), `corr_frozen`, `corr_burst_hits` (one row
per group and timespan-wide bucket of hits, numbered by burst), `corr_spans` (bursts,
with the frozen burst each continues), `corr_new_hits` (the recomputed hits with their
burst's start: the next layer of kept hits).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from sentinel.detect.corrparts import CorrelationParts, hits_from_cte
from sentinel.detect.fields import quote_identifier, quote_literal
from sentinel.scan import corrstate
from sentinel.scan.evaluate import _run

_EXCLUDE = "file_no, file_row, tail_no, is_new"


def ts_sql(value: datetime) -> str:
    return f"'{value.isoformat()}'::TIMESTAMPTZ"


def keys_sql(group: tuple[str, ...], left: str, right: str) -> str:
    return "".join(f" AND {left}.{quote_identifier(g)} = {right}.{quote_identifier(g)}"
                   for g in group)


def _columns(group: tuple[str, ...], prefix: str = "") -> str:
    return "".join(f"{prefix}{quote_identifier(g)}, " for g in group)


def kept_sql(
    state: corrstate.State, group: tuple[str, ...], low: datetime | None,
    high: datetime | None,
) -> str | None:
    """The state's kept hits (group…, ts, burst_start) in `[low, high)`, each layer read
    for the times it holds; None: there are none."""
    selects = []
    for path, start, until in state.layers():
        lo = max(start, low) if low is not None else start
        ends = [t for t in (until, high) if t is not None]
        hi = min(ends) if ends else None
        if hi is not None and hi <= lo:
            continue
        where = f"ts >= {ts_sql(lo)}" + (f" AND ts < {ts_sql(hi)}" if hi is not None else "")
        selects.append(f"SELECT {_columns(group)}ts, burst_start FROM read_parquet("
                       f"{quote_literal(path)}) WHERE {where}")
    return " UNION ALL ".join(selects) or None


def kept_start(
    duck: duckdb.DuckDBPyConnection, state: corrstate.State, group: tuple[str, ...],
    cut: datetime | None, seconds: int,
) -> datetime | None:
    """The earliest start, at or after `settled - timespan`, of the bursts of the kept
    hits before `cut` (None: none; see `corrrows.tail_floor`)."""
    if state.hits is None or state.settled is None:
        return None
    kept = kept_sql(state, group, state.settled, cut)
    if kept is None:
        return None
    floor = ts_sql(state.settled - timedelta(seconds=seconds))
    found: datetime | None = _run(duck, f"SELECT min(burst_start) FROM ({kept}) WHERE "
                                  f"burst_start >= {floor}").fetchall()[0][0]
    return found


def bursts(
    duck: duckdb.DuckDBPyConnection,
    parts: CorrelationParts,
    state: corrstate.State,
    cut: datetime | None,
    fresh: bool,
) -> None:
    """The temp tables of the module doc. `fresh`: hits are recomputed from `cut` (None:
    from the first matched event); otherwise none are and every kept hit stands."""
    group = parts.group
    columns = _columns(group)
    no_hits = (f"SELECT {columns}NULL::TIMESTAMPTZ AS ts, NULL::TIMESTAMPTZ AS window_start "
               "FROM corr_cand LIMIT 0")
    if fresh:
        floor = (f" WHERE ts >= {ts_sql(cut - timedelta(seconds=parts.seconds))}"
                 if cut is not None else "")
        after = f" WHERE ts >= {ts_sql(cut)}" if cut is not None else ""
        since = hits_from_cte(ts_sql(cut) if cut is not None else None)
        hits = (f"WITH matched AS (SELECT * EXCLUDE ({_EXCLUDE}) FROM corr_cand{floor}), "
                f"{since}, {', '.join(parts.decide)} SELECT {columns}ts, min(window_start) AS "
                f"window_start FROM hits{after} GROUP BY ALL")
    else:
        hits = no_hits
    _run(duck, f"CREATE OR REPLACE TEMP TABLE corr_hits AS {hits}")
    kept = None
    if state.hits is not None and state.settled is not None:
        kept = kept_sql(state, group, state.settled, cut if fresh else None)
    _run(duck, "CREATE OR REPLACE TEMP TABLE corr_kept AS "
         + (kept or f"SELECT {columns}ts, window_start AS burst_start FROM ({no_hits})"))
    if state.frozen_file is not None:
        frozen = f"SELECT * FROM read_parquet({quote_literal(state.frozen_file)})"
    else:
        frozen = (f"SELECT {columns}NULL::TIMESTAMPTZ AS burst_start, NULL::TIMESTAMPTZ AS "
                  "last_hit, NULL::VARCHAR AS first_event, NULL::BIGINT AS count_before "
                  "FROM corr_cand LIMIT 0")
    _run(duck, f"CREATE OR REPLACE TEMP TABLE corr_frozen AS {frozen}")
    partition = f"PARTITION BY {columns.removesuffix(', ')} " if group else ""
    # Hits less than a timespan apart are in one burst: the later one's window holds the
    # earlier one, a matched event, so its `window_start` is at or before it. So only the
    # first hit of a group in a timespan-wide bucket can start a burst, and the numbering
    # runs over one row per bucket (its first hit's window start, its last hit) instead of
    # one per instant: a key over its threshold for hours has thousands of instants. A
    # kept burst's last hit (`prefix`, before every recomputed one) is a row of its own.
    _run(duck, "CREATE OR REPLACE TEMP TABLE corr_burst_hits AS WITH before AS ("
         f"SELECT {columns}last_hit AS ts, burst_start FROM corr_frozen UNION ALL "
         f"SELECT {columns}ts, burst_start FROM corr_kept), "
         f"prefix AS (SELECT {columns}max(ts) AS ts, arg_max(burst_start, ts) AS window_start "
         "FROM before GROUP BY ALL HAVING count(*) > 0), "
         f"runs AS (SELECT {columns}{_bucket('ts', parts.seconds)} AS bucket, min(ts) AS ts, "
         "arg_min(window_start, ts) AS window_start, max(ts) AS last_hit, false AS kept "
         f"FROM corr_hits GROUP BY ALL UNION ALL SELECT {columns}NULL, ts, window_start, ts, "
         "true FROM prefix), "
         f"starts AS (SELECT *, CASE WHEN window_start <= lag(last_hit) OVER ({partition}"
         "ORDER BY ts) THEN 0 ELSE 1 END AS new_burst FROM runs) "
         f"SELECT {columns}bucket, ts, window_start, last_hit, kept, sum(new_burst) OVER "
         f"({partition}ORDER BY ts ROWS UNBOUNDED PRECEDING) AS burst FROM starts")
    # A burst starts at its first event at or after its first hit's window start (the
    # decision may give `ts - timespan`, `CorrelationParts.decide`); one that goes on from
    # the state starts where the state says (its first event may lie before the tail).
    _run(duck, "CREATE OR REPLACE TEMP TABLE corr_spans AS WITH spans AS (SELECT "
         f"{columns}burst, arg_min(window_start, ts) AS window_start, arg_min(kept, ts) AS "
         "kept, max(last_hit) AS window_end FROM corr_burst_hits GROUP BY ALL), "
         f"events AS (SELECT {columns}ts FROM corr_cand WHERE ts >= (SELECT min(window_start) "
         "FROM spans WHERE NOT kept)), "
         "started AS (SELECT s.* EXCLUDE (kept) REPLACE (CASE WHEN s.kept THEN s.window_start "
         "ELSE coalesce(e.ts, s.window_start) END AS window_start) FROM spans s ASOF LEFT JOIN "
         f"events e ON s.window_start <= e.ts{keys_sql(group, 's', 'e')}) "
         "SELECT s.*, f.first_event AS frozen_first, f.count_before AS frozen_count FROM "
         "started s LEFT JOIN corr_frozen f "
         f"ON s.window_start = f.burst_start{keys_sql(group, 's', 'f')}")
    # Every recomputed hit (all at or after `cut`) with its burst's start, by its bucket.
    _run(duck, "CREATE OR REPLACE TEMP TABLE corr_new_hits AS WITH started AS (SELECT "
         f"{_columns(group, 'b.')}b.bucket, s.window_start FROM corr_burst_hits b JOIN "
         f"corr_spans s ON s.burst = b.burst{keys_sql(group, 's', 'b')} WHERE NOT b.kept) "
         f"SELECT {_columns(group, 'h.')}h.ts, r.window_start AS burst_start FROM corr_hits h "
         f"JOIN started r ON r.bucket = {_bucket('h.ts', parts.seconds)}"
         f"{keys_sql(group, 'h', 'r')}")


def _bucket(ts: str, seconds: int) -> str:
    """The timespan-wide bucket of `ts` (floor division of its epoch microseconds: two
    times in one bucket are less than a timespan apart, before 1970 too)."""
    width = max(seconds, 1) * 1_000_000
    return f"(epoch_us({ts}) // {width} - (epoch_us({ts}) % {width} < 0)::BIGINT)"


def frozen_sql(
    group: tuple[str, ...], old: datetime | None, settled: datetime, span: timedelta
) -> str:
    """Per group, the burst of its last hit before `settled` (if it can still grow: that
    hit is within a timespan of `settled`), with its events before `settled`: from the
    frozen bursts, the kept hits and the new ones."""
    columns = _columns(group)
    f_columns = _columns(group, "f.")
    previous = ts_sql(old) if old is not None else "NULL"
    return (
        f"WITH every AS (SELECT {columns}last_hit AS ts, burst_start FROM corr_frozen "
        f"UNION ALL SELECT {columns}ts, burst_start FROM corr_kept "
        f"UNION ALL SELECT {columns}ts, burst_start FROM corr_new_hits), "
        f"last AS (SELECT {columns}max(ts) AS last_hit, arg_max(burst_start, ts) AS "
        f"burst_start FROM every WHERE ts < {ts_sql(settled)} GROUP BY ALL "
        "HAVING count(*) > 0), "
        "f AS (SELECT l.*, o.first_event AS frozen_first, o.count_before AS frozen_count, "
        f"CASE WHEN o.count_before IS NULL THEN l.burst_start ELSE {previous} END AS "
        f"count_from FROM last l LEFT JOIN corr_frozen o ON o.burst_start = l.burst_start"
        f"{keys_sql(group, 'o', 'l')} WHERE l.last_hit >= {ts_sql(settled - span)}) "
        f"SELECT {f_columns}f.burst_start, f.last_hit, coalesce(f.frozen_first, "
        "min(m.event_id) FILTER (WHERE m.ts = f.burst_start)) AS first_event, "
        "coalesce(f.frozen_count, 0) + count(DISTINCT m.event_id) AS count_before FROM f "
        f"LEFT JOIN corr_cand m ON m.ts >= f.count_from AND m.ts < {ts_sql(settled)}"
        f"{keys_sql(group, 'm', 'f')} GROUP BY {f_columns}f.burst_start, f.last_hit, "
        "f.frozen_first, f.frozen_count"
    )
