"""The validators' fast paths agree with the libraries they stand in front of."""

from __future__ import annotations

import ipaddress
import random

import pytest
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn

from sentinel.pii import validators


def test_luhn_equals_stdnum() -> None:
    rng = random.Random(3)
    numbers = ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19)))
               for _ in range(5000)]  # fmt: skip
    numbers += [n + luhn.calc_check_digit(n) for n in numbers[:500]]  # valid ones too
    assert [validators._luhn(n) for n in numbers] == [bool(luhn.is_valid(n)) for n in numbers]


@pytest.mark.parametrize(
    "value",
    ["123-45-6789", "123 45 6789", "123456789", "000-12-3456", "666-12-3456", "900-12-3456",
     "123-00-4567", "123-45-0000", "078-05-1120", "457-55-5462", "219-09-9999", "123-456789",
     "12-345-6789", "123-45-678"],
)  # fmt: skip
def test_ssn_equals_stdnum(value: str) -> None:
    assert validators.ssn(value) == bool(stdnum_ssn.is_valid(value.replace(" ", "-")))


@pytest.mark.parametrize(
    "value",
    ["1.2.3.4", "256.1.1.1", "1.2.3.04", "127.0.0.1", "127.1.2.3", "0.0.0.0", "0.0.0.1",
     "255.255.255.255", "1.2.3", "1.2.3.4.5", "1.2.3.1000", "10.0.0.1"],
)  # fmt: skip
def test_ipv4_equals_ipaddress(value: str) -> None:
    parts = value.split(".")
    try:
        address = ipaddress.IPv4Address(value)
        expected = not any(len(p) > 1 and p[0] == "0" for p in parts) and not (
            address.is_loopback or address.is_unspecified
        )
    except ValueError:
        expected = False
    assert validators.ipv4(value) == expected


def test_mod97_never_rejects_a_valid_iban() -> None:
    for value in ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
                  "NL91ABNA0417164300", "gb82west12345698765432"]:  # fmt: skip
        assert stdnum_iban.is_valid(value)
        assert validators._mod97(value)
    assert not validators._mod97("DE89370400440532013001")
