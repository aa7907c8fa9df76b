"""A baseline's model: hourly aggregates of its history, and the SQL that decides over it.

Re-reading a baseline's learning window on every scan reads the old lake again and again
(on a 10,000,000-event lake, 178–356 files per baseline for a 10,000-event increment).
Every kind needs only a few aggregates per principal and hour of the history, so a scan
keeps them as a *model* (`sentinel.scan.basemodel` stores it) and reads only the new
batches' files plus the model. This module compiles, per kind:

- `aggregate`: events (a `{relation}`) to model rows, grouped by principal and UTC hour
  (first_seen: by principal, value and UTC day). Merging two models is the same
  grouping over their union (`combine`): every aggregate is a min, max, sum or
  arg-min/max, so a model built in increments equals one built in one go.
- `decide`: the kind's alerts from the new events (`{relation}`) and the model
  (`{model}`), the same columns and the same rows as `sentinel.detect.baseline_sql`'s
  query over the whole lookback. Both read the history in whole UTC days `[$start,
  $high]` (`sentinel.scan.baselines.window`), so a model's buckets cover it exactly.

What a model holds per kind (principal columns p0…pN in clear: who and from where):
- first_seen: per (principal, day) the first event's time (`value` NULL), and per
  (principal, value, day) the last watched event's time. A value of a column that
  carries prompt or response text is a keyed digest (`$digest_key`) from the query's
  first step on (`baseline_parts.first_seen_value`), so a model never holds the text.
- hours: the (principal, UTC hour) pairs with a watched event; the baseline's time zone
  turns them into local days and hours when deciding (each UTC hour is one local hour:
  zones with whole-hour offsets only), so changing the zone keeps the model.
- volume: per (principal, hour) the exact sum of the measure (integers, or cost as
  DECIMAL(38,9): a sum in any order gives the same double afterwards).
- silence: per (principal, hour) the watched and all-event counts and the provenance of
  the hour's last and first watched events (ties broken by event id), the events an
  alert links before and after a gap.
"""

from __future__ import annotations

from typing import Any

from sentinel.detect.baseline import Baseline, FirstSeen, Volume
from sentinel.detect.baseline_parts import (
    LOCAL_DAY_HOUR,
    MEASURES,
    RELATION,
    first_seen_value,
    principal_columns,
    where_sql,
)

MODEL = "{model}"
"""Where the scan puts the model relation."""
EV = "struct_pack(event_id, ts, source, source_file, source_offset, lake_file)"


def _p(spec: Baseline, prefix: str = "") -> str:
    return ", ".join(f"{prefix}p{i}" for i in range(len(spec.by)))


def _rows(spec: Baseline, params: dict[str, Any], extra: str = "", window: bool = False) -> str:
    """`s`: the events of `{relation}` with principal, `watched` and provenance columns."""
    select, not_null, _ = principal_columns(spec)
    bound = "ts BETWEEN $start AND $high AND " if window else ""
    return (
        "s AS (SELECT event_id, ts, source, source_file, source_offset, filename AS lake_file, "
        f"date_trunc('hour', ts) AS hour, {', '.join(select)}, {where_sql(spec, params)} "
        f"AS watched{extra} FROM {RELATION} WHERE {bound}{not_null})"
    )


def _value(spec: FirstSeen) -> tuple[str, str, str]:
    """(extra columns of `s`, the value expression, the model key expression over `value`).

    Prompt text is already a keyed digest in `s` (`first_seen_value`), so the model keys on
    what the query compares and never holds the text."""
    extra, value = first_seen_value(spec)
    return extra, value, "value"


def aggregate_sql(spec: Baseline, params: dict[str, Any]) -> str:
    """Model rows of the events in `{relation}` (all of them: no time window)."""
    p = _p(spec)
    if isinstance(spec, FirstSeen):
        extra, value, key = _value(spec)
        return f"""WITH {_rows(spec, params, extra)}
SELECT {p}, NULL::VARCHAR AS value, date_trunc('day', ts) AS day, min(ts) AS min_ts,
       NULL::TIMESTAMPTZ AS max_ts
FROM s GROUP BY ALL
UNION ALL
SELECT {p}, {key} AS value, date_trunc('day', ts) AS day, NULL::TIMESTAMPTZ AS min_ts,
       max(ts) AS max_ts
FROM (SELECT * FROM (SELECT *, {value} AS value FROM s WHERE watched) WHERE value IS NOT NULL)
GROUP BY ALL"""
    if spec.kind == "hours":
        return f"WITH {_rows(spec, params)}\nSELECT DISTINCT {p}, hour FROM s WHERE watched"
    if isinstance(spec, Volume):
        return f"""WITH {_rows(spec, params, _measure(spec))}
SELECT {p}, hour, {_measure_sum(spec, "sum(m)")} AS v FROM s WHERE watched GROUP BY {p}, hour"""
    return f"""WITH {_rows(spec, params)}
SELECT {p}, hour, count(*) FILTER (WHERE watched) AS n, count(*) AS n_all,
       arg_max({EV}, (ts, event_id)) FILTER (WHERE watched) AS last_ev,
       arg_min({EV}, (ts, event_id)) FILTER (WHERE watched) AS first_ev
FROM s GROUP BY {p}, hour"""


def _measure(spec: Baseline) -> str:
    return f", {MEASURES[spec.measure]} AS m" if isinstance(spec, Volume) else ""


def _measure_sum(spec: Volume, expr: str) -> str:
    return f"CAST({expr} AS {'DECIMAL(38,9)' if spec.measure == 'cost' else 'BIGINT'})"


