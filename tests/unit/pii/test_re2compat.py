"""The private google-re2 fast path and its public fallback give the same spans."""

from __future__ import annotations

import pytest
import re2

from sentinel.pii import re2compat

CASES = [
    (rb"(?P<v>a+)b", b"xaab aaab b"),
    (rb"x*", b"abc"),  # empty matches step over one byte
    (rb"(a)|(b)", b"ab"),  # a group that did not take part
    (rb"\d{3}-\d{2}", "caf\u00e9 123-45 \u00e9 999-99".encode()),
]


@pytest.mark.parametrize(("pattern", "data"), CASES)
def test_fast_path_and_fallback_agree(pattern: bytes, data: bytes) -> None:
    engine = re2.compile(pattern)
    assert re2compat.fast_path(engine)  # the installed google-re2 still has it
    assert re2compat.all_spans(engine, data) == re2compat.public_spans(engine, data)


def test_the_fallback_is_used_when_the_internals_are_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(re2compat, "_UNANCHORED", None)
    engine = re2.compile(rb"(?P<v>a+)b")
    assert not re2compat.fast_path(engine)
    assert re2compat.all_spans(engine, b"xaab") == [[(1, 4), (1, 3)]]
