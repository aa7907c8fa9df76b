"""The rows a correlation scan decides from (`corr_cand`), and their provenance read back
only where it is needed (`sentinel.scan.correlate`).

`corr_cand` holds the matched events of the new files (`is_new`), of the other history
files (a rebuild) and of the state's tail, with only what deciding and counting read:
event_id, ts, rule_index, the group, the value, and where the row is:

- a lake row: `file_no` (its file's number; the path is in `corr_files`) and `file_row`
  (its row there);
- a tail row: `tail_no` (its tail file, as a position in `State.tail_files`) and
  `file_row` (its row there).

The provenance (source, source_file, source_offset and the lake file) is read back from
those files only for the rows that need it: the events linked to a burst that starts in
this scan (`tail_provenance`, then `lake_provenance` after the per-alert cap) and the
rows written to the next tail (`tail_rows`). A tail holds a few hours of matched events
with four strings each; carrying them through every query of every scan cost more than
the decision itself.

The tail is read from `tail_floor` on, not from `settled - timespan`: the rows the
decision, the counting of the reported bursts and the next frozen bursts can read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from sentinel.detect.corrparts import CorrelationParts
from sentinel.detect.fields import quote_literal
from sentinel.scan import corrbursts, corrstate
from sentinel.scan.evaluate import _arrow, _run

_ts = corrbursts.ts_sql
_NO_PROVENANCE = ("NULL::VARCHAR AS source, NULL::VARCHAR AS source_file, "
                  "NULL::BIGINT AS source_offset")


def lake_rows(
    duck: duckdb.DuckDBPyConnection,
    parts: CorrelationParts,
    old_matched: str,
    since: datetime | None,
    history: list[str] | None,
    new_files: list[str],
) -> int | None:
    """`corr_cand` with the matched events of the new files (`is_new`, from `since` on)
    and of the other `history` files, and `corr_files`. Returns where the history files'
    numbers start (None: no history view)."""
    where = f"ts >= {_ts(since)}" if since is not None else "true"
    old = sorted(set(history or []) - set(new_files))
    # The new files, then the other history files; the lake files of tail rows that are
    # linked are numbered after them (`tail_provenance`).
    listed = [*new_files, *old]
    files = pa.table({"file_no": pa.array(range(len(listed)), pa.int64()),
                      "lake_file": pa.array(listed, pa.string())})
    duck.register("corr_files_given", files)
    try:
        _run(duck, "CREATE OR REPLACE TEMP TABLE corr_files AS SELECT * FROM corr_files_given")
    finally:
        duck.unregister("corr_files_given")
    _run(duck, f"CREATE OR REPLACE TEMP VIEW corr_new AS {_lake_view(new_files)}")
    tail_no = "NULL::BIGINT AS tail_no"
    selects = [f"SELECT * REPLACE (file_no::BIGINT AS file_no), {tail_no}, {where} AS is_new "
               f"FROM ({parts.matched})"]
    if old:
        _run(duck, f"CREATE OR REPLACE TEMP VIEW corr_old AS {_lake_view(old)}")
        selects.append(f"SELECT * REPLACE ((file_no + {len(new_files)})::BIGINT AS file_no), "
                       f"{tail_no}, false AS is_new FROM ({old_matched})")
    _run(duck, "CREATE OR REPLACE TEMP TABLE corr_cand AS " + " UNION ALL BY NAME ".join(selects))
    return len(new_files) if old else None


def tail_floor(
    state: corrstate.State, seconds: int, cut: datetime | None, fresh: bool,
    kept_start: datetime | None,
) -> datetime | None:
    """From when the tail is read (None: all of it).

    What reads tail rows: the decision, from `cut - timespan`; the count of a reported
    burst, from `settled` when it goes on from a frozen burst, else from its start; and
    the next frozen bursts' counts, the same way. A reported burst holds a recomputed hit
    (at or after `cut`), so it starts at or after `cut - timespan`, or it is the burst of
    a group's last kept hit before `cut`. Such a burst that starts before
    `settled - timespan` has a hit before `settled` (its first hit lies within a
    timespan of its start), hence it is its group's frozen burst (counted from
    `settled`); one that starts later is counted from its start, `kept_start` at the
    earliest (the earliest start at or after `settled - timespan` of the kept hits'
    bursts before `cut`). With nothing recomputed, the whole tail."""
    settled = state.settled
    if settled is None:
        return None
    span = timedelta(seconds=seconds)
    if not fresh or cut is None:
        return settled - span
    return min(t for t in (cut - span, settled, kept_start) if t is not None)


def add_tail(
    duck: duckdb.DuckDBPyConnection, state: corrstate.State, floor: datetime | None
) -> None:
    """Append the state's tail rows from `floor` on to `corr_cand` (without provenance)."""
    if not state.tail:
        return
    where = f" WHERE ts >= {_ts(floor)}" if floor is not None else ""
    _run(duck, "INSERT INTO corr_cand BY NAME SELECT * EXCLUDE (source, source_file, "
         "source_offset, lake_file, file_row_number), file_index::BIGINT AS "
         "tail_no, file_row_number AS file_row, false AS is_new FROM "
         f"{_tail_view(state)}{where}")


