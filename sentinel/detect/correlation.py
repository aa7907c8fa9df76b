"""Sigma correlation rules as DuckDB window queries.

pySigma's correlation templates assume a pipeline language (`| stats count by ...`);
in SQL each correlation type is a small chain of CTEs, built here from the referenced
rules' already-converted conditions:

1. `matched` — the events of every referenced rule (UNION ALL, tagged with the rule's
   position), with the group-by columns (or their per-rule aliases). Events whose
   group-by value is NULL are left out: "no key" is not a group.
2. `windows` — a sliding window per event: the group's matched events with
   `ts` in `[ts - timespan, ts]` (both ends inclusive), and its aggregate:
   * event_count: number of distinct events;
   * value_count: number of distinct non-NULL values of the condition field;
   * value_sum / value_avg: sum / mean of the condition field as a number (values that
     are not numbers are left out, as NULLs are), e.g. tokens or cost per key; a
     `value_sum` with `gt`/`gte` decides most events from sums per sixteenth of the
     timespan (`_bounded`) and sums per event only where those cannot tell;
   * temporal: number of distinct referenced rules that matched;
   * temporal_ordered: the latest start of a chain rule1 ≤ rule2 ≤ … ≤ ruleN (ordered
     by `ts`, ties allowed) ending at this event, computed one rule at a time; the
     window hits when that start is within the timespan.

   Distinct counts (value_count, temporal, event_count over several rules) are not
   `count(DISTINCT …) OVER` a RANGE frame: DuckDB evaluates that per row over the
   frame, which took 464 s for one rule over a million events. They are an interval
   sweep instead, with the same result: an occurrence of a value at `t` is inside the
   window of every event in `[t, t + timespan]`; a value's occurrences less than a
   timespan apart chain into one *presence* interval `[first, last + timespan]`
   (gaps and islands); the distinct count at an event's `ts` is the number of
   presences of its group that contain it: a running sum of +1 at each presence's
   start and -1 after its end, read at the event (starts, then events, then ends at
   equal times, as both window ends are inclusive). Three sorts, no per-row frame.

   A window's start is `first_value(ts)` of its frame (the frame is ordered by `ts`, so
   its first row has the earliest time): the same as `min(ts)`, without the segment tree.
3. `hits` — windows whose aggregate satisfies the condition, each with a `window_start`:
   its window's first event, or any time from `ts - timespan` up to it (no matched
   event of the group lies in between; `_bounded` gives `ts - timespan`).
4. overlapping hit windows of a group are merged into one burst (a hit starts a new one
   when its `window_start` is after the hit before it: the same for either kind of
   `window_start`, as that hit is a matched event), and each burst is reported once,
   from its first event at or after its first hit's `window_start`, with all matched
   events of its group inside it:

   group-by columns…, window_start, window_end, event_count, event_ids (sorted list)

That output contract lets the incident engine open one incident per burst and link its
evidence without re-running the search.
"""

from __future__ import annotations

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

from sentinel.detect.corrparts import (
    _BEFORE,
    _UPTO,
    CorrelationParts,
)
from sentinel.detect.fields import quote_identifier, resolve_field

__all__ = ["CorrelationParts", "correlation_parts", "correlation_query"]

SUPPORTED = {
    SigmaCorrelationType.EVENT_COUNT: "event_count",
    SigmaCorrelationType.VALUE_COUNT: "value_count",
    SigmaCorrelationType.TEMPORAL: "temporal",
    SigmaCorrelationType.TEMPORAL_ORDERED: "temporal_ordered",
    SigmaCorrelationType.VALUE_SUM: "value_sum",
    SigmaCorrelationType.VALUE_AVG: "value_avg",
}

OPERATORS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "eq": "=", "neq": "<>"}


def _unsupported(rule: SigmaCorrelationRule, what: str) -> SigmaFeatureNotSupportedByBackendError:
    return SigmaFeatureNotSupportedByBackendError(
        f"correlation rule {rule.title!r}: {what} is not supported", source=rule.source
    )


