"""Every source claims its own sample records and no other source's.

Recognition picks the format of a file whose `--source` is not given, so a record
claimed by two sources would be normalised by whichever is asked first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sentinel.sources.anthropic import AnthropicActivitySource
from sentinel.sources.base import LogSource
from sentinel.sources.bedrock import BedrockSource
from sentinel.sources.cloudtrail import CloudTrailSource
from sentinel.sources.jsonl import JsonlSource
from sentinel.sources.litellm import LiteLLMSource
from sentinel.sources.openai_audit import OpenAIAuditSource

DATA = Path(__file__).parents[2] / "data" / "sources"
SAMPLES = Path(__file__).parents[3].parent / "shared" / "samples"

BUILTIN: dict[str, LogSource] = {
    s.name: s
    for s in (
        LiteLLMSource(),
        BedrockSource(),
        CloudTrailSource(),
        OpenAIAuditSource(),
        AnthropicActivitySource(),
    )
}


def _records(name: str) -> list[tuple[str, dict[str, Any]]]:
    path = DATA / f"{name}.jsonl"
    lines = path.read_text().splitlines()
    return [(f"{path.name}:{n}", json.loads(line)) for n, line in enumerate(lines, 1)]


CASES = [(name, where, record) for name in BUILTIN for where, record in _records(name)]


@pytest.mark.parametrize(("owner", "where", "record"), CASES, ids=[c[1] for c in CASES])
def test_only_the_owner_recognises(owner: str, where: str, record: dict[str, Any]) -> None:
    claimed = {name for name, source in BUILTIN.items() if source.recognise(record)}
    assert claimed == {owner}, where


def test_unmatched_custom_source_claims_nothing() -> None:
    custom = JsonlSource("acme", {"ts": "$.timestamp"})
    assert not any(custom.recognise(record) for _, _, record in CASES)


def test_entry_points_register_the_builtins() -> None:
    from sentinel.sources.registry import available_sources

    sources = available_sources()
    for name, source in BUILTIN.items():
        assert type(sources[name]) is type(source)


def _sample_records() -> list[tuple[str, str, dict[str, Any]]]:
    if not SAMPLES.is_dir():
        return []
    found = []
    for path in sorted(SAMPLES.glob("*/*")):
        if "_schema." in path.name or path.suffix == ".md":
            continue
        text = path.read_text(encoding="utf-8")
        try:
            document = json.loads(text)
            records = document.get("Records", [document])
        except json.JSONDecodeError:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        found += [(path.parent.name, path.name, r) for r in records]
    return found


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"shared samples not found at {SAMPLES}")
def test_shared_samples_are_recognised_by_their_folder_only() -> None:
    for owner, filename, record in _sample_records():
        claimed = {name for name, source in BUILTIN.items() if source.recognise(record)}
        assert claimed == {owner}, filename
