"""A correlation's query in parts, and the burst and report SQL every correlation ends
with: plain SQL text, no pySigma, so a scan from a kept compile (`scan.packcache`) can
rebuild its correlations' parts without importing the Sigma library.

`detect.correlation` cuts a Sigma correlation rule into these parts; `CorrelationParts
.query()` puts them back together as the rule's whole query (its compiled SQL).
"""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.detect.fields import quote_identifier


@dataclass(frozen=True)
class CorrelationParts:
    """A correlation query cut where a scan that keeps state between runs needs it: the
    `matched` select, the CTEs from `matched` to `hits` (the decision), and the group."""

    matched: str
    """The body of the `matched` CTE: every referenced rule's events (UNION ALL)."""
    decide: tuple[str, ...]
    """CTEs from `matched` to `hits` (one row per hit: its columns, `window_start`: its
    window's first event or an earlier time with no matched event of the group between;
    a burst starts at the first event at or after its first hit's `window_start`). They
    may read `hits_from` (`hits_from_cte`): the hits before its `ts` are not wanted and
    may be missing, so a decision need not work out what only they need."""
    group: tuple[str, ...]
    seconds: int
    """The timespan: a hit at `ts` reads the matched events in `[ts - seconds, ts]`."""

    def query(self) -> str:
        """The whole correlation (`correlation_query`)."""
        group = list(self.group)
        partition = ", ".join(quote_identifier(name) for name in group)
        ctes = [f"matched AS (\n    {self.matched}\n)", hits_from_cte(None), *self.decide]
        ctes.extend(_bursts(group, f"PARTITION BY {partition} " if partition else ""))
        return "WITH " + ",\n".join(ctes) + "\n" + _report(group)



def hits_from_cte(since: str | None) -> str:
    """`hits_from`: one row, `ts`, the time from which a query wants hits (an SQL
    TIMESTAMPTZ expression; None: all of them, as the whole correlation does). A scan that
    recomputes hits from its first new event (`scan.corrbursts`) gives that time: the
    matched events before it are there only for the windows after it."""
    return f"hits_from AS (SELECT {since or 'NULL'}::TIMESTAMPTZ AS ts)"


def burst_ctes(group: tuple[str, ...]) -> list[str]:
    """`starts`, `bursts` (each hit numbered by its burst) and `spans` over `hits`."""
    partition = ", ".join(quote_identifier(name) for name in group)
    return _bursts(list(group), f"PARTITION BY {partition} " if partition else "")


# Hits of one group at the same instant (one event matched by two rules, or two events
# logged in the same second) must land in one burst whatever order a sort leaves them
# in: each decision is taken per instant (its earliest window against the last instant
# before it) and numbered with RANGE frames, whose peers see the same values. Numbering
# by row order (`lag`, `ROWS`) let a tie join the previous burst in one window function
# and start a new one in the next, stretching a 3 s burst over 31 s.
_BEFORE = "RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING"
_UPTO = "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
_PEERS = "RANGE BETWEEN CURRENT ROW AND CURRENT ROW"


def _bursts(group: list[str], partition_by: str) -> list[str]:
    return [
        f"starts AS (\n    SELECT *, CASE WHEN min(window_start) OVER ({partition_by}ORDER BY "
        f"ts {_PEERS}) <= max(ts) OVER ({partition_by}ORDER BY ts {_BEFORE}) THEN 0 ELSE 1 "
        "END AS new_burst FROM hits\n)",
        "bursts AS (\n    SELECT *, sum(new_burst) OVER "
        f"({partition_by}ORDER BY ts {_UPTO}) AS burst FROM starts\n)",
        "spans AS (\n    SELECT "
        + "".join(f"{quote_identifier(name)}, " for name in group)
        + "burst, min(window_start) AS window_start, max(ts) AS window_end\n"
        "    FROM bursts GROUP BY ALL\n)",
    ]


def _report(group: list[str]) -> str:
    # A burst starts at its first event at or after its first hit's `window_start` (that
    # event itself, or `ts - timespan` before it; see `CorrelationParts.decide`).
    columns = "".join(f"s.{quote_identifier(name)}, " for name in group)
    join = "".join(
        f" AND m.{quote_identifier(name)} = s.{quote_identifier(name)}" for name in group
    )
    return (
        f"SELECT {columns}min(m.ts) AS window_start, s.window_end, "
        "count(DISTINCT m.event_id) AS event_count,"
        " list_sort(list_distinct(list(m.event_id))) AS event_ids\n"
        f"FROM spans s JOIN matched m ON m.ts BETWEEN s.window_start AND s.window_end{join}\n"
        f"GROUP BY {columns}s.burst, s.window_end ORDER BY window_start"
    )
