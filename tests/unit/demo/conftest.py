"""Shared demo generations: one full-size (counts) and one small (formats, incidents)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentinel.demo import DemoManifest, generate

SMALL = 3_000


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    return generate(tmp_path_factory.mktemp("demo-small"), seed=7, events=SMALL)


@pytest.fixture(scope="session")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    return generate(tmp_path_factory.mktemp("demo-full"), seed=7)


@pytest.fixture(scope="session")
def records_of() -> Callable[[Path], list[dict[str, Any]]]:
    return read_records


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of any demo file, unwrapped from its framing and envelope."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8")
    if path.name.endswith(".jsonl") or "BedrockModelInvocationLogs" in str(path):
        return [json.loads(line) for line in text.splitlines()]
    doc = json.loads(text)
    if isinstance(doc, list):
        return list(doc)
    if "Records" in doc:
        return list(doc["Records"])
    return list(doc["data"])
