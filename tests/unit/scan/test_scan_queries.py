"""The scan's query helpers (`sentinel.scan.evaluate`): a failed query is a `ScanError`,
and a table asked for in an order comes in that order (correlation state files are
written oldest first and their manifest takes the last row as the newest)."""

from __future__ import annotations

import duckdb
import pytest

from sentinel.scan.evaluate import ScanError, _arrow, _run

UNSORTED = "SELECT * FROM (VALUES (3, 'c'), (1, 'a'), (2, 'b')) t(ts, name)"


def test_a_table_asked_for_in_an_order_comes_in_it() -> None:
    duck = duckdb.connect()
    for _ in range(3):  # whatever order the engine leaves the rows in
        assert _arrow(duck, UNSORTED, order="ts").column("name").to_pylist() == ["a", "b", "c"]
    assert sorted(_arrow(duck, UNSORTED).column("ts").to_pylist()) == [1, 2, 3]


@pytest.mark.parametrize("sql", ["SELECT * FROM no_such_table", "SELECT 1 +"])
def test_a_failed_query_is_a_scan_error(sql: str) -> None:
    duck = duckdb.connect()
    for failing in (lambda: _arrow(duck, sql, order="1"), lambda: _run(duck, sql)):
        with pytest.raises(ScanError, match="scan query failed"):
            failing()