def _tail_view(state: corrstate.State, *, numbered: bool = True) -> str:
    """The tail files; `numbered`: with `file_row_number` (and `file_index`, as every
    multi-file read has)."""
    return ("read_parquet([" + ", ".join(quote_literal(p) for p in state.tail_files)
            + ("], file_row_number = true)" if numbered else "])"))


def _lake_view(files: list[str]) -> str:
    """Lake files with each row's file (position in `files`) and row number in it."""
    return ("SELECT *, file_index, file_row_number FROM read_parquet(["
            + ", ".join(quote_literal(f) for f in files)
            + "], hive_partitioning = false, union_by_name = true, file_row_number = true)")


def tail_provenance(duck: duckdb.DuckDBPyConnection, table: str, state: corrstate.State) -> None:
    """Give the tail rows of `table` (with tail_no, file_row) their provenance, their lake
    file as a `corr_files` number (`file_no`; numbered after the others, in path order)
    and no `file_row`, as when tails carried it along; lake rows get NULL provenance."""
    _run(duck, f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT *, {_NO_PROVENANCE}, "
         f"NULL::VARCHAR AS lake_file FROM {table}")
    low, high = _run(duck, f"SELECT min(ts), max(ts) FROM {table} WHERE tail_no IS NOT "
                     "NULL").fetchall()[0]
    if low is None or not state.tail:
        return
    tail = (f"SELECT file_index::BIGINT AS tail_no, file_row_number AS file_row, source AS "
            "p_source, source_file AS p_source_file, source_offset AS p_source_offset, "
            f"lake_file AS p_lake_file FROM {_tail_view(state)} WHERE ts BETWEEN {_ts(low)} "
            f"AND {_ts(high)}")
    _run(duck, f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT r.* REPLACE (p.p_source AS "
         "source, p.p_source_file AS source_file, p.p_source_offset AS source_offset, "
         f"p.p_lake_file AS lake_file) FROM {table} r LEFT JOIN ({tail}) p ON "
         "r.tail_no = p.tail_no AND r.file_row = p.file_row")
    _run(duck, "INSERT INTO corr_files SELECT (SELECT count(*) FROM corr_files) + row_number() "
         "OVER (ORDER BY lake_file) - 1, lake_file FROM (SELECT DISTINCT lake_file FROM "
         f"{table} WHERE tail_no IS NOT NULL) WHERE lake_file NOT IN (SELECT lake_file FROM "
         "corr_files)")
    _run(duck, f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT r.* REPLACE (coalesce(r.file_no, "
         "f.file_no) AS file_no, CASE WHEN r.tail_no IS NULL THEN r.file_row END AS file_row) "
         f"FROM {table} r LEFT JOIN corr_files f ON r.tail_no IS NOT NULL AND "
         "f.lake_file = r.lake_file")


def lake_provenance(duck: duckdb.DuckDBPyConnection, rows: str, shift: int | None) -> str:
    """`rows` (with `file_no`, `file_row` and nullable provenance columns) with the
    provenance of the rows that came from the lake read from it: one more read of the
    files' provenance columns, limited to the rows' time range (row groups pruned)."""
    low, high = _run(duck, f"SELECT min(ts), max(ts) FROM ({rows}) WHERE file_row IS NOT "
                     "NULL").fetchall()[0]
    if low is None:
        return rows
    between = f"ts BETWEEN {_ts(low)} AND {_ts(high)}"
    lake = (f"SELECT file_index AS file_no, file_row_number AS file_row, source AS p_source, "
            f"source_file AS p_source_file, source_offset AS p_source_offset FROM corr_new "
            f"WHERE {between}")
    if shift is not None:
        lake += (f" UNION ALL SELECT file_index + {shift}, file_row_number, source, "
                 f"source_file, source_offset FROM corr_old WHERE {between}")
    return (f"SELECT r.* REPLACE (coalesce(r.source, p.p_source) AS source, "
            "coalesce(r.source_file, p.p_source_file) AS source_file, "
            "coalesce(r.source_offset, p.p_source_offset) AS source_offset) "
            f"FROM ({rows}) r LEFT JOIN ({lake}) p ON r.file_row = p.file_row "
            "AND r.file_no = p.file_no")


def tail_rows(
    duck: duckdb.DuckDBPyConnection,
    state: corrstate.State,
    which: str,
    floor: datetime | None,
    shift: int | None,
    rewrite: bool,
) -> pa.Table:
    """The next tail file's rows, oldest first, in the tail's columns: the lake rows of
    `corr_cand` that `which` selects, from `floor` on, with their provenance, and, when
    the tail is `rewrite`n as one file, the state's tail rows from `floor` on."""
    since = f" AND ts >= {_ts(floor)}" if floor is not None else ""
    rows = lake_provenance(duck, f"SELECT * EXCLUDE (tail_no), {_NO_PROVENANCE} FROM "
                           f"corr_cand WHERE tail_no IS NULL AND {which}{since}", shift)
    sql = (f"SELECT c.* EXCLUDE (is_new, file_no, file_row), f.lake_file FROM ({rows}) c "
           "JOIN corr_files f USING (file_no)")
    if rewrite and state.tail:
        where = f" WHERE ts >= {_ts(floor)}" if floor is not None else ""
        sql += f" UNION ALL BY NAME SELECT * FROM {_tail_view(state, numbered=False)}{where}"
    return _arrow(duck, sql, order="ts")
