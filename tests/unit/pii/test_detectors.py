"""Each built-in detector: true positives in varied formats and contexts, hard negatives."""

from __future__ import annotations

import pytest

from tests.unit.pii.conftest import findings

POSITIVES = [
    ("credit_card", "pay with 4111 1111 1111 1111 today", "4111 1111 1111 1111"),
    ("credit_card", "card:4111-1111-1111-1111.", "4111-1111-1111-1111"),
    ("credit_card", "amex 3782 822463 10005 ok", "3782 822463 10005"),
    ("credit_card", "mc 5500000000000004", "5500000000000004"),
    ("credit_card", "ref 1234 4111 1111 1111 1111", "4111 1111 1111 1111"),
    # A token ending in a digit just before the card is not part of it.
    ("credit_card", "ref X9 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("credit_card", "plan v2 4111-1111-1111-1111 ok", "4111-1111-1111-1111"),
    ("ssn", "SSN 123-45-6789", "123-45-6789"),
    ("ssn", "social security number: 123456789", "123456789"),
    ("ssn", "my ssn is 123 45 6789.", "123 45 6789"),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00 THANKS", "DE89 3704 0044 0532 0130 00"),
    ("iban", "to GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("email", "write to John.Doe+ai@Example.co.uk now", "John.Doe+ai@Example.co.uk"),
    ("phone", "call +44 20 7946 0958", "+44 20 7946 0958"),
    ("phone", "US (415) 555-2671 ext", "(415) 555-2671"),
    ("phone", "mobile 0049 30 901820", "0049 30 901820"),
    ("phone", "reach 802.941.8004x493 today", "802.941.8004x493"),
    ("phone", "or +1-606-994-8186x199.", "+1-606-994-8186x199"),
    ("phone", "desk (415) 555-2671 ext. 12, thanks", "(415) 555-2671 ext. 12"),
    ("phone", "call me at 8029418004.", "8029418004"),
    ("phone", "Phone: 206 269 0743 x9150", "206 269 0743 x9150"),
    ("phone", "Tel. (0161) 4960066", "(0161) 4960066"),
    ("phone", "mobile number: 07 88 35 33 74", "07 88 35 33 74"),
    ("ipv4", "client 203.0.113.7 connected", "203.0.113.7"),
    ("ipv6", "from 2001:db8:85a3::8a2e:370:7334 at", "2001:db8:85a3::8a2e:370:7334"),
    ("date_of_birth", "DOB: 1985-03-12", "1985-03-12"),
    ("date_of_birth", "date of birth 12 March 1985", "12 March 1985"),
    ("passport", "passport number: 123456789", "123456789"),
    ("national_id", "BSN: 111222333", "111222333"),
    ("national_id", "CPF 390.533.447-05", "390.533.447-05"),
    ("national_id", "NINO AB123456C", "AB123456C"),
    ("aws_access_key", "key=AKIA2E3AXF3BZ44C7QWR", "AKIA2E3AXF3BZ44C7QWR"),
    ("aws_secret_key", "aws_secret_access_key = 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",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8pL2mKQr"),
    ("openai_key", "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
     "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
    ("anthropic_key", "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA-_zz",
     "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA-_zz"),
    ("google_api_key", "k=AIzaSyD3x4mpl3K3yW1thTh1rtyF1veCh4rs00Z",
     "AIzaSyD3x4mpl3K3yW1thTh1rtyF1veCh4rs00Z"),
    ("stripe_key", "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr", "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr"),
    ("slack_token", "token xoxb-1234567890-0987654321-AbCdEfGhIjKl",
     "xoxb-1234567890-0987654321-AbCdEfGhIjKl"),
    ("github_token", "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
     "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"),
    ("jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_Abc-123",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_Abc-123"),
    ("database_url", "DATABASE_URL=postgres://app:S3cr3t!x@db.internal:5432/prod",
     "postgres://app:S3cr3t!x@db.internal:5432"),
    ("generic_secret", 'config {"password": "Tr0ub4dor&3x"}', "Tr0ub4dor&3x"),
]


@pytest.mark.parametrize(("kind", "text", "value"), POSITIVES, ids=[p[0] for p in POSITIVES])
def test_true_positive(kind: str, text: str, value: str, extraction: str) -> None:
    assert (kind, value) in findings(text)


def test_pem_private_key_block_including_json_escaped_newlines() -> None:
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow+/=abc\n-----END RSA PRIVATE KEY-----"
    assert findings(f"key:\n{block}\nthanks") == [("private_key", block)]
    escaped = block.replace("\n", "\\n")
    assert findings(f'"content": "{escaped}"') == [("private_key", escaped)]


NEGATIVES = [
    "order ORD-123-45-6789 shipped",            # SSN shape inside an order number
    "ssn 666-12-3456 and 000-12-3456 and 123-00-4567",  # invalid area / group
    "4111 1111 1111 1112",                      # fails Luhn
    "timestamp 1700000000000 ms",               # 13 digits, no issuer prefix
    "uuid 550e8400-e29b-41d4-a716-446655440000",
    "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "version v1.2.3.4 and 1.2.3.4.5",
    "iban DE89 3704 0044 0532 0130 01",         # fails mod-97
    "ORD-123-4111-1111-1111-1111",              # a card-shaped tail of an order number
    "SKU A4111111111111111",                    # digits glued to a letter
    "see icon@2x.png and lodash@4.17.21",
    "at 12:30:45 or std::vector",
    "loopback 127.0.0.1 and 0.0.0.0",
    "password: ********  password = ${DB_PASSWORD}  api_key=YOUR_API_KEY",
    "the password manager and the secret sauce",
    "postgres://user:password@localhost/db",
    "born in 1985, passport photo required",
    "call 555-0000 or extension 1234",
    "order 8029418004 and invoice 2069265030",    # bare 10 digits with no phone label
    "phone: 2024-01-15 at 10:30",                 # a date after a label
    "call 3 times, tel 12345",                    # too short for a phone number
    "ISBN 978-3-16-148410-0, v10.2.3.4, ts=1712345678",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_hard_negative(text: str, extraction: str) -> None:
    assert findings(text) == []


def test_overlap_keeps_the_specific_finding() -> None:
    found = findings("api_key=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z and mysql://u:p4ss@h.io")
    assert [k for k, _ in found] == ["openai_key", "database_url"]
