"""Every planted incident is in the file, format, time and hands the manifest says."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.demo import DemoManifest, PlantedIncident
from sentinel.demo.incidents import luhn_complete
from sentinel.demo.world import INTRUDER_IP

Reader = Callable[[Path], list[dict[str, Any]]]
KINDS = {"credit_card", "ssn", "customer_record", "aws_credentials", "new_ip_off_hours",
         "console_brute_force", "bedrock_logging_deleted", "bedrock_first_use",
         "admin_key_created"}


def _luhn_ok(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return luhn_complete(digits[:-1]) == digits


def _holding(records: list[dict[str, Any]], value: str) -> list[dict[str, Any]]:
    return [r for r in records if value in json.dumps(r)]


def _by_kind(m: DemoManifest, kind: str) -> list[PlantedIncident]:
    return [i for i in m.incidents if i.kind == kind]


def test_every_kind_is_planted(small_demo: DemoManifest) -> None:
    assert {i.kind for i in small_demo.incidents} == KINDS
    assert len(_by_kind(small_demo, "credit_card")) >= 4
    assert len(_by_kind(small_demo, "ssn")) >= 2
    for inc in small_demo.incidents:
        assert small_demo.start <= inc.ts < small_demo.end
        assert inc.values and inc.find_with.startswith("sentinel ")


def test_pii_values_sit_in_their_files(small_demo: DemoManifest, records_of: Reader) -> None:
    for inc in small_demo.incidents:
        if inc.kind not in {"credit_card", "ssn", "customer_record", "aws_credentials"}:
            continue
        records = records_of(small_demo.out_dir / inc.file)
        for value in inc.values:
            assert len(_holding(records, value)) == 1, (inc.kind, value, inc.file)
    cards = [v for i in _by_kind(small_demo, "credit_card") for v in i.values]
    assert all(_luhn_ok(c) for c in cards)
    assert any(" " in c for c in cards) and any("-" in c for c in cards)
    assert {c.replace(" ", "").replace("-", "")[0] for c in cards} >= {"3", "4", "5", "6"}
    for value in (v for i in _by_kind(small_demo, "ssn") for v in i.values):
        area, group, serial = value.split("-")
        assert area not in ("000", "666") and area < "900" and group != "00"
        assert serial != "0000"
    key_id, secret = _by_kind(small_demo, "aws_credentials")[0].values
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key_id) and len(secret) == 40


def test_pii_formats_span_sources(small_demo: DemoManifest, records_of: Reader) -> None:
    files = {i.file for i in small_demo.incidents if i.kind in ("credit_card", "ssn")}
    assert any(f.endswith(".jsonl") for f in files)
    assert "litellm/spend_logs_export.json" in files
    assert any("BedrockModelInvocationLogs" in f for f in files)
    spend = records_of(small_demo.out_dir / "litellm/spend_logs_export.json")
    card = next(i for i in _by_kind(small_demo, "credit_card") if "spend" in i.file).values[0]
    (row,) = _holding(spend, card)
    assert card in json.loads(row["messages"])[-1]["content"]


def _texts(node: Any, out: list[str]) -> None:
    """The prompt and response strings of a record (what the PII scanner reads)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("content", "text", "system", "messages") and isinstance(value, str):
                out.append(value)
            else:
                _texts(value, out)
    elif isinstance(node, list):
        for item in node:
            _texts(item, out)


def test_no_unplanted_card_numbers(small_demo: DemoManifest, records_of: Reader) -> None:
    """Ordinary prompts carry no Luhn-valid digit runs: every card finding is planted."""
    planted = {re.sub(r"\D", "", v) for i in small_demo.incidents for v in i.values}
    found = set()
    for f in small_demo.files:
        if f.source not in ("litellm", "bedrock"):
            continue
        texts: list[str] = []
        for r in records_of(small_demo.out_dir / f.path):
            _texts(r, texts)
        for match in re.finditer(r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])", " ".join(texts)):
            digits = re.sub(r"\D", "", match.group())
            if _luhn_ok(digits) and digits[0] in "3456":
                found.add(digits)
    assert found <= planted


def test_manifest_file_omits_planted_values(small_demo: DemoManifest) -> None:
    text = (small_demo.out_dir / "MANIFEST.md").read_text()
    for inc in small_demo.incidents:
        assert inc.file in text
        if inc.kind in {"credit_card", "ssn", "customer_record", "aws_credentials"}:
            for value in inc.values:
                assert value not in text


