"""DuckDB connections as sentinel uses them: UTC, and every sentinel SQL macro, in one place.

Every connection sentinel opens (ingest's normalisation, the lake views, rule tests)
comes from `connect()` or goes through `register_macros()`, so a macro a source query or
a compiled rule calls exists wherever that SQL runs. Sessions run with
`TimeZone = 'UTC'`: a timestamp without a zone is read as UTC.

Two families of macros live here:

- **Record parsing** (`sentinel_text`, `sentinel_epoch`, `sentinel_ts`,
  `sentinel_aws_status`), called by the sources' normalisation queries (`sentinel.sources`).
- **IP addresses** (`sentinel_ipv4`, `sentinel_ipv6`, …), called by compiled detections
  for the Sigma `cidr` modifier (`sentinel.detect`).

`DuckSession` is a connection plus what is worth keeping with it: the relations bound
on it (binding a source's query costs ~40 ms, a quarter of a batch) and the setup
statements already run. The cache lives and dies with the session, behind a lock, so
nothing is keyed by `id(con)` and nothing outlives its connection.

On the IP macros:

Why macros and not string prefixes: a CIDR such as `10.0.0.0/12` or `2001:db8::/33` does
not fall on a character boundary, so matching it as a string prefix (what other DuckDB
backends do) is wrong. DuckDB's `inet` extension is not available offline, so the address
is parsed here in plain SQL into an integer (UBIGINT for IPv4, UHUGEINT for IPv6) and the
compiled rule compares the masked integer with the masked network:

    (sentinel_ipv4(client_ip) >> 20) = 2560        -- client_ip in 10.0.0.0/12

The parsers return NULL for anything that is not an address of their family (so a
malformed value never matches and never raises). They accept what Python's `ipaddress`
accepts: dotted quads without leading zeros; IPv6 with `::` compression, an embedded IPv4
tail (`::ffff:10.1.2.3`) and an optional `%zone` suffix. An IPv4-mapped IPv6 address is
an IPv6 address: it does not match an IPv4 network (as in `ipaddress`).

Each macro binds its argument once (`list_transform([x], lambda a: ...)[1]` is a `let`):
macros substitute arguments textually, and nesting them naively made the IPv6 parser's
expression tree so large that binding one query took a third of a second.

A connection that did not come from here fails a CIDR rule loudly ("macro not found")
instead of silently matching nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import duckdb

RECORD_MACROS = [
    # Text of a JSON value: strings unquoted, other values as JSON text, JSON null -> NULL.
    """
    CREATE OR REPLACE MACRO sentinel_text(v) AS
        CASE WHEN v IS NULL OR json_type(v) = 'NULL' THEN NULL
             WHEN json_type(v) = 'VARCHAR' THEN v ->> '$'
             ELSE CAST(v AS VARCHAR) END
    """,
    # Epoch seconds (int/float/numeric string), epoch milliseconds (> 1e11), ISO-8601 with
    # or without zone, and 'YYYY-MM-DD HH:MM:SS.ffffff' -> TIMESTAMPTZ. NULL if none fits.
    # Out-of-range epochs give NULL (the record is rejected), not an error for the batch.
    """
    CREATE OR REPLACE MACRO sentinel_epoch(x) AS
        CASE WHEN x IS NULL OR NOT isfinite(x) OR abs(x) > 1e14 THEN NULL
             WHEN abs(x) > 1e11 THEN to_timestamp(x / 1000.0)
             ELSE to_timestamp(x) END
    """,
    """
    CREATE OR REPLACE MACRO sentinel_ts(v) AS
        CASE WHEN v IS NULL OR json_type(v) = 'NULL' THEN NULL
             WHEN json_type(v) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')
                 THEN sentinel_epoch(TRY_CAST(CAST(v AS VARCHAR) AS DOUBLE))
             WHEN json_type(v) = 'VARCHAR' THEN
                 CASE WHEN regexp_full_match(v ->> '$', '\\s*-?[0-9]+(\\.[0-9]+)?\\s*')
                          THEN sentinel_epoch(TRY_CAST(v ->> '$' AS DOUBLE))
                      ELSE TRY_CAST(v ->> '$' AS TIMESTAMPTZ) END
             ELSE NULL END
    """,
    # An AWS error code (CloudTrail `errorCode`, Bedrock invocation log `errorCode`) -> the
    # HTTP status AWS answers it with, by the code's documented family: NULL for a code
    # outside them (an unknown status is not guessed). Success is not decided here.
    """
    CREATE OR REPLACE MACRO sentinel_aws_status(code) AS
        CASE WHEN code IS NULL THEN NULL
             WHEN regexp_matches(code, 'AccessDenied|Unauthorized|Forbidden|NotAuthorized')
                 THEN 403
             WHEN regexp_matches(code, 'ExpiredToken|InvalidClientTokenId|SignatureDoesNotMatch'
                                       || '|IncompleteSignature|MissingAuthenticationToken')
                 THEN 401
             WHEN regexp_matches(code, 'NotFound|NoSuch') THEN 404
             WHEN regexp_matches(code, 'Throttl|TooManyRequests|RequestLimitExceeded'
                                       || '|ModelNotReady') THEN 429
             WHEN regexp_matches(code, 'Timeout') THEN 408
             WHEN regexp_matches(code, 'Conflict|AlreadyExists|InUse') THEN 409
             WHEN regexp_matches(code, 'ModelError') THEN 424
             WHEN regexp_matches(code, 'ServiceUnavailable') THEN 503
             WHEN regexp_matches(code, 'Internal') THEN 500
             WHEN regexp_matches(code, 'Validation|Invalid|Malformed|QuotaExceeded'
                                       || '|LimitExceeded|MissingParameter') THEN 400
        END
    """,
]


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = rf"{_OCTET}(?:\.{_OCTET}){{3}}"

IP_MACROS_SQL = f"""
CREATE OR REPLACE MACRO sentinel_ipv4(s) AS (
    -- one split (each split_part call splits the whole string again: 2x slower)
    list_transform([s::VARCHAR], lambda a:
        CASE WHEN regexp_full_match(a, '{IPV4_RE}') THEN
            list_transform([string_split(a, '.')], lambda o:
                (TRY_CAST(o[1] AS UBIGINT) << 24) + (TRY_CAST(o[2] AS UBIGINT) << 16)
                + (TRY_CAST(o[3] AS UBIGINT) << 8) + TRY_CAST(o[4] AS UBIGINT))[1]
        END)[1]
);
CREATE OR REPLACE MACRO sentinel_ipv6_v4tail(s) AS (
    -- replace a trailing dotted quad by two hextets; NULL when the quad is invalid
    list_transform([s], lambda a:
        CASE WHEN NOT contains(a, '.') THEN a ELSE
            list_transform([sentinel_ipv4(regexp_extract(a, '[^:]*$'))], lambda v:
                CASE WHEN v IS NOT NULL THEN
                    regexp_replace(a, '[^:]*$', '') || printf('%x:%x', v >> 16, v & 65535)
                END)[1]
        END)[1]
);
CREATE OR REPLACE MACRO sentinel_ipv6_hextets(s) AS (
    -- the 8 hextets as strings (`::` expanded), or NULL when the shape is wrong
    list_transform([s], lambda a: CASE
        WHEN a IS NULL OR NOT regexp_full_match(a, '[0-9a-f:]{{2,39}}') THEN NULL
        WHEN strlen(a) - strlen(replace(a, '::', '')) > 2 OR contains(a, ':::') THEN NULL
        WHEN contains(a, '::') THEN list_transform(
            [[CASE WHEN split_part(a, '::', 1) = '' THEN []::VARCHAR[]
                   ELSE string_split(split_part(a, '::', 1), ':') END,
              CASE WHEN split_part(a, '::', 2) = '' THEN []::VARCHAR[]
                   ELSE string_split(split_part(a, '::', 2), ':') END]],
            lambda p: CASE WHEN len(p[1]) + len(p[2]) <= 7 THEN list_concat(
                p[1], list_transform(range(8 - len(p[1]) - len(p[2])), lambda i: '0'), p[2])
            END)[1]
        WHEN len(string_split(a, ':')) = 8 THEN string_split(a, ':')
    END)[1]
);
CREATE OR REPLACE MACRO sentinel_ipv6_value(h) AS (
    list_transform([h], lambda hextets:
        CASE WHEN len(hextets) = 8 AND len(list_filter(
                hextets, lambda g: NOT regexp_full_match(g, '[0-9a-f]{{1,4}}'))) = 0
        THEN list_reduce(
            list_transform(hextets, lambda g: TRY_CAST(('0x' || g) AS UHUGEINT)),
            lambda acc, g: (acc << 16) + g)
        END)[1]
);
CREATE OR REPLACE MACRO sentinel_ipv6(s) AS (
    -- every IPv6 address has a ':'; the guard spares IPv4 values the parser (30x faster)
    CASE WHEN contains(s::VARCHAR, ':') THEN
    sentinel_ipv6_value(sentinel_ipv6_hextets(
        sentinel_ipv6_v4tail(regexp_replace(lower(s::VARCHAR), '%[^%]+$', ''))))
    END
);
"""


def register_macros(con: Any) -> None:
    """Create (or replace) every sentinel macro on a DuckDB connection."""
    for macro in RECORD_MACROS:
        con.execute(macro)
    con.execute(IP_MACROS_SQL)


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC with every sentinel macro."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        register_macros(con)
    except BaseException:
        con.close()
        raise
    return con


class DuckSession:
    """One DuckDB connection and the relations bound on it, for a single user at a time.

    A relation is bound once and run many times (it reads whatever the views and
    registered tables it names hold at the time). The caches are per session, so
    closing the session frees them with the connection.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.con = con if con is not None else connect()
        self._relations: dict[tuple[str, tuple[Any, ...]], Any] = {}
        self._setup_done: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()

    def relation(self, query: str, params: Sequence[Any] = ()) -> Any:
        """`con.sql(query, params)`, bound once per session."""
        key = (query, tuple(params))
        with self._lock:
            found = self._relations.get(key)
            if found is None:
                found = self._relations[key] = self.con.sql(query, params=list(params))
            return found

    def run_once(self, statements: Sequence[str]) -> None:
        """Run setup statements (CREATE OR REPLACE MACRO …) once per session."""
        key = tuple(statements)
        with self._lock:
            if key in self._setup_done:
                return
            for statement in key:
                self.con.execute(statement)
            self._setup_done.add(key)

    @property
    def cached(self) -> int:
        """How many relations are bound (for health checks and soak tests)."""
        return len(self._relations)

    def close(self) -> None:
        with self._lock:
            self._relations.clear()
            self._setup_done.clear()
            self.con.close()


def one_line(message: str) -> str:
    """DuckDB's multi-line message without the `LINE n:` excerpt, on one line."""
    head = re.split(r"\n\s*LINE \d+:", message, maxsplit=1)[0]
    return " ".join(part.strip() for part in head.splitlines() if part.strip())
