"""Masking: safe hints, secrets reduced to provider prefix + last 4, every string column.

Tests taking `extraction` run twice: "python" masks through Python strings
(`engine.find_strings`, what a command printing a few rows takes), "re2" through the
column engine with RE2 extraction (a large result).
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from sentinel.pii.masking import mask_table, mask_text

SECRETS = [
    ("AKIA2E3AXF3BZ44C7QWR", "AKIA"),
    ("sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "sk-proj-"),
    ("sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA-_zz", "sk-ant-api03-"),
    ("ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "ghp_"),
    ("sk_live_51H8xYzAbCdEfGhIjKlMnOpQr", "sk_live_"),
    ("xoxb-1234567890-0987654321-AbCdEfGhIjKl", "xoxb-"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_Abc-123", "eyJ"),
]


def test_pii_hints(extraction: str) -> None:
    assert mask_text("card 4111-1111-1111-1111 ok") == "card card ****1111 ok"
    assert mask_text("mail john.smith@example.com") == "mail j***@example.com"
    assert mask_text("ssn 123-45-6789") == "ssn ssn ***-**-****"
    assert mask_text("") == ""
    assert mask_text("nothing here") == "nothing here"


@pytest.mark.parametrize(("secret", "prefix"), SECRETS)
def test_secrets_show_only_prefix_and_last_four(secret: str, prefix: str, extraction: str) -> None:
    masked = mask_text(f"use {secret} now")
    shown = masked.removeprefix("use ").removesuffix(" now")
    assert shown == f"{prefix}****{secret[-4:]}"
    middle = secret[len(prefix) : -4]
    for i in range(len(middle) - 3):
        assert middle[i : i + 4] not in masked


def test_short_and_contextual_secrets_show_nothing(extraction: str) -> None:
    assert mask_text("password = Hunter2!xyz") == "password = generic_secret ****"
    masked = mask_text("postgres://app:S3cr3t!x@db.internal:5432/prod")
    assert "S3cr3t" not in masked and "app" not in masked and masked.startswith("postgres://****")
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----"
    assert mask_text(pem) == "private_key ****"


def test_masking_is_idempotent(extraction: str) -> None:
    text = "4111 1111 1111 1111 a@b.co AKIA2E3AXF3BZ44C7QWR +44 20 7946 0958 10.1.2.3"
    once = mask_text(text)
    assert mask_text(once) == once


def test_mask_table_every_string_column_any_name(extraction: str) -> None:
    table = pa.table(
        {
            "snippet": pa.array(["x 4111 1111 1111 1111", None, "clean"]),
            "big": pa.array(["a@b.co", "z", ""], pa.large_string()),
            "tags": pa.array([["AKIA2E3AXF3BZ44C7QWR", "ok"], None, []]),
            "cat": pa.array(["a@b.co", "a@b.co", "q"]).dictionary_encode(),
            "n": pa.array([1, 2, 3]),
        }
    )
    out = mask_table(table)
    assert out.schema.names == table.schema.names
    rows = out.to_pylist()
    assert rows[0]["snippet"] == "x card ****1111" and rows[1]["snippet"] is None
    assert rows[0]["big"] == "a***@b.co"
    assert rows[0]["tags"] == ["AKIA****7QWR", "ok"] and rows[1]["tags"] is None
    assert rows[0]["cat"] == "a***@b.co"
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert "4111 1111" not in repr(rows) and "AKIA2E3A" not in repr(rows)


def test_mask_table_sliced_list_column(extraction: str) -> None:
    table = pa.table({"l": pa.array([["a@b.co"], ["c@d.io", "x"], ["y"]])}).slice(1)
    assert mask_table(table).column("l").to_pylist() == [["c***@d.io", "x"], ["y"]]


def test_mask_table_reaches_nested_text(extraction: str) -> None:
    """Structs, lists of structs, maps, fixed-size lists, dictionaries; nulls and slices."""
    import duckdb

    query = """
        SELECT {'p': 'mail jane@example.org', 'n': 1} AS st,
               [['ssn 123-45-6789'], NULL, ['x']] AS ll,
               MAP {'k 4111-1111-1111-1111': 'v jane@example.org'} AS m,
               json_transform('{"m":[{"c":"card 4111 1111 1111 1111"}]}',
                              '{"m":[{"c":"VARCHAR"}]}') AS j,
               ['a jane@example.org', 'b']::VARCHAR[2] AS fixed
        UNION ALL SELECT NULL, NULL, NULL, {'m': [{'c': 'jane@example.org'}]}, NULL
    """
    table = duckdb.sql(query).to_arrow_table()
    table = table.append_column("d", pa.array(["jane@example.org", "x"]).dictionary_encode())
    rows = mask_table(table).to_pylist()
    assert rows[0]["st"] == {"p": "mail j***@example.org", "n": 1}
    assert rows[0]["ll"] == [["ssn ssn ***-**-****"], None, ["x"]]
    assert rows[0]["m"] == [("k card ****1111", "v j***@example.org")]
    assert rows[0]["j"] == {"m": [{"c": "card card ****1111"}]}
    assert rows[0]["fixed"] == ["a j***@example.org", "b"]
    assert rows[0]["d"] == "j***@example.org"
    assert rows[1] == {"st": None, "ll": None, "m": None, "j": {"m": [{"c": "j***@example.org"}]},
                       "fixed": None, "d": "x"}  # fmt: skip
    assert mask_table(table.slice(1)).to_pylist() == rows[1:]
    assert mask_table(table).schema == table.schema


def test_mask_table_masks_string_views(extraction: str) -> None:
    """Arrow's third layout of text is text too: a view column is never shown as it is."""
    views = pa.array(["mail jane@example.org", None, "ok"], pa.string_view())
    table = pa.table({
        "v": views,
        "lv": pa.array([["ssn 123-45-6789"], None, []], pa.list_(pa.string_view())),
        "dv": pa.DictionaryArray.from_arrays(
            pa.array([0, 0, 1]), pa.array(["mail jane@example.org", "ok"], pa.string_view())
        ),
    })  # fmt: skip
    out = mask_table(table)
    assert out.schema == table.schema
    assert out.column("v").to_pylist() == ["mail j***@example.org", None, "ok"]
    assert out.column("lv").to_pylist() == [["ssn ssn ***-**-****"], None, []]
    assert out.column("dv").to_pylist() == ["mail j***@example.org"] * 2 + ["ok"]