def test_key_used_at_3am_from_a_new_ip(small_demo: DemoManifest, records_of: Reader) -> None:
    (inc,) = _by_kind(small_demo, "new_ip_off_hours")
    night = [r for r in records_of(small_demo.out_dir / inc.file)
             if r["requester_ip_address"] == INTRUDER_IP]
    assert len(night) == inc.events == 18
    assert {r["metadata"]["user_api_key_alias"] for r in night} == {inc.who}
    assert all(datetime.fromtimestamp(r["startTime"], UTC).hour == 3 for r in night)
    before = [r for f in small_demo.files if f.path.endswith(".jsonl") and f.source == "litellm"
              for r in records_of(small_demo.out_dir / f.path)
              if r["metadata"]["user_api_key_alias"] == inc.who and r not in night]
    assert before, "the key needs a history for the IP to be new"
    assert INTRUDER_IP not in {r["requester_ip_address"] for r in before}
    assert all(7 <= datetime.fromtimestamp(r["startTime"], UTC).hour < 22 for r in before)


def test_console_brute_force_then_success(small_demo: DemoManifest, records_of: Reader) -> None:
    (inc,) = _by_kind(small_demo, "console_brute_force")
    logins = [r for r in records_of(small_demo.out_dir / inc.file)
              if r["eventName"] == "ConsoleLogin" and r["sourceIPAddress"] == INTRUDER_IP]
    outcomes = [r["responseElements"]["ConsoleLogin"] for r in logins]
    assert outcomes == ["Failure"] * 14 + ["Success"]
    assert all(r["errorMessage"] == "Failed authentication" for r in logins[:-1])
    assert logins[-1]["additionalEventData"]["MFAUsed"] == "No"
    assert {r["userIdentity"]["userName"] for r in logins} == {"ops-admin"}
    assert logins == sorted(logins, key=lambda r: r["eventTime"])


def test_bedrock_logging_deleted(small_demo: DemoManifest, records_of: Reader) -> None:
    (inc,) = _by_kind(small_demo, "bedrock_logging_deleted")
    (rec,) = [r for r in records_of(small_demo.out_dir / inc.file)
              if r["eventName"] == "DeleteModelInvocationLoggingConfiguration"]
    assert rec["eventSource"] == "bedrock.amazonaws.com"
    assert rec["awsRegion"] == "us-east-1" and rec["readOnly"] is False
    # After the deletion, us-east-1 invocation logs stop; other regions carry on.
    cutoff = inc.ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    later = {r["region"] for f in small_demo.files if f.source == "bedrock"
             for r in records_of(small_demo.out_dir / f.path) if r["timestamp"] > cutoff}
    assert "us-east-1" not in later and later


def test_bedrock_first_use_by_a_principal_that_never_used_it(
    small_demo: DemoManifest, records_of: Reader
) -> None:
    (inc,) = _by_kind(small_demo, "bedrock_first_use")
    deleted = _by_kind(small_demo, "bedrock_logging_deleted")[0].ts
    trail = [r for f in small_demo.files if f.source == "cloudtrail"
             for r in records_of(small_demo.out_dir / f.path)]
    mine = [r for r in trail if r["userIdentity"].get("userName") == "ops-admin"]
    calls = [r for r in mine if r["eventName"] == "InvokeModel"]
    assert len(calls) == inc.events == 3
    assert {r["sourceIPAddress"] for r in calls} == {INTRUDER_IP}
    assert all(r["eventTime"] > deleted.strftime("%Y-%m-%dT%H:%M:%SZ") for r in calls)
    # ops-admin is a principal CloudTrail has known from the first day: an old account.
    assert min(r["eventTime"] for r in mine) < small_demo.incidents[0].ts.strftime("%Y-%m-%d")
    # Only CloudTrail sees the calls: us-east-1 invocation logging was deleted before.
    bedrock = [r for f in small_demo.files if f.source == "bedrock"
               for r in records_of(small_demo.out_dir / f.path)]
    assert not [r for r in bedrock if "ops-admin" in json.dumps(r["identity"])]


def test_admin_key_created(small_demo: DemoManifest, records_of: Reader) -> None:
    (inc,) = _by_kind(small_demo, "admin_key_created")
    (event,) = [e for e in records_of(small_demo.out_dir / inc.file)
                if e["type"] == "api_key.created" and e["api_key.created"]["id"] in inc.values]
    scopes = event["api_key.created"]["data"]["scopes"]
    assert any("owner" in s for s in scopes) and any("management" in s for s in scopes)
    assert event["actor"]["session"]["ip_address"] == INTRUDER_IP
    assert event["actor"]["session"]["user"]["email"] == inc.who
