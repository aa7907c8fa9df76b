"""Hunting: "where did this card / key / address appear?" answered from digests alone.

The lake stores an HMAC of every finding's normalised value, never a second copy of the
value. To hunt, the analyst's value is normalised the same way and digested with the same
workspace key; the query matches digests. Because a value typed on a command line may be
formatted differently from how it was logged (`4111-1111-…` vs `4111 1111 …`) and may
not be recognised as any type in isolation, every normalisation the catalog knows is
tried. All user input reaches SQL as bound parameters.

Results carry a `value` column: the finding's text cut from the stored prompt or
response (when `store_text = "full"`) and reduced to its masked hint and keyed tag unless
revealed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa

from sentinel.exceptions import QueryError
from sentinel.pii.catalog import Catalog, digest, normalise
from sentinel.pii.detectors import Detector
from sentinel.pii.engine import find
from sentinel.pii.masking import hint, tagged

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

_SELECT = """
SELECT e.ts, e.event_id, e.source, e.actor_user, e.actor_key, e.vendor, e.model,
       f.finding."type" AS "type", f.finding."field" AS "field",
       f.finding."start" AS "start", f.finding."end" AS "end",
       CASE f.finding."field"
           WHEN 'prompt_text' THEN substring(e.prompt_text, f.finding."start" + 1,
                                             f.finding."end" - f.finding."start")
           WHEN 'response_text' THEN substring(e.response_text, f.finding."start" + 1,
                                               f.finding."end" - f.finding."start")
       END AS "value",
       f.finding."digest" AS "digest"
FROM events AS e, unnest(e.pii_findings) AS f(finding)
"""


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`7d`, `12h`, `30m`, `2w` before now, or an ISO date/time (UTC when no zone)."""
    now = now or datetime.now(UTC)
    m = _DURATION.match(text)
    if m:
        try:
            return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        except OverflowError as exc:  # beyond timedelta, or before the year 1
            raise QueryError(
                f"--since {text!r}: reaches back before the year 1; give a shorter duration"
            ) from exc
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise QueryError(
            f"--since {text!r}: expected a duration such as 7d, 12h, 30m or an ISO date"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def value_digests(value: str, catalog: Catalog, key: bytes) -> list[str]:
    """Digests `value` could have been stored under: each normalisation of it, and of the
    findings the scanner recognises inside it."""
    candidates = {value, value.strip()}
    matches = find(pa.array([value], pa.large_string()), catalog)
    candidates.update(matches.values)
    digests = set()
    for text in candidates:
        for detector in _one_per_normaliser(catalog):
            digests.add(digest(key, normalise(detector, text)))
    return sorted(digests)


def value_type(value: str, catalog: Catalog) -> str | None:
    """The type the scanner gives `value` on its own, if any (for the masked echo)."""
    matches = find(pa.array([value], pa.large_string()), catalog)
    return catalog.detectors[matches.detectors[0]].name if len(matches) else None


def _one_per_normaliser(catalog: Catalog) -> list[Detector]:
    seen: dict[str, Detector] = {}
    for detector in catalog.detectors:
        seen.setdefault(detector.normaliser, detector)
    return list(seen.values())


def hunt_value(
    con: duckdb.DuckDBPyConnection,
    value: str,
    since: datetime | None,
    catalog: Catalog,
    key: bytes,
    reveal: bool,
) -> pa.Table:
    """Every finding, in any event, whose value normalises to the same digest as `value`."""
    sql = _SELECT + 'WHERE list_contains($digests, f.finding."digest")'
    params: dict[str, object] = {"digests": value_digests(value, catalog, key)}
    return _run(con, _since(sql, params, since), params, catalog, reveal)


def hunt_type(
    con: duckdb.DuckDBPyConnection,
    type_name: str,
    since: datetime | None,
    catalog: Catalog,
    reveal: bool,
) -> pa.Table:
    """Every finding of one type (optionally since a time), oldest first."""
    sql = _SELECT + 'WHERE f.finding."type" = $type'
    params: dict[str, object] = {"type": type_name}
    return _run(con, _since(sql, params, since), params, catalog, reveal)


def _since(sql: str, params: dict[str, object], since: datetime | None) -> str:
    if since is not None:
        sql += " AND e.ts >= $since"
        params["since"] = since
    return sql + ' ORDER BY e.ts, e.event_id, "start"'


def _run(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, object],
    catalog: Catalog,
    reveal: bool,
) -> pa.Table:
    try:
        # `con.sql` rather than `con.execute`: Arrow output from a DB-API cursor copies
        # the rows once more (DuckDB warns about it on every call).
        table: pa.Table = con.sql(sql, params=params).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(f"hunt query failed: {exc}") from exc
    if reveal:
        return table
    index = table.schema.get_field_index("value")
    shown = [
        _hint_or_none(catalog, t, v, d)
        for t, v, d in zip(
            table.column("type").to_pylist(), table.column("value").to_pylist(),
            table.column("digest").to_pylist(), strict=True,
        )
    ]
    return table.set_column(index, "value", pa.array(shown, pa.string()))


def _hint_or_none(
    catalog: Catalog, type_name: str | None, value: str | None, value_digest: str | None
) -> str | None:
    """The finding's hint with its keyed tag: the same tag `sentinel sql` shows for it,
    since the stored digest is the HMAC the masker's tag is cut from."""
    detector = catalog.detector_for(type_name or "")
    if value is None or detector is None:
        return None
    shown = hint(detector, value)
    return tagged(shown, value_digest) if value_digest else shown