def combine_sql(spec: Baseline) -> str:
    """One model from several (`{model}`): the aggregation of `aggregate_sql` again."""
    p = _p(spec)
    if isinstance(spec, FirstSeen):
        return (f"SELECT {p}, value, day, min(min_ts) AS min_ts, max(max_ts) AS max_ts "
                f"FROM {MODEL} GROUP BY {p}, value, day")
    if spec.kind == "hours":
        return f"SELECT DISTINCT {p}, hour FROM {MODEL}"
    if isinstance(spec, Volume):
        return f"SELECT {p}, hour, {_measure_sum(spec, 'sum(v)')} AS v FROM {MODEL} GROUP BY ALL"
    return f"""SELECT {p}, hour, sum(n)::BIGINT AS n, sum(n_all)::BIGINT AS n_all,
       arg_max(last_ev, (last_ev.ts, last_ev.event_id)) AS last_ev,
       arg_min(first_ev, (first_ev.ts, first_ev.event_id)) AS first_ev
FROM {MODEL} GROUP BY {p}, hour"""


def decide_sql(spec: Baseline, params: dict[str, Any], full_sql: str) -> str:
    """The alerts from the new events (`{relation}`) and the model (`{model}`).

    `full_sql` is the kind's query over the whole lookback: its decision part (everything
    after the history is built) is reused here unchanged, so the two cannot drift apart.
    """
    p = _p(spec)
    extra = _value(spec)[0] if isinstance(spec, FirstSeen) else _measure(spec)
    head = "WITH " + _rows(spec, params, extra, window=True).replace(
        "lake_file,", "lake_file, true AS is_new,", 1)
    bucket = "day" if isinstance(spec, FirstSeen) else "hour"
    model = f"mdl AS (SELECT * FROM {MODEL} WHERE {bucket} BETWEEN $start AND $high)"
    if isinstance(spec, FirstSeen):
        _, value, key = _value(spec)
        history = f"""{head},
{model},
pr AS (SELECT {p}, min(since) AS since FROM (SELECT {p}, ts AS since FROM s UNION ALL
       SELECT {p}, min_ts FROM mdl WHERE value IS NULL) GROUP BY ALL),
v AS (SELECT * FROM (SELECT *, {value} AS value FROM s WHERE watched) WHERE value IS NOT NULL),
old AS (SELECT {p}, value AS vkey, max(max_ts) AS last_old FROM mdl WHERE value IS NOT NULL
        GROUP BY ALL),
nv AS (SELECT *, {key.replace("value", "v.value")} AS vkey,
              lag(ts) OVER (PARTITION BY {p}, value ORDER BY ts, event_id) AS prev FROM v),
firsts AS (SELECT {p}, value, min(ts) AS first_new FROM nv LEFT JOIN old USING ({p}, vkey)"""
        return history + _after(full_sql, "\n           WHERE (prev IS NULL")
    if spec.kind == "hours":
        history = f"""{head},
{model},
w AS (SELECT *{LOCAL_DAY_HOUR.format(ts="ts")} FROM s WHERE watched),
dh AS (SELECT DISTINCT {p}{LOCAL_DAY_HOUR.format(ts="hour")}
       FROM (SELECT {p}, hour FROM mdl UNION ALL SELECT {p}, hour FROM w)),"""
        return history + _after(full_sql, "\ndays AS (")
    if isinstance(spec, Volume):
        history = f"""{head},
{model},
w AS (SELECT * FROM s WHERE watched),
h AS (SELECT {p}, hour, sum(part)::DOUBLE AS v, bool_or(has_new) AS has_new
      FROM (SELECT {p}, hour, v AS part, false AS has_new FROM mdl UNION ALL
            SELECT {p}, hour, sum(m), true FROM w GROUP BY {p}, hour) GROUP BY ALL),"""
        return history + _after(full_sql, "\nc AS (")
    history = f"""{head},
{model},
c AS (SELECT {p}, hour, sum(n)::BIGINT AS n, sum(n_all)::BIGINT AS n_all,
             arg_max(last_ev, (last_ev.ts, last_ev.event_id)) AS last_ev,
             arg_min(first_ev, (first_ev.ts, first_ev.event_id)) AS first_ev
      FROM (SELECT {p}, hour, n, n_all, last_ev, first_ev FROM mdl UNION ALL
            SELECT {p}, hour, count(*) FILTER (WHERE watched), count(*),
                   arg_max({EV}, (ts, event_id)) FILTER (WHERE watched),
                   arg_min({EV}, (ts, event_id)) FILTER (WHERE watched)
            FROM s GROUP BY {p}, hour) GROUP BY ALL),"""
    on = " AND ".join(f"c.p{i} = f.p{i}" for i in range(len(spec.by)))
    around = f"""
around AS (
  SELECT {_p(spec, "f.")}, f.run,
         arg_max(c.last_ev, (c.last_ev.ts, c.last_ev.event_id))
           FILTER (WHERE c.hour < f.gap_start) AS before,
         arg_min(c.first_ev, (c.first_ev.ts, c.first_ev.event_id))
           FILTER (WHERE c.hour >= f.gap_end) AS after
  FROM f JOIN c ON {on} AND c.n > 0 GROUP BY ALL)"""
    middle = _after(full_sql, "\npr AS (").split("\naround AS (", 1)[0]
    return history + middle + around + _last_select(full_sql)


def _after(sql: str, marker: str) -> str:
    """`sql` from `marker` on (the part of the full query shared with the model's)."""
    index = sql.index(marker)
    return sql[index:]


def _last_select(sql: str) -> str:
    """The final SELECT of a query (after its last CTE)."""
    return sql[sql.rindex("\nSELECT "):]
