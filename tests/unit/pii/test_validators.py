"""The validators' fast paths agree with the libraries they stand in front of."""

from __future__ import annotations

import importlib
import ipaddress
import random
import re

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


@pytest.mark.parametrize("name", validators.NATIONAL_ID_MODULES)
def test_national_id_length_filter_keeps_every_documented_example(name: str) -> None:
    """The lengths learnt by probing never rule out a number stdnum documents as valid."""
    module = importlib.import_module(f"stdnum.{name}")
    examples = re.findall(r">>> \w+\('([^']+)'\)", module.__doc__ or "")
    valid = [v for v in examples if module.is_valid(v)]
    assert valid, f"stdnum.{name} documents no valid example"
    for value in valid:
        compact = re.sub(r"[\s./-]", "", value).upper()
        lengths = [len(compact)] + ([len(compact) - 2] if compact[:2].isalpha() else [])
        checks = [c for n in lengths for c in validators._national_id_checks_for(n)]
        assert module.is_valid in checks, value
        assert validators.national_id(value) is not False, value


def test_national_id_length_filter_rules_out_lengths() -> None:
    checks = validators._national_id_checks_for(11)
    assert importlib.import_module("stdnum.pl.pesel").is_valid in checks
    assert importlib.import_module("stdnum.ca.sin").is_valid not in checks  # 9 digits only