PROVENANCE = ", file_index AS file_no, file_row_number AS file_row"
"""Columns `correlation_parts(provenance=True)` adds to `matched`: where each event is in
the lake (`file_index`: its file, as a position in the list `read_parquet` was given;
`file_row_number`: its row there), so a scan can link a burst's events by a join on two
numbers instead of carrying their provenance strings through every row."""


def correlation_query(table: str, rule: SigmaCorrelationRule) -> str:
    """The SQL of one correlation rule over `table` (the events view, as the backend names
    it); its referenced rules must be converted already. Needing only the table name keeps
    this module below the backend that calls it."""
    return correlation_parts(table, rule).query()


def correlation_parts(
    table: str, rule: SigmaCorrelationRule, *, provenance: bool = False
) -> CorrelationParts:
    """`correlation_query` in parts; `provenance` adds `PROVENANCE` to `matched`."""
    kind = SUPPORTED.get(rule.type)
    if kind is None:
        raise _unsupported(rule, f"correlation type {rule.type.name.lower()}")
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise _unsupported(rule, "an extended (boolean) correlation condition")
    group = _group_columns(rule)
    value_sql: list[str] = [""] * len(rule.referenced_rules)
    if kind in ("value_count", "value_sum", "value_avg"):
        if not isinstance(condition.fieldref, str):
            raise _unsupported(rule, f"{kind} over several fields")
        for index in range(len(rule.referenced_rules)):
            value = _rule_field(rule, condition.fieldref, index, numeric=kind != "value_count")
            value_sql[index] = f", {value} AS value"
    extra = PROVENANCE if provenance else ""
    matched = "\n    UNION ALL\n    ".join(
        _matched_select(table, rule, index, group, value_sql[index] + extra)
        for index in range(len(rule.referenced_rules))
    )
    partition = ", ".join(quote_identifier(name) for name in group)
    partition_by = f"PARTITION BY {partition} " if partition else ""
    window = (
        f"({partition_by}ORDER BY ts RANGE BETWEEN INTERVAL {rule.timespan.seconds} SECOND "
        "PRECEDING AND CURRENT ROW)"
    )
    op = OPERATORS[condition.op.name.lower()]
    ctes: list[str] = []
    if kind == "temporal_ordered":
        rules = len(rule.referenced_rules)
        if (condition.op.name, condition.count) != ("GTE", rules):
            raise _unsupported(rule, "a temporal_ordered condition other than all rules")
        ctes.extend(_ordered_chain(len(rule.referenced_rules), partition_by, window))
        last = len(rule.referenced_rules) - 1
        ctes.append(
            f"hits AS (\n    SELECT * FROM chain{last}\n"
            f"    WHERE rule_index = {last} AND start{last} IS NOT NULL\n"
            f"      AND start{last} >= ts - INTERVAL {rule.timespan.seconds} SECOND\n)"
        )
    else:
        distinct = {"value_count": "value", "temporal": "rule_index"}.get(kind)
        if kind == "event_count" and len(rule.referenced_rules) > 1:
            distinct = "event_id"  # an event matched by two rules counts once
        if distinct is not None:
            ctes.extend(_distinct_windows(group, distinct, rule.timespan.seconds, window))
            ctes.append(f"hits AS (SELECT * FROM windows WHERE aggregate {op} {condition.count})")
        elif kind == "value_sum" and op in (">", ">="):
            ctes.extend(_bounded(group, rule.timespan.seconds, op, condition.count))
        else:
            aggregate = {
                "event_count": "count(*)", "value_sum": "sum(value)", "value_avg": "avg(value)"
            }[kind]
            ctes.append(
                f"windows AS (\n    SELECT *, {aggregate} OVER w AS aggregate, first_value(ts) "
                f"OVER w AS window_start\n    FROM matched\n    WINDOW w AS {window}\n)"
            )
            ctes.append(f"hits AS (SELECT * FROM windows WHERE aggregate {op} {condition.count})")
    return CorrelationParts(matched, tuple(ctes), tuple(group), int(rule.timespan.seconds))


