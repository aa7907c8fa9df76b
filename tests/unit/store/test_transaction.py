"""`transaction(con)`: commit, rollback, nesting, and a bounded wait on a locked store."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from sentinel.exceptions import StoreError
from sentinel.store.db import open_db, transaction


@pytest.fixture()
def con(tmp_path: Path) -> sqlite3.Connection:
    con = open_db(tmp_path / "state.db")
    con.execute("CREATE TABLE t (x INTEGER)")
    return con


def values(con: sqlite3.Connection) -> list[int]:
    return [row[0] for row in con.execute("SELECT x FROM t ORDER BY x")]


def test_the_body_is_committed(con: sqlite3.Connection) -> None:
    with transaction(con):
        con.execute("INSERT INTO t VALUES (1)")
    assert not con.in_transaction
    assert values(con) == [1]


def test_an_error_rolls_everything_back_and_propagates(con: sqlite3.Connection) -> None:
    with pytest.raises(ZeroDivisionError), transaction(con):
        con.execute("INSERT INTO t VALUES (1)")
        1 / 0  # noqa: B018
    assert not con.in_transaction
    assert values(con) == []


def test_a_nested_transaction_is_a_savepoint(con: sqlite3.Connection) -> None:
    with transaction(con):
        con.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError), transaction(con):
            con.execute("INSERT INTO t VALUES (2)")
            raise ValueError("inner fails")
        with transaction(con):
            con.execute("INSERT INTO t VALUES (3)")
    assert values(con) == [1, 3]


def test_savepoints_of_one_name_unwind_innermost_first(con: sqlite3.Connection) -> None:
    # Every savepoint shares one name; ROLLBACK TO and RELEASE must act on the innermost.
    with transaction(con):
        con.execute("INSERT INTO t VALUES (1)")
        with transaction(con):
            con.execute("INSERT INTO t VALUES (2)")
            with pytest.raises(ValueError), transaction(con):
                con.execute("INSERT INTO t VALUES (3)")
                raise ValueError("innermost fails")
            con.execute("INSERT INTO t VALUES (4)")
        with pytest.raises(KeyError), transaction(con):
            con.execute("INSERT INTO t VALUES (5)")
            with transaction(con):
                con.execute("INSERT INTO t VALUES (6)")
            raise KeyError("middle fails after its inner one was released")
    assert values(con) == [1, 2, 4]


def test_a_locked_store_is_retried_until_the_lock_goes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    holder = open_db(path)
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.2, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    with transaction(waiter, wait=10):
        waiter.execute("INSERT INTO meta VALUES ('k', 'v')")
    release.join()
    assert time.monotonic() - started >= 0.15
    assert holder.execute("SELECT value FROM meta WHERE key = 'k'").fetchone() == ("v",)


def test_a_store_locked_past_the_bound_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    holder = open_db(path)
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked by another process"), transaction(
            waiter, wait=0.2
        ):
            pytest.fail("the body must not run without the lock")
        assert time.monotonic() - started < 5
        assert not waiter.in_transaction
    finally:
        holder.execute("ROLLBACK")
