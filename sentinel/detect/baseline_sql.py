"""Baselines compiled to DuckDB SQL: the whole computation happens in one query per baseline.

A compiled baseline reads one relation (the scan fills it in: the lake files of the
baseline's sources over its lookback, `sentinel.scan.baselines`) and these bound
parameters:

    $new_files  VARCHAR[]    the files of the batches committed since the baseline last ran
    $since      TIMESTAMPTZ  events before it are history only (`--since`; else -infinity)
    $low/$high  TIMESTAMPTZ  the time range of the new events (of every source: silence)
    $lake_start TIMESTAMPTZ  the lake's first day for these sources (NULL: empty lake)
    $learning, $min_history INTERVAL, plus each kind's thresholds and the `where` values
    $digest_key VARCHAR      the workspace's digest key (a first_seen over prompt text)

An event is *new* when it comes from `$new_files` and is not before `$since`; only new
events (or, for silence, quiet hours reaching into the new range) can alert. Every query
returns the same columns, one row per alert:

    principal VARCHAR[] (the `by` values), subject VARCHAR (the new value, hour, day or
    gap), first_ts, last_ts, event_count, events (list of provenance structs), detail (JSON)

What each kind computes:
- first_seen: per (principal, value), the previous occurrence of each new watched event
  (`lag` over the new events' ts, and the newest already-scanned occurrence: a hash
  aggregate, so the history is never sorted). A new event whose previous occurrence is
  missing or older than the learning window is a first sighting. It alerts when the
  principal was already seen `min_history` before it, and the lake reaches back a whole
  learning window (a new workspace, or a new employee's first days, stay quiet). Without
  `value`, the first
  watched event of a principal at all (a first Bedrock call by a known principal).
- volume: per principal and hour, the summed measure. An hour with new events alerts when
  the principal has `min_hours` active hours in the learning window before it (the first
  `min_history` ago), and the hour is above `median + mad × 1.4826 × MAD`, at least
  `ratio × median` and at least `min_value` (median and MAD of the principal's own
  active hours: a robust baseline that slow growth and one earlier spike do not move).
- hours: per principal, the hours of the day (in its `timezone`, UTC by default) it was
  active on each day before. A new
  day-hour alerts when on at most `max_days` of those days the principal was active
  within `tolerance` hours of that time of day (and it has `min_days` active days). Hours
  of the *day*, not of the week: a weekday worker who works on a Saturday at the usual
  time is not unusual; at 3 a.m. they are.
- silence: per principal, an hourly grid of event counts from its first event to the
  newest hour. A run of at least `min_gap` quiet hours reaching into the new range
  alerts when the hours it covers would usually hold `min_expected` events: the sum,
  over its hours, of the 10th percentile of that hour of day over the learning window
  before it (nights and weekends count near zero, so only a steady source's silence
  alerts). The events are the last one before the gap and the first after it, if any.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sentinel.detect import baseline_model
from sentinel.detect.baseline import (
    Baseline,
    FirstSeen,
    Hours,
    LoadedBaseline,
    Silence,
    Volume,
)
from sentinel.detect.baseline_compiled import CompiledBaseline
from sentinel.detect.baseline_parts import (
    LOCAL_DAY_HOUR,
    MEASURES,
    RELATION,
    first_seen_value,
    principal_columns,
    where_sql,
)

PROVENANCE = (
    "struct_pack(event_id, ts, source, source_file, source_offset, lake_file) "
    "ORDER BY ts, event_id"
)


def _scoped(spec: Baseline, params: dict[str, Any], extra: str = "") -> str:
    select, not_null, _ = principal_columns(spec)
    return (
        "s AS (SELECT event_id, ts, source, source_file, source_offset, "
        "filename AS lake_file, list_contains($new_files, filename) AND ts >= $since AS is_new, "
        f"{', '.join(select)}, {where_sql(spec, params)} AS watched{extra} "
        f"FROM {RELATION} WHERE ts BETWEEN $start AND $high AND {not_null})"
    )


def _common(spec: Baseline) -> dict[str, Any]:
    return {"learning": spec.learning_window, "min_history": spec.min_history_window}


def _first_seen(spec: FirstSeen, params: dict[str, Any]) -> str:
    p = ", ".join(f"p{i}" for i in range(len(spec.by)))
    _, _, principal = principal_columns(spec)
    extra, value = first_seen_value(spec)
    return f"""WITH {_scoped(spec, params, extra)},