def _group_columns(rule: SigmaCorrelationRule) -> list[str]:
    return list(rule.group_by or [])


def _rule_field(
    rule: SigmaCorrelationRule, name: str, index: int, *, numeric: bool = False
) -> str:
    """SQL for a group-by/condition field in referenced rule `index` (aliases resolved)."""
    reference = rule.referenced_rules[index]
    for alias in rule.aliases:
        if alias.alias == name:
            if reference not in alias.mapping:
                raise _unsupported(rule, f"alias {name!r} without a field for every rule")
            name = alias.mapping[reference]
    field = resolve_field(name)
    return f"CAST({field.number_sql} AS DOUBLE)" if numeric else field.column_sql


def _matched_select(
    table: str,
    rule: SigmaCorrelationRule,
    index: int,
    group: list[str],
    value_sql: str,
) -> str:
    referenced = rule.referenced_rules[index].rule
    queries = referenced.get_conversion_result()
    if len(queries) != 1:
        raise _unsupported(rule, f"a referenced rule with {len(queries)} conditions")
    columns = "".join(
        f", {_rule_field(rule, name, index)} AS {quote_identifier(name)}" for name in group
    )
    not_null = "".join(f" AND {_rule_field(rule, name, index)} IS NOT NULL" for name in group)
    return (
        f"SELECT event_id, ts, {index} AS rule_index{columns}{value_sql} "
        f"FROM {table} WHERE ({queries[0]}){not_null}"
    )


def _distinct_windows(group: list[str], column: str, seconds: int, window: str) -> list[str]:
    """`windows` with `aggregate` = the number of distinct non-NULL `column` values of the
    row's group within `[ts - seconds, ts]`, by an interval sweep (see the module doc)."""
    keys = "".join(f"{quote_identifier(name)}, " for name in group)
    by_group = f"PARTITION BY {keys.removesuffix(', ')} " if group else ""
    by_value = f"PARTITION BY {keys}distinct_value "
    span = f"INTERVAL {seconds} SECOND"
    return [
        f"occurrences AS (\n    SELECT {keys}{column} AS distinct_value, ts FROM matched "
        f"WHERE {column} IS NOT NULL\n)",
        f"gaps AS (\n    SELECT *, CASE WHEN max(ts) OVER ({by_value}ORDER BY ts {_BEFORE}) "
        f">= ts - {span} THEN 0 ELSE 1 END AS new_island FROM occurrences\n)",
        f"islands AS (\n    SELECT *, sum(new_island) OVER ({by_value}ORDER BY ts {_UPTO}) "
        "AS island FROM gaps\n)",
        f"presence AS (\n    SELECT {keys}min(ts) AS present_from, max(ts) + {span} AS "
        f"present_to\n    FROM islands GROUP BY {keys}distinct_value, island\n)",
        "sweep AS (\n    SELECT *, ts AS sweep_at, 1 AS phase, 0 AS delta FROM matched\n"
        f"    UNION ALL BY NAME SELECT {keys}present_from AS sweep_at, 0 AS phase, 1 AS delta "
        "FROM presence\n"
        f"    UNION ALL BY NAME SELECT {keys}present_to AS sweep_at, 2 AS phase, -1 AS delta "
        "FROM presence\n)",
        f"counted AS (\n    SELECT *, sum(delta) OVER ({by_group}ORDER BY sweep_at, phase ROWS "
        "UNBOUNDED PRECEDING) AS aggregate FROM sweep\n)",
        "windows AS (\n    SELECT * EXCLUDE (sweep_at, phase, delta), first_value(ts) OVER w AS "
        f"window_start\n    FROM counted WHERE phase = 1\n    WINDOW w AS {window}\n)",
    ]


