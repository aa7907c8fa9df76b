"""Every detector of the default catalog: found, masked to its hint, and quiet on look-alikes.

The tables are checked against the catalog itself, so a new detector or type added
without a positive example, a hint and a hard negative fails here rather than
shipping untested.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from stdnum import iban as stdnum_iban

from sentinel.pii.catalog import default_catalog
from sentinel.pii.engine import find
from sentinel.pii.masking import hint, mask_text

# type -> (text, the finding's value, its hint)
EXAMPLES: dict[str, list[tuple[str, str, str]]] = {
    "private_key": [(
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow+/=abc\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow+/=abc\n-----END RSA PRIVATE KEY-----",
        "private_key ****",
    )],
    "jwt": [(
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_Abc-123",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_Abc-123", "eyJ****-123",
    )],
    "anthropic_key": [(
        "use sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA-_zz now",
        "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA-_zz", "sk-ant-api03-****-_zz",
    )],
    "openai_key": [(
        "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "sk-proj-****Xy4z",
    )],
    "github_token": [(
        "token ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "ghp_****Q7r8",
    )],
    "stripe_key": [(
        "stripe sk_live_51H8xYzAbCdEfGhIjKlMnOpQr", "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr",
        "sk_live_****OpQr",
    )],
    "slack_token": [(
        "token xoxb-1234567890-0987654321-AbCdEfGhIjKl",
        "xoxb-1234567890-0987654321-AbCdEfGhIjKl", "xoxb-****IjKl",
    )],
    "google_api_key": [(
        "k=AIzaSyD3x4mpl3K3yW1thTh1rtyF1veCh4rs00Z", "AIzaSyD3x4mpl3K3yW1thTh1rtyF1veCh4rs00Z",
        "AIza****s00Z",
    )],
    "google_oauth_token": [(
        "Authorization: Bearer ya29.a0AfH6SMBx3kQ9pLm2Zr7Tq1Wv",
        "ya29.a0AfH6SMBx3kQ9pLm2Zr7Tq1Wv", "ya29.****q1Wv",
    )],
    "aws_access_key": [("key=AKIA2E3AXF3BZ44C7QWR", "AKIA2E3AXF3BZ44C7QWR", "AKIA****7QWR")],
    "aws_secret_key": [(
        "aws_secret_access_key = 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",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8pL2mKQr", "aws_secret_key ****mKQr",
    )],
    "database_url": [(
        "DATABASE_URL=postgres://app:S3cr3t!x@db.internal:5432/prod",
        "postgres://app:S3cr3t!x@db.internal:5432", "postgres://****",
    )],
    "generic_secret": [
        ('config {"password": "Tr0ub4dor&3x"}', "Tr0ub4dor&3x", "generic_secret ****"),
    ],
    "credit_card": [
        ("pay with 4111 1111 1111 1111 today", "4111 1111 1111 1111", "card ****1111"),
    ],
    "iban": [(
        "IBAN DE89 3704 0044 0532 0130 00 THANKS", "DE89 3704 0044 0532 0130 00",
        "iban DE****3000",
    )],
    "ssn": [
        ("SSN 123-45-6789", "123-45-6789", "ssn ***-**-****"),
        ("social security number: 123456789", "123456789", "ssn ***-**-****"),
    ],
    "national_id": [
        ("BSN: 111222333", "111222333", "national_id ****33"),
        ("ref 390.533.447-05 ok", "390.533.447-05", "national_id ****05"),
    ],
    "passport": [("passport number: 123456789", "123456789", "passport ****89")],
    "email": [(
        "write to John.Doe+ai@Example.co.uk now", "John.Doe+ai@Example.co.uk",
        "J***@Example.co.uk",
    )],
    "date_of_birth": [("DOB: 1985-03-12", "1985-03-12", "dob ****")],
    "phone": [
        ("call +44 20 7946 0958", "+44 20 7946 0958", "phone ****58"),
        ("US (415) 555-2671 ext. 12", "(415) 555-2671 ext. 12", "phone ****12"),
        ("call me at 8029418004.", "8029418004", "phone ****04"),
    ],
    "ipv6": [(
        "from 2001:db8:85a3::8a2e:370:7334 at", "2001:db8:85a3::8a2e:370:7334", "ipv6 2001:****",
    )],
    "ipv4": [("client 203.0.113.7 connected", "203.0.113.7", "ipv4 203.*.*.*")],
    "placeholder_secret": [
        ("aws example AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "AKIA****MPLE"),
        ("OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxx", "sk-xxxxxxxxxxxxxxxxxxxxxxxx",
         "sk-****xxxx"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
         "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "placeholder_secret ****EKEY"),
        ("ANTHROPIC_API_KEY=sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxx",
         "sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxx", "sk-ant-api03-****xxxx"),
        ("GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
         "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "ghp_****xxxx"),
        ("stripe sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
         "sk_test_****p7dc"),
        ("SLACK_TOKEN=xoxb-your-token-here-xxxxxxxx", "xoxb-your-token-here-xxxxxxxx",
         "xoxb-****xxxx"),
        ("GOOGLE_API_KEY=AIzaXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
         "AIzaXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "AIza****XXXX"),
        ("token=ya29.YOUR_ACCESS_TOKEN_HERE_xxxx", "ya29.YOUR_ACCESS_TOKEN_HERE_xxxx",
         "ya29.****xxxx"),
    ],
}  # fmt: skip


def _iban_with_check_digits(check: str) -> str:
    """A German IBAN that passes mod-97 with `check`, a value no valid IBAN has.

    00 and 01 are congruent to 97 and 98 modulo 97, and 99 to 02: the body of an IBAN
    whose true check digits are those passes the checksum with them too.
    """
    wanted = {"00": "97", "01": "98", "99": "02"}[check]
    for account in range(10**9, 10**9 + 10**5):
        bban = f"37040044{account:010d}"
        if stdnum_iban.calc_check_digits(f"DE00{bban}") == wanted:
            return f"DE{check}{bban}"
    raise AssertionError("no body found")


# type -> texts holding look-alikes of that type and none of its findings
NEGATIVES: dict[str, list[str]] = {
    "private_key": ["-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0B\n-----END PUBLIC KEY-----"],
    "jwt": ["eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiIxMjM0In0.sig_Abc-123"],  # header without alg/typ
    "anthropic_key": ["sk-ant-api03-short", "task-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf"],
    "openai_key": ["task-force-alpha-bravo-charlie-delta", "sk-short"],
    "github_token": ["ghp_tooShort123", "xghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"],
    "stripe_key": ["sk_live_short", "desk_live_51H8xYzAbCdEfGhIjKlMnOpQr"],
    "slack_token": ["xoxb-123", "mxoxb-1234567890-0987654321-AbCdEfGh"],
    "google_api_key": ["AIzaShort", "xAIzaSyD3x4mpl3K3yW1thTh1rtyF1veCh4rs00Z"],
    "google_oauth_token": ["ya29.short", "papaya29.a0AfH6SMBx3kQ9pLm2Zr7Tq1Wv"],
    "aws_access_key": ["AKIA2E3AXF3BZ44C7QWRXYZ", "AKIA1234", "aws example AKIAIOSFODNN7EXAMPLE"],
    "aws_secret_key": [
        "aws_secret_access_key = da39a3ee5e6b4b0d3255bfef95601890afd80709",  # a hex digest
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ],
    "database_url": ["postgres://user:password@localhost/db", "mysql://${USER}:${PASS}@db/x"],
    "generic_secret": ["the password manager and the secret sauce", "password: ********"],
    "credit_card": ["4111 1111 1111 1112", "timestamp 1700000000000 ms"],
    "iban": [
        "iban DE89 3704 0044 0532 0130 01",  # fails mod-97
        *(f"iban {_iban_with_check_digits(c)}" for c in ("00", "01", "99")),
    ],
    "ssn": ["order ORD-123-45-6789", "ssn 666-12-3456 and 000-12-3456"],
    "national_id": ["NINO ZZ123456Q", "ref 390.533.447-06"],
    "passport": ["born in 1985, passport photo required", "passport number: ABCDEFG"],
    "email": ["see icon@2x.png", "ssh git@github.com:org/repo"],
    "date_of_birth": ["DOB: 2999-01-01", "born on 31/02/1990"],
    "phone": ["order 8029418004", "phone: 2024-01-15", "call 555-0000"],
    "ipv6": ["at 12:30:45 or std::vector", "loopback ::1"],
    "ipv4": ["loopback 127.0.0.1 and 0.0.0.0", "version v1.2.3.4"],
    "placeholder_secret": [
        "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",  # a real-looking key
        "api_key=YOUR_API_KEY and password=${DB_PASSWORD}",  # not provider-shaped
    ],
}

POSITIVE_CASES = [(kind, *case) for kind, cases in EXAMPLES.items() for case in cases]
NEGATIVE_CASES = [(kind, text) for kind, texts in NEGATIVES.items() for text in texts]


def _found(text: str) -> list[tuple[int, str]]:
    """(detector index, value) of every finding in `text`."""
    matches = find(pa.array([text], pa.large_string()), default_catalog())
    return list(zip(matches.detectors, matches.values, strict=True))


def test_every_type_has_examples_and_hard_negatives() -> None:
    types = set(default_catalog().types)
    assert set(EXAMPLES) == types
    assert set(NEGATIVES) == types


def test_every_detector_is_exercised_by_an_example() -> None:
    catalog = default_catalog()
    used = {det for _, text, _, _ in POSITIVE_CASES for det, _ in _found(text)}
    missing = [
        (i, d.name, d.pattern[:40]) for i, d in enumerate(catalog.detectors) if i not in used
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("kind", "text", "value", "shown"), POSITIVE_CASES, ids=[c[0] for c in POSITIVE_CASES]
)
def test_found_and_masked_to_its_hint(
    kind: str, text: str, value: str, shown: str, extraction: str
) -> None:
    catalog = default_catalog()
    found = [(catalog.detectors[det], v) for det, v in _found(text)]
    assert [(d.name, v) for d, v in found] == [(kind, value)]
    detector = found[0][0]
    assert hint(detector, value) == shown
    assert value not in mask_text(text)
    if detector.kind == "secret":  # at most a provider prefix and the last four show
        middle = value[len(shown.split("****")[0]) : -4]
        assert all(middle[i : i + 5] not in shown for i in range(max(len(middle) - 4, 0)))


@pytest.mark.parametrize(("kind", "text"), NEGATIVE_CASES, ids=[c[0] for c in NEGATIVE_CASES])
def test_hard_negative_is_not_that_type(kind: str, text: str, extraction: str) -> None:
    catalog = default_catalog()
    assert [v for det, v in _found(text) if catalog.detectors[det].name == kind] == []
