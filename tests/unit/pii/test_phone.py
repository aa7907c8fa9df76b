"""Phone numbers: extensions, labelled bare and national numbers, and what stays unreported."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tests.unit.pii.conftest import findings

FOUND = [
    # US numbers with extensions, as Faker and real signatures write them
    ("802.941.8004x493", "802.941.8004x493"),
    ("+1-606-994-8186x199", "+1-606-994-8186x199"),
    ("(415) 555-2671 ext. 12", "(415) 555-2671 ext. 12"),
    ("206-269-0743 x9150", "206-269-0743 x9150"),
    ("001-606-994-8186x19912", "001-606-994-8186x19912"),
    ("+1 (206) 269-0743 extension 7", "+1 (206) 269-0743 extension 7"),
    # bare or national numbers after a label
    ("call me at 8029418004", "8029418004"),
    ("phone 2069265030", "2069265030"),
    ("Tel: 030 901820", "030 901820"),
    ("mobile: 07 88 35 33 74", "07 88 35 33 74"),
    ("phone number: (0161) 4960066", "(0161) 4960066"),
    ("cell 206 269 0743", "206 269 0743"),
    ("Telefon 03662 585178", "03662 585178"),
]


@pytest.mark.parametrize(("text", "value"), FOUND)
def test_found_with_extension_or_label(text: str, value: str, extraction: str) -> None:
    assert findings(f"reach {text}, thanks") == [("phone", value)]


NOT_PHONES = [
    "order 8029418004 shipped",  # bare digits, no phone label
    "invoice 2069265030 total 417",
    "phone: 2024-01-15 at 10:30",  # a date after a label
    "call 555-0000 or extension 1234",  # seven digits: valid only by guessing a country
    "tel 12345",
    "ISBN 978-3-16-148410-0",
    "ts=1712345678 and 1712345678123",
    "upgraded to v10.2.3.4",
    "card ending 4111 1111",
    "802.941.8004.5",  # a longer dotted number
]


@pytest.mark.parametrize("text", NOT_PHONES)
def test_look_alikes_are_not_phones(text: str, extraction: str) -> None:
    assert [v for kind, v in findings(text) if kind == "phone"] == []


_US_FORMATS = ("{a}-{b}-{c}", "({a}) {b}-{c}", "({a}){b}-{c}", "{a}.{b}.{c}", "+1-{a}-{b}-{c}",
               "+1 {a} {b} {c}", "001-{a}-{b}-{c}")  # fmt: skip
_EXTENSIONS = ("", "x{e}", " x{e}", " ext. {e}", " ext {e}", "x{e}")
_LABELS = ("call me at ", "phone: ", "Tel ", "mobile ", "cell: ", "")


@settings(max_examples=150, deadline=None)
@given(
    digits=st.from_regex(r"[2-9][0-9]{2}[2-9][0-9]{6}", fullmatch=True),
    fmt=st.sampled_from(_US_FORMATS),
    extension=st.sampled_from(_EXTENSIONS),
    ext=st.integers(1, 99999),
    label=st.sampled_from(_LABELS),
)
@example(digits="8029418004", fmt="{a}.{b}.{c}", extension="x{e}", ext=493, label="")
def test_every_valid_us_number_is_found_as_written(
    digits: str, fmt: str, extension: str, ext: int, label: str
) -> None:
    """Any number phonenumbers calls valid, in a US format, with or without extension."""
    assume(phonenumbers.is_valid_number(phonenumbers.parse(digits, "US")))
    number = fmt.format(a=digits[:3], b=digits[3:6], c=digits[6:]) + extension.format(e=ext)
    assert findings(f"{label}{number} today") == [("phone", number)]


@settings(max_examples=150, deadline=None)
@given(digits=st.from_regex(r"[1-9][0-9]{9}", fullmatch=True),
       context=st.sampled_from(["order ", "id ", "ts=", "ref #", "total ", ""]))  # fmt: skip
@example(digits="8029418004", context="order ")
def test_bare_ten_digits_without_a_label_are_never_phones(digits: str, context: str) -> None:
    assert [k for k, _ in findings(f"{context}{digits} done")] == []