def _reachable(group: list[str], op: str, threshold: float) -> list[str]:
    """`reachable`: the matched events a `sum >(=) threshold` window can need, so the
    decision (`_bounded`) runs over a few buckets instead of every keyed request.

    Time is cut into buckets one timespan wide (PIECES pieces of `placed`); the window
    `[ts - span, ts]` of an event in bucket k lies within buckets k-1 and k, so its sum is
    at most the sum of the positive values of those two buckets. An event can end a hit
    only in a bucket k where that bound reaches the threshold, and its window reads only
    buckets k-1 and k: those are kept whole, everything else is dropped. Events kept only
    as bucket k-1 of such a pair never hit (their own bound is below the threshold, and a
    subset of their window sums to at most it), so the hits, and hence the bursts, are
    exactly those over `matched`; the bursts' events are still read from `matched`
    (`_report`).
    """
    keys = "".join(f"{quote_identifier(name)}, " for name in group)
    by_group = f"PARTITION BY {keys.removesuffix(', ')} " if group else ""
    join = "".join(
        f" AND m.{quote_identifier(name)} = b.{quote_identifier(name)}" for name in group
    )
    return [
        f"buckets AS (\n    SELECT {keys}{_floor_div('piece', PIECES)} AS bucket, "
        "coalesce(sum(greatest(value, 0)), 0) AS positive FROM placed GROUP BY ALL\n)",
        f"ends AS (\n    SELECT {keys}bucket, positive + CASE WHEN lag(bucket) OVER "
        f"({by_group}ORDER BY bucket) = bucket - 1 THEN lag(positive) OVER ({by_group}"
        "ORDER BY bucket) ELSE 0 END AS bound FROM buckets\n)",
        f"needed AS (\n    SELECT DISTINCT {keys}unnest([bucket, bucket - 1]) AS bucket "
        f"FROM ends WHERE bound {op} {threshold}\n)",
        "reachable AS (\n    SELECT m.* FROM placed m SEMI JOIN needed b "
        f"ON {_floor_div('m.piece', PIECES)} = b.bucket{join}\n)",
    ]


def _floor_div(value: str, by: int) -> str:
    """`value // by` rounded down (DuckDB's `//` rounds toward zero), for BIGINTs."""
    return f"({value} // {by} - ({value} % {by} < 0)::BIGINT)"


PIECES = 16
"""A `value_sum >(=)` decision cuts time into pieces this many to a timespan (`_bounded`)."""
MARGIN = 1e-6
"""Of the sum of absolute values around a piece: more than the rounding of any float sum
of fewer than 10^9 of them, so a bound past the threshold by it decides as the sum would."""


