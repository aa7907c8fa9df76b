"""scan_events on Arrow tables: positions, keyed digests, store_text modes, raw scrubbing."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sentinel.config import Config, PiiConfig, PrivacyConfig
from sentinel.pii.catalog import default_catalog, digest, normalise
from sentinel.pii.scanner import scan_events
from sentinel.schema import EVENT_SCHEMA
from tests.unit.pii.conftest import KEY, event_table

CARD = "4111-1111-1111-1111"
EMAIL = "Jane.Roe@Example.org"
AWS = "AKIA2E3AXF3BZ44C7QWR"
PLANTED = [CARD, EMAIL, AWS, "4111111111111111", "jane.roe@example.org"]


def _table() -> pa.Table:
    return event_table(
        [f"my card is {CARD}, mail {EMAIL}", "nothing to see", None, "é👍 key " + AWS],
        ["ok", f"card {CARD} noted", None, None],
        extra_raw={"user": EMAIL},
    )


def test_findings_positions_types_counts(extraction: str) -> None:
    out = scan_events(_table(), Config(), KEY)
    assert out.schema == EVENT_SCHEMA
    rows = out.to_pylist()
    assert [r["pii_count"] for r in rows] == [2, 1, 0, 1]
    assert [r["pii_types"] for r in rows] == [
        ["credit_card", "email"], ["credit_card"], [], ["aws_access_key"]
    ]
    for row in rows:
        for f in row["pii_findings"]:
            text = row[f["field"]]
            assert text[f["start"] : f["end"]] in (CARD, EMAIL, AWS)
    first = rows[0]["pii_findings"]
    assert [(f["type"], f["field"]) for f in first] == [
        ("credit_card", "prompt_text"), ("email", "prompt_text")
    ]
    assert rows[1]["pii_findings"][0]["field"] == "response_text"
    assert rows[3]["pii_findings"][0]["start"] == len("é👍 key ")


def test_digest_is_keyed_hmac_of_the_normalised_value() -> None:
    rows = scan_events(_table(), Config(), KEY).to_pylist()
    card = default_catalog().detector_for("credit_card")
    assert card is not None
    expected = digest(KEY, normalise(card, "4111 1111 1111 1111"))
    assert rows[0]["pii_findings"][0]["digest"] == expected
    assert rows[1]["pii_findings"][0]["digest"] == expected  # same card, other event and field
    other = scan_events(_table(), Config(), b"another key").to_pylist()
    assert other[0]["pii_findings"][0]["digest"] != expected
    assert len(expected) == 64 and "4111" not in expected


@pytest.mark.parametrize("mode", ["masked", "none"])
def test_store_text_leaves_no_planted_value_anywhere(mode: str, extraction: str) -> None:
    config = Config(privacy=PrivacyConfig(store_text=mode))
    out = scan_events(_table(), config, KEY)
    assert out.schema == EVENT_SCHEMA
    dumped = repr(out.to_pylist())
    for value in PLANTED:
        assert value not in dumped
        assert value.lower() not in dumped.lower()
    rows = out.to_pylist()
    assert rows[0]["pii_count"] == 2  # findings survive
    if mode == "masked":
        assert rows[0]["prompt_text"] == "my card is [CREDIT_CARD], mail [EMAIL]"
        assert '"user": "[EMAIL]"' in rows[0]["raw"]
    else:
        assert all(r["prompt_text"] is None and r["response_text"] is None for r in rows)
        assert "nothing to see" not in rows[1]["raw"]


def test_raw_json_escaped_secret_is_masked() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    table = event_table([f"here: {pem}"])
    out = scan_events(table, Config(privacy=PrivacyConfig(store_text="masked")), KEY).to_pylist()
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in repr(out)
    assert out[0]["pii_types"] == ["private_key"]


def test_scan_disabled_still_applies_store_text() -> None:
    config = Config(pii=PiiConfig(scan=False), privacy=PrivacyConfig(store_text="none"))
    rows = scan_events(_table(), config, KEY).to_pylist()
    assert [r["pii_count"] for r in rows] == [0, 0, 0, 0]
    assert all(r["pii_findings"] == [] and r["pii_types"] == [] for r in rows)
    assert all(r["prompt_text"] is None for r in rows)


def test_empty_and_chunked_tables() -> None:
    empty = scan_events(EVENT_SCHEMA.empty_table(), Config(), KEY)
    assert empty.num_rows == 0 and empty.schema == EVENT_SCHEMA
    table = _table()
    chunked = pa.concat_tables([table.slice(0, 2), table.slice(2)])
    assert scan_events(chunked, Config(), KEY).to_pylist() == scan_events(
        table, Config(), KEY
    ).to_pylist()


def test_large_batch_matches_small_batches() -> None:
    prompts = [f"row {i} card {CARD} " + "filler text " * 50 if i % 7 == 0 else "plain " * 40
               for i in range(3000)]
    table = event_table(prompts)
    whole = scan_events(table, Config(), KEY).column("pii_count").to_pylist()
    assert sum(whole) == len([i for i in range(3000) if i % 7 == 0])