pr AS (SELECT {p}, min(ts) AS since FROM s GROUP BY ALL),
v AS (SELECT * FROM (SELECT *, {value} AS value FROM s WHERE watched) WHERE value IS NOT NULL),
old AS (SELECT {p}, value, max(ts) AS last_old FROM v WHERE NOT is_new GROUP BY ALL),
nv AS (SELECT *, lag(ts) OVER (PARTITION BY {p}, value ORDER BY ts, event_id) AS prev
       FROM v WHERE is_new),
firsts AS (SELECT {p}, value, min(ts) AS first_new FROM nv LEFT JOIN old USING ({p}, value)
           WHERE (prev IS NULL OR prev < ts - $learning)
             AND (last_old IS NULL OR last_old < ts - $learning)
           GROUP BY ALL)
SELECT {principal} AS principal, value AS subject, min(ts) AS first_ts, max(ts) AS last_ts,
       count(*) AS event_count, list({PROVENANCE}) AS events,
       to_json(struct_pack(principal_since := any_value(pr.since))) AS detail
FROM nv JOIN firsts USING ({p}, value) JOIN pr USING ({p})
WHERE nv.ts >= firsts.first_new
  AND pr.since <= firsts.first_new - $min_history
  AND $lake_start <= firsts.first_new - $learning
GROUP BY {p}, value ORDER BY first_ts"""


def _volume(spec: Volume, params: dict[str, Any]) -> str:
    p = ", ".join(f"p{i}" for i in range(len(spec.by)))
    on = " AND ".join(f"h.p{i} = c.p{i}" for i in range(len(spec.by)))
    _, _, principal = principal_columns(spec)
    extra = f", date_trunc('hour', ts) AS hour, {MEASURES[spec.measure]} AS m"
    params.update(
        min_hours=spec.min_hours, mad=spec.threshold.mad, ratio=spec.threshold.ratio,
        min_value=spec.threshold.min_value,
    )
    return f"""WITH {_scoped(spec, params, extra)},
w AS (SELECT * FROM s WHERE watched),
h AS (SELECT {p}, hour, sum(m)::DOUBLE AS v, bool_or(is_new) AS has_new FROM w GROUP BY ALL),
c AS (SELECT * FROM h WHERE has_new AND v >= $min_value),  -- cheap bound first
hist AS (SELECT c.*, h.v AS hv, h.hour AS hhour FROM c JOIN h
         ON {on} AND h.hour < c.hour AND h.hour >= c.hour - $learning),
m AS (SELECT {p}, hour, median(hv) AS med, count(*) AS n, min(hhour) AS since
      FROM hist GROUP BY ALL),
d AS (SELECT {p}, hour, median(abs(hv - med)) AS mad FROM hist JOIN m USING ({p}, hour)
      GROUP BY ALL),
flagged AS (
  SELECT c.*, med, mad, n FROM c JOIN m USING ({p}, hour) JOIN d USING ({p}, hour)
  WHERE n >= $min_hours AND since <= hour - $min_history AND v >= $min_value
    AND v >= $ratio * med AND v > med + $mad * 1.4826 * mad)
SELECT {principal} AS principal, strftime(hour, '%Y-%m-%dT%H:00Z') AS subject,
       min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS event_count,
       list({PROVENANCE}) AS events,
       to_json(struct_pack(measure := {spec.measure!r}, value := any_value(flagged.v),
                           median := any_value(med), mad := any_value(mad),
                           history_hours := any_value(n))) AS detail