def _bounded(group: list[str], seconds: int, op: str, threshold: float) -> list[str]:
    """`hits` of a `sum >(=) threshold` window, deciding most events from sums per piece
    of time instead of a RANGE sum per event.

    Only the `reachable` events are read (every event of a window that can hit is one).
    Time is cut into pieces of timespan / PIECES (integer microseconds since the epoch,
    floor-divided). The window `[ts - span, ts]` of an event in piece j holds pieces
    j-15 .. j-1 whole, and parts of j-16 and j; so its sum is at least the sum of the
    whole pieces plus the negative values of the two partial ones, and at most that sum
    plus their positive values. Where the lower bound passes the threshold (by `MARGIN`
    of the values' magnitude, so that float rounding cannot tell otherwise), every event
    of the piece hits; where the upper bound does not reach it, none does; the other
    pieces (and any with a non-finite value) are decided as before, by a RANGE sum over
    them and the 16 pieces before each (all their windows can read), but only from the
    piece of `hits_from` on: an increment's matched events start a timespan before its
    first new one, so the sums of the pieces before it climb from nothing, cross the
    threshold and leave pieces undecided whose hits are not wanted.

    A hit's `window_start` is `ts - span`, not its window's first event: no matched
    event lies between the two, so the burst split and the burst's start come out the
    same (`CorrelationParts.decide`), without a `first_value` per event.
    """
    keys = "".join(f"{quote_identifier(name)}, " for name in group)
    by_group = f"PARTITION BY {keys.removesuffix(', ')} " if group else ""
    join = "".join(
        f" AND m.{quote_identifier(name)} = c.{quote_identifier(name)}" for name in group
    )
    width = seconds * 1_000_000 // PIECES  # whole microseconds: 10^6 is a multiple of 16
    span = f"INTERVAL {seconds} SECOND"

    def frame(start: str) -> str:
        return f"({by_group}ORDER BY piece RANGE BETWEEN {start} AND CURRENT ROW)"

    # Every bound is a sum over pieces j-16 .. j (frames ending at the current piece, which
    # DuckDB keeps cheap; a frame ending before it cost 3x), so its float error stays
    # within MARGIN of those pieces' magnitude.
    return [
        f"placed AS (\n    SELECT *, {_floor_div('epoch_us(ts)', width)} AS piece FROM "
        "matched\n)",
        *_reachable(group, op, threshold),
        f"pieces AS (\n    SELECT {keys}piece, coalesce(sum(value), 0) AS total, count(value) "
        "AS counted, coalesce(sum(least(value, 0)), 0) AS negative, "
        "coalesce(sum(greatest(value, 0)), 0) AS positive FROM reachable GROUP BY ALL\n)",
        f"bounds AS (\n    SELECT {keys}piece, sum(total) OVER near - total AS inner_sum, "
        "sum(counted) OVER near - counted AS inner_count, sum(positive - negative) OVER "
        "around AS magnitude, sum(negative) OVER around - sum(negative) OVER near + negative "
        "AS low_ends, sum(positive) OVER around - sum(positive) OVER near + positive AS "
        f"high_ends FROM pieces\n    WINDOW near AS {frame(f'{PIECES - 1} PRECEDING')}, "
        f"around AS {frame(f'{PIECES} PRECEDING')}\n)",
        f"certain AS (\n    SELECT {keys}piece, CASE WHEN NOT isfinite(magnitude) THEN NULL "
        f"WHEN inner_count > 0 AND (inner_sum + low_ends - {MARGIN} * magnitude) {op} "
        f"{threshold} THEN true WHEN NOT ((inner_sum + high_ends + {MARGIN} * magnitude) {op} "
        f"{threshold}) THEN false END AS hit FROM bounds\n)",
        f"exact_pieces AS (\n    SELECT DISTINCT {keys}unnest(generate_series(piece - {PIECES}, "
        "piece)) AS piece FROM certain WHERE hit IS NULL AND piece >= coalesce((SELECT "
        f"{_floor_div('epoch_us(ts)', width)} FROM hits_from), piece)\n)",
        f"exact AS (\n    SELECT m.* FROM reachable m SEMI JOIN exact_pieces c ON m.piece = "
        f"c.piece{join}\n)",
        f"windows AS (\n    SELECT *, sum(value) OVER w AS aggregate FROM exact\n    WINDOW w AS "
        f"({by_group}ORDER BY ts RANGE BETWEEN {span} PRECEDING AND CURRENT ROW)\n)",
        f"hits AS (\n    SELECT m.* EXCLUDE (piece), m.ts - {span} AS window_start "
        f"FROM reachable m JOIN certain c ON m.piece = c.piece{join} WHERE c.hit\n"
        f"    UNION ALL BY NAME SELECT m.* EXCLUDE (piece, aggregate), m.ts - {span} AS "
        f"window_start FROM windows m JOIN certain c ON m.piece = c.piece{join} "
        f"WHERE c.hit IS NULL AND m.aggregate {op} {threshold}\n)",
    ]


def _ordered_chain(count: int, partition_by: str, window: str) -> list[str]:
    # window_start: the first matched event of the group within the timespan, so the burst
    # reports every step (e.g. all the failures before the success), not just the last chain.
    ctes = [
        "chain0 AS (\n    SELECT *, CASE WHEN rule_index = 0 THEN ts END AS start0, "
        f"first_value(ts) OVER w AS window_start\n    FROM matched WINDOW w AS {window}\n)"
    ]
    for i in range(1, count):
        ctes.append(
            f"chain{i} AS (\n    SELECT *, CASE WHEN rule_index = {i} THEN max(start{i - 1}) OVER "
            f"({partition_by}ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
            f"END AS start{i}\n    FROM chain{i - 1}\n)"
        )
    return ctes
