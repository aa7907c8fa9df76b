"""The column engine: the RE2 extraction path agrees with Python's `re` on every input."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sentinel.pii import engine
from sentinel.pii.catalog import default_catalog

# Texts whose matches would run on into the next text once candidates are joined by
# newlines, non-ASCII text around and inside matches, and Unicode case folding that RE2
# applies and Python's ASCII patterns do not (`ſ` folds to `s`, `K` to `k`).
TEXTS = [
    "the password is",
    "Tr0ub4dor&3xQ and more",
    "-----BEGIN RSA PRIVATE KEY-----",
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB",
    "ssn:",
    "123-45-6789 at the end",
    "日本語のテキスト card 4111 1111 1111 1111 と jane@example.org です",
    "pasſword: Tr0ub4dor&3xQ and paſsport no. K1234567",
    "ſecret = Zz9#kLm2Pq8vX and Ⅹ 4111-1111-1111-1111",
    "call +44 20 7946 0958 or mail ünïcødé.jane@example.org",
    "",
    None,
    "db passwörd: x, real password: Zz9#kLm2Pq8vX.",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8pL2mKQr",
    "ip 203.0.113.7\nand 2001:db8:85a3::8a2e:370:7334",
    # A secret value longer than the pattern's 128 characters, ASCII and not.
    "secret=" + "Zz9#kLm2Pq8vXwJ4rT6yU1iO0pA5sD7fG3hK8lQ2eR" * 4 + " tail",
    "ünï secret=" + "Zz9#kLm2Pq8vXwJ4rT6yU1iO0pA5sD7fG3hK8lQ2eRé" * 4 + " tail",
    # A rejected labelled match in non-ASCII text, retried: plain, then with `ſ` first.
    "日本 password: xxxxxxxx password: Zz9#kLm2Pq8vX",
    "日本 password: xxxxxxxx paſsword: Zz9#kLm2Pq8vX secret: Qw7!rTy5Ui9o",
]


def _found(monkeypatch: pytest.MonkeyPatch, small: int, texts: list[str | None]) -> list[tuple]:
    monkeypatch.setattr(engine, "SMALL_INPUT_BYTES", small)
    m = engine.find(pa.array(texts, pa.large_string()), default_catalog())
    return list(zip(m.rows, m.detectors, m.starts, m.ends, m.values, strict=True))


@pytest.mark.parametrize("repeat", [1, 7])
def test_re2_path_equals_python_path(monkeypatch: pytest.MonkeyPatch, repeat: int) -> None:
    texts = TEXTS * repeat
    python = _found(monkeypatch, 10**9, texts)
    re2 = _found(monkeypatch, -1, texts)
    assert re2 == python
    assert {default_catalog().detectors[d].name for _, d, *_ in python} >= {
        "credit_card", "email", "generic_secret", "private_key", "ssn", "aws_secret_key",
    }  # fmt: skip


def test_no_match_across_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A label at the end of one text never pairs with a value at the start of the next."""
    found = _found(monkeypatch, -1, ["my password is", "Tr0ub4dor&3xQ"])
    assert found == []
    assert _found(monkeypatch, -1, ["my password is Tr0ub4dor&3xQ"]) != []


def test_offsets_are_code_points(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "👍é日 4111 1111 1111 1111"
    (_, _, start, end, value), = _found(monkeypatch, -1, [text])
    assert text[start:end] == value == "4111 1111 1111 1111"


def test_repeated_texts_scanned_once_reported_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical texts share one scan; every row holding one gets all of its findings."""
    texts = [TEXTS[i % len(TEXTS)] for i in range(5 * len(TEXTS))]
    once = _found(monkeypatch, 0, TEXTS)
    repeated = _found(monkeypatch, 0, texts)
    expected = [
        (row, *finding[1:])
        for row, text in enumerate(texts)
        for finding in once
        if TEXTS[finding[0]] is not None and finding[0] == TEXTS.index(text)
    ]
    assert repeated == expected
    assert len(repeated) == 5 * len(once)


def test_unbounded_value_only_where_equivalent() -> None:
    """The generic secret's `{8,128}` value is searched unbounded; alternations are not."""
    assert engine._unbounded(r"(?i:secret)\s*(?P<v>[^\s]{8,128})") is not None
    assert engine._unbounded(r"a|secret\s*(?P<v>[^\s]{8,128})") is None
    assert engine._unbounded(r"secret\s*(?P<v>[^\s]{8,16})") is None  # short: no gain
    assert engine._unbounded(r"(?:secret\s*(?P<v>[^\s]{8,128}))") is None
    assert not engine._top_level_alternation(r"(a|b)[|]\|c")
    assert engine._top_level_alternation(r"(a)|b")


def _found_in_strings(texts: list[str | None]) -> list[tuple]:
    m = engine.find_strings(texts, default_catalog())
    return list(zip(m.rows, m.detectors, m.starts, m.ends, m.values, strict=True))


@pytest.mark.parametrize("repeat", [1, 3])
def test_strings_path_equals_column_path(monkeypatch: pytest.MonkeyPatch, repeat: int) -> None:
    """What a command prints is masked through `find_strings`: the column's findings."""
    from tests.unit.pii.test_catalog_examples import NEGATIVE_CASES, POSITIVE_CASES

    texts = [*TEXTS, *(case[1] for case in POSITIVE_CASES + NEGATIVE_CASES)] * repeat
    strings = _found_in_strings(texts)
    assert strings == _found(monkeypatch, 10**9, texts)
    assert strings == _found(monkeypatch, -1, texts)
    assert {default_catalog().detectors[d].name for _, d, *_ in strings} == set(
        default_catalog().types
    )


def test_strings_path_takes_only_small_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.fits_strings(["a@b.co", None, "", "a@b.co"])
    assert engine.fits_strings([None, ""])
    monkeypatch.setattr(engine, "SMALL_INPUT_BYTES", 10)
    assert engine.fits_strings(["héllo", "héllo", "x"])  # 7 bytes: repeats count once
    assert not engine.fits_strings(["héllo", "wörld"])  # 12 bytes