FROM w JOIN flagged USING ({p}, hour)
WHERE w.is_new
GROUP BY {p}, hour ORDER BY first_ts"""


def _hours(spec: Hours, params: dict[str, Any]) -> str:
    p = ", ".join(f"p{i}" for i in range(len(spec.by)))
    on = " AND ".join(f"h.p{i} = c.p{i}" for i in range(len(spec.by)))
    _, _, principal = principal_columns(spec)
    extra = LOCAL_DAY_HOUR.format(ts="ts")
    params.update(tolerance=spec.tolerance, max_days=spec.max_days, min_days=spec.min_days,
                  min_events=spec.min_events, tz=spec.timezone)
    # Each active day-hour also counts for the hours within `tolerance` of it (`near`), so
    # "was it active around this time on that day" is an equality join, not a range scan.
    return f"""WITH {_scoped(spec, params, extra)},
w AS (SELECT * FROM s WHERE watched),
dh AS (SELECT DISTINCT {p}, day, hod FROM w),
days AS (SELECT DISTINCT {p}, day FROM dh),
near AS (SELECT DISTINCT {p}, day, (hod + 24 + k) % 24 AS hod
         FROM dh, (SELECT unnest(range(-$tolerance, $tolerance + 1)) AS k)),
c AS (SELECT DISTINCT {p}, day, hod FROM w WHERE is_new),
cd AS (SELECT DISTINCT {p}, day FROM c),
hist AS (SELECT c.{p.replace(', ', ', c.')}, c.day, count(h.day) AS active FROM cd AS c
         JOIN days AS h ON {on} AND h.day < c.day AND h.day >= c.day - $learning
         GROUP BY ALL HAVING count(h.day) >= $min_days
                        AND min(h.day) <= c.day - $min_history),
usual AS (SELECT c.{p.replace(', ', ', c.')}, c.day, c.hod, count(h.day) AS usual_days
          FROM c JOIN hist USING ({p}, day)
          LEFT JOIN near AS h ON {on} AND h.hod = c.hod AND h.day < c.day
               AND h.day >= c.day - $learning
          GROUP BY ALL),
flagged AS (SELECT usual.*, hist.active FROM usual JOIN hist USING ({p}, day)
            WHERE usual_days <= $max_days)
SELECT {principal} AS principal, strftime(day, '%Y-%m-%d') AS subject,
       min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS event_count,
       list({PROVENANCE}) AS events,
       to_json(struct_pack(hours := list(DISTINCT hod ORDER BY hod),
                           history_days := max(flagged.active))) AS detail
FROM w JOIN flagged USING ({p}, day, hod)
WHERE w.is_new
GROUP BY {p}, day HAVING count(*) >= $min_events ORDER BY first_ts"""


def _silence(spec: Silence, params: dict[str, Any]) -> str:
    p = ", ".join(f"p{i}" for i in range(len(spec.by)))
    on_g = " AND ".join(f"g.p{i} = r.p{i}" for i in range(len(spec.by)))
    on_s = " AND ".join(f"s.p{i} = f.p{i}" for i in range(len(spec.by)))
    _, _, principal = principal_columns(spec)
    params.update(gap_hours=int(spec.gap.total_seconds() // 3600),
                  min_expected=spec.min_expected, while_active=spec.while_active)
    ev = "struct_pack(event_id, ts, source, source_file, source_offset, lake_file)"
    rp = "r." + p.replace(", ", ", r.")
    history = (f"FROM r2 AS r JOIN g ON {on_g} AND g.hour < r.gap_start "
               "AND g.hour >= r.gap_start - $learning")
    if spec.while_active:
        # Hours with requests but no watched event: expect the principal's usual share.
        expected = f"""share AS (SELECT {rp}, r.run, sum(g.n) / nullif(sum(g.n_all), 0) AS share
           {history} GROUP BY ALL),
