"""Framing is decided on many lines, never the first alone (issue 9: a torn first line or
one starting with `[` made a JSON-lines file a "document" and lost it whole)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.ingest import sniff
from sentinel.ingest.framing import whole_json

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                          inner, max_size=3),
    max_leaves=10,
)
records = st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=4)
# The suite runs on a busy shared machine: generation speed is not what is under test.
relaxed = settings(max_examples=60, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@relaxed
@given(st.lists(records, min_size=3, max_size=12), st.integers(min_value=1, max_value=60))
def test_json_lines_with_a_torn_first_line_are_lines(
    rows: list[dict[str, object]], cut: int
) -> None:
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    first_end = text.index("\n")
    torn = text[min(cut, first_end - 1):]  # copied mid-write, or rotated mid-line
    assert sniff.detect_framing(torn.encode()) == "lines"


@relaxed
@given(st.lists(records, min_size=1, max_size=12), st.integers(min_value=0, max_value=4))
def test_pretty_printed_documents_are_documents(
    rows: list[dict[str, object]], indent: int
) -> None:
    for value in (rows, {"Records": rows}):
        text = json.dumps(value, indent=indent or None)
        if "\n" in text:
            assert sniff.detect_framing(text.encode() + b"\n") == "document"


@pytest.mark.parametrize(
    ("head", "framing"),
    [
        (b'[{"a": 1}]\n{"b": 2}\n{"c": 3}\n', "lines"),  # first line an array
        (b'[{"a": 1}, {"a": 2}]\n', "document"),  # a compact array export
        (b'[{"a": 1}, {"a"', "document"),  # an array longer than the head
        (b'{"a": 1', "lines"),  # one long line
        (b'{"a": 1}\n', "lines"),
        (b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n', "lines"),
    ],
)
def test_examples(head: bytes, framing: str) -> None:
    assert sniff.detect_framing(sniff.clean_head(head)) == framing


def test_nul_runs_at_line_starts_are_not_binary() -> None:
    assert not sniff.is_binary(b"\x00" * 5000 + b'{"a": 1}\n' + b"\x00" * 10 + b'{"b": 2}\n')
    assert sniff.is_binary(bytes(range(256)))
    assert sniff.is_binary('{"a": 1}\n'.encode("utf-16-le"))  # NULs inside lines


def test_deep_first_line_is_not_a_crash() -> None:
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    assert sniff.parses(deep) is None
    assert sniff.sample_record(deep + b'\n{"b": 1}\n', "lines", ()) == {"b": 1}
    assert whole_json(deep)  # held back only when cut short, not when deep
    assert not whole_json(b'{"a": 1, "b"')
