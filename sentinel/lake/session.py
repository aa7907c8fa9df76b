"""The headless SQL session every front end uses (`sentinel sql`, the TUI, a notebook).

    with SqlSession.open(ws) as session:
        for result in session.execute("SELECT 1; SELECT count(*) FROM events"):
            table, total = result.collect(limit=100)

What a session guarantees, whoever drives it:
- **Read-only, by structure.** The views are installed, then the connection is locked
  (`lake.sandbox`): no file system, no configuration change. Every statement is checked
  by its parse tree before *any* statement of the text runs.
- **Masked before the query.** Without a reveal reason the views hold masked text
  (`lake.privacy`), so nothing a query computes can show a finding. Error messages are
  masked too, and so is what `reveal()` hands to the audit trail (query and reason).
- **Statements run in order**, each giving a `QueryResult`: an Arrow record-batch reader
  fetched lazily, so a front end can page through millions of rows. A result is closed
  before the next statement runs (DuckDB allows one open result per connection).
- The DuckDB connection comes from an injectable factory (`connect`), so a Runtime can
  own connections and macros.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

import duckdb
import pyarrow as pa

from sentinel.exceptions import QueryError
from sentinel.lake import sandbox
from sentinel.lake.privacy import Masker
from sentinel.lake.query import STATE_TABLES, Connect, LakeViews, connect, query_error
from sentinel.output import Reveal
from sentinel.workspace import Workspace

BATCH_ROWS = 2048


class QueryResult:
    """The rows of one statement, read lazily as Arrow record batches."""

    def __init__(
        self,
        statement: str,
        reader: pa.RecordBatchReader,
        translate: Callable[[BaseException], QueryError],
    ) -> None:
        self.statement = statement
        self.schema: pa.Schema = reader.schema
        self._reader = reader
        self._translate = translate
        self._pending: pa.RecordBatch | None = None
        self.closed = False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            yield pending
        while not self.closed:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                self.close()
                return
            except (duckdb.Error, pa.ArrowException) as exc:
                self.close()
                raise self._translate(exc) from exc
            yield batch

    def fetch(self, rows: int) -> pa.Table:
        """Up to `rows` more rows (fewer at the end; zero once exhausted)."""
        kept: list[pa.RecordBatch] = []
        held = 0
        for batch in self:
            if held + batch.num_rows > rows:
                take = rows - held
                kept.append(batch.slice(0, take))
                self._pending = batch.slice(take)
                held = rows
                break
            kept.append(batch)
            held += batch.num_rows
            if held == rows:
                break
        return pa.Table.from_batches(kept, schema=self.schema)

    def collect(self, limit: int | None = None) -> tuple[pa.Table, int]:
        """At most `limit` rows, and how many the statement produced (the rest counted)."""
        if limit is None:
            table = pa.Table.from_batches(list(self), schema=self.schema)
            return table, table.num_rows
        table = self.fetch(limit)
        total = table.num_rows + sum(batch.num_rows for batch in self)
        return table, total

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._pending = None
            self._reader.close()


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: tuple[tuple[str, str], ...]


class SqlSession:
    """One sandboxed connection over a workspace's views, masked unless revealed."""

    def __init__(
        self,
        ws: Workspace,
        *,
        reveal_reason: str | None = None,
        command: str = "sql",
        connect: Connect = connect,
        state_tables: tuple[str, ...] = STATE_TABLES,
    ) -> None:
        self.ws = ws
        self.command = command
        self.masker = Masker.for_workspace(ws)
        self.reveal_reason = reveal_reason
        self.views = LakeViews(
            ws, masker=None if reveal_reason is not None else self.masker,
            state_tables=state_tables,
        )  # fmt: skip
        self._current: QueryResult | None = None
        self.con = connect()
        try:
            self.views.install(self.con)
            sandbox.lock(self.con)
        except duckdb.Error as exc:
            self.con.close()
            raise self._error(exc) from exc
        except BaseException:
            self.con.close()
            raise

    @classmethod
    def open(cls, ws: Workspace, **options: object) -> SqlSession:
        return cls(ws, **options)  # type: ignore[arg-type]

    def __enter__(self) -> SqlSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def revealed(self) -> bool:
        return self.reveal_reason is not None

    @property
    def problems(self) -> list[str]:
        """Lake files left out of the views (not event Parquet files), with the reason."""
        return list(self.views.problems)

    def refresh(self) -> list[str]:
        """Re-list batches, sources and state tables (a long session sees new data)."""
        self._finish()
        return self.views.install(self.con)

    def execute(self, sql: str) -> Iterator[QueryResult]:
        """Check every statement of `sql`, then run them in order, one result each."""
        self._finish()
        statements = sandbox.split(self.con, sql)
        if not statements:
            raise QueryError("empty query")
        checked = [sandbox.check(self.con, s) for s in statements]
        for text in checked:
            self._finish()
            try:
                relation = self.con.sql(text)
                if relation is None:  # not expected of a read, but harmless
                    continue
                reader = relation.to_arrow_reader(BATCH_ROWS)
            except (duckdb.Error, pa.ArrowException) as exc:
                raise self._error(exc) from exc
            self._current = QueryResult(text, reader, self._error)
            yield self._current

    def run(self, sql: str, limit: int | None = None) -> list[tuple[pa.Table, int]]:
        """Every statement's rows (at most `limit` each) and total count, in order."""
        return [result.collect(limit) for result in self.execute(sql)]

    def tables(self) -> list[str]:
        """The views a query can use (what `.tables` lists)."""
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_type = 'VIEW' AND table_name NOT LIKE '\\_sentinel%' ESCAPE '\\' "
            "ORDER BY table_name"
        ).fetchall()
        return [row[0] for row in rows]

    def schema(self, view: str) -> list[tuple[str, str]]:
        """Columns and types of one view (what `.schema VIEW` shows); empty if unknown."""
        if view.lower().startswith(sandbox.PRIVATE_PREFIX):
            return []
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [view],
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def mask(self, text: str) -> str:
        """`text` masked with the workspace's catalog (for history, messages, audit)."""
        return self.masker.mask_text(text)

    def reveal(self, query: str) -> Reveal | None:
        """What the audit trail records for showing `query`'s rows unmasked (masked)."""
        if self.reveal_reason is None:
            return None
        return Reveal(
            reason=self.mask(self.reveal_reason),
            command=self.command,
            query=self.mask(query),
            state_db=self.ws.state_db,
        )

    def close(self) -> None:
        self._finish()
        self.con.close()

    def _finish(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None

    def _error(self, exc: BaseException) -> QueryError:
        return query_error(exc, self.mask)