ex AS (SELECT {p}, run, active * share AS expected FROM r2 JOIN share USING ({p}, run))"""
    else:
        expected = f"""prof AS (SELECT {rp}, r.run, hour(g.hour) AS hod,
                 quantile_cont(g.n, 0.1) AS q
          {history} GROUP BY ALL),
hrs AS (SELECT {p}, run, hour(unnest(range(gap_start, gap_end, INTERVAL 1 HOUR))) AS hod
        FROM r2),
ex AS (SELECT {p}, run, sum(q) AS expected FROM hrs JOIN prof USING ({p}, run, hod)
       GROUP BY ALL)"""
    return f"""WITH {_scoped(spec, params)},
c AS (SELECT {p}, date_trunc('hour', ts) AS hour, count(*) FILTER (WHERE watched) AS n,
             count(*) AS n_all FROM s GROUP BY ALL),
pr AS (SELECT {p}, min(hour) AS since FROM c WHERE n > 0 GROUP BY ALL),
grid AS (SELECT {p}, since, unnest(range(since, date_trunc('hour', $newest), INTERVAL 1 HOUR))
                AS hour FROM pr),
g AS (SELECT grid.*, coalesce(c.n, 0) AS n, coalesce(c.n_all, 0) AS n_all
      FROM grid LEFT JOIN c USING ({p}, hour)),
seq AS (SELECT *, row_number() OVER (PARTITION BY {p} ORDER BY hour) AS rn FROM g
        WHERE NOT $while_active OR n_all > 0),
quiet AS (SELECT *, rn - row_number() OVER (PARTITION BY {p} ORDER BY hour) AS run
          FROM seq WHERE n = 0),
r AS (SELECT {p}, run, min(hour) AS gap_start, max(hour) + INTERVAL 1 HOUR AS gap_end,
             sum(n_all) AS active, any_value(since) AS since FROM quiet GROUP BY ALL
      HAVING count(*) >= $gap_hours),
r2 AS (SELECT * FROM r WHERE gap_end > date_trunc('hour', $low)
       AND gap_start >= since + $min_history),
{expected},
f AS (SELECT r2.*, expected FROM r2 JOIN ex USING ({p}, run) WHERE expected >= $min_expected),
around AS (
  SELECT f.{p.replace(', ', ', f.')}, f.run,
         arg_max({ev}, (s.ts, s.event_id)) FILTER (WHERE s.ts < f.gap_start) AS before,
         arg_min({ev}, (s.ts, s.event_id)) FILTER (WHERE s.ts >= f.gap_end) AS after
  FROM f JOIN s ON {on_s} AND s.watched GROUP BY ALL)
SELECT {principal} AS principal, strftime(gap_start, '%Y-%m-%dT%H:00Z') AS subject,
       gap_start AS first_ts, gap_end AS last_ts,
       len(list_filter([before, after], lambda e: e IS NOT NULL)) AS event_count,
       list_filter([before, after], lambda e: e IS NOT NULL) AS events,
       to_json(struct_pack(gap_hours := date_diff('hour', gap_start, gap_end),
                           expected := round(expected, 1))) AS detail
FROM f JOIN around USING ({p}, run) ORDER BY first_ts"""


_KINDS = {"first_seen": _first_seen, "volume": _volume, "hours": _hours, "silence": _silence}


def compile_baseline(loaded: LoadedBaseline, sources: tuple[str, ...]) -> CompiledBaseline:
    """The SQL of one validated baseline over `sources` (its logsource's sources)."""
    spec = loaded.spec
    params = _common(spec)
    template = _KINDS[spec.kind](spec, params)  # type: ignore[operator]
    extra = spec.gap if isinstance(spec, Silence) else timedelta(0)
    return CompiledBaseline(
        loaded, template, params, sources,
        aggregate=baseline_model.aggregate_sql(spec, params),
        combine=baseline_model.combine_sql(spec),
        decide=baseline_model.decide_sql(spec, params, template),
        lookback=spec.learning_window + extra + timedelta(days=1),
    )
