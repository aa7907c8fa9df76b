"""The SQL IP parsers agree with Python's `ipaddress` on valid, mangled and random input."""

from __future__ import annotations

import ipaddress

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.duck import register_macros as install_macros

CON = duckdb.connect()
install_macros(CON)


def expected(text: str) -> tuple[int | None, int | None]:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None, None
    return (int(address), None) if address.version == 4 else (None, int(address))


def parsed(text: str) -> tuple[int | None, int | None]:
    row = CON.execute("SELECT sentinel_ipv4($1), sentinel_ipv6($1)", [text]).fetchone()
    assert row is not None
    return row[0], row[1]


addresses = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.ip_addresses(v=6).map(lambda a: str(a).upper()),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
)
mangled = st.tuples(
    addresses, st.integers(0, 40), st.sampled_from([":", ".", "0", "::", "1", ""])
).map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :])


@settings(max_examples=400, deadline=None, database=None)
@given(st.one_of(addresses, mangled, st.text(alphabet="0123456789abcdef:.%", max_size=20)))
def test_ip_parsers_match_ipaddress(text: str) -> None:
    assert parsed(text) == expected(text)


def test_known_edge_cases() -> None:
    for text in ["::", "1::", "fe80::1%eth0", "1:2:3:4:5:6:1.2.3.4", "01.2.3.4", "1::2::3", ""]:
        assert parsed(text) == expected(text), text
