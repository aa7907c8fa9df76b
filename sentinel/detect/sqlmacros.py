"""DuckDB macros the compiled detections call: IP address parsing for the `cidr` modifier.

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

Every connection that runs compiled detections must call `install_macros` first (the lake
views do it); without it a CIDR rule fails loudly with "macro not found" instead of
silently matching nothing.
"""

from __future__ import annotations

from typing import Any

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = rf"{_OCTET}(?:\.{_OCTET}){{3}}"

MACROS_SQL = f"""
CREATE OR REPLACE MACRO sentinel_ipv4(s) AS (
    list_transform([s::VARCHAR], lambda a:
        CASE WHEN regexp_full_match(a, '{IPV4_RE}') THEN
            (TRY_CAST(split_part(a, '.', 1) AS UBIGINT) << 24)
            + (TRY_CAST(split_part(a, '.', 2) AS UBIGINT) << 16)
            + (TRY_CAST(split_part(a, '.', 3) AS UBIGINT) << 8)
            + TRY_CAST(split_part(a, '.', 4) AS UBIGINT)
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
    sentinel_ipv6_value(sentinel_ipv6_hextets(
        sentinel_ipv6_v4tail(regexp_replace(lower(s::VARCHAR), '%[^%]+$', ''))))
);
"""


def install_macros(con: Any) -> None:
    """Create (or replace) the detection macros on a DuckDB connection."""
    con.execute(MACROS_SQL)
