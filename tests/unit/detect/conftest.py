"""Fixtures for detection tests: compile Sigma YAML and run the SQL on a small table."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sigma.collection import SigmaCollection

from sentinel.detect.backend import SentinelBackend
from sentinel.detect.testing import events_table, run_sql

HEADER = """\
title: test rule
id: 00000000-0000-4000-8000-000000000001
status: test
logsource:
  product: ai_gateway
  service: litellm
"""


def compile_sigma(text: str) -> list[str]:
    """All output queries of a (multi-document) Sigma YAML text."""
    collection = SigmaCollection.from_yaml(textwrap.dedent(text))
    return list(SentinelBackend().convert(collection))


def compile_detection(detection: str) -> str:
    """The SQL of a litellm rule whose `detection:` block is given (indented 2)."""
    queries = compile_sigma(
        HEADER + "detection:\n" + textwrap.indent(textwrap.dedent(detection), "  ")
    )
    assert len(queries) == 1
    return queries[0]


def run_events(sql: str, events: Sequence[dict[str, Any]]) -> list[str]:
    """Event ids the SQL returns over events (event_id defaults to e<index>)."""
    rows = []
    for index, event in enumerate(events):
        row = {"event_id": f"e{index}", "ts": "2025-03-01T10:00:00+00:00", "source": "litellm"}
        row.update(event)
        rows.append(row)
    return sorted(run_sql(sql, events_table(rows)))


@pytest.fixture()
def detection() -> Callable[[str], str]:
    return compile_detection


@pytest.fixture()
def run() -> Callable[[str, Sequence[dict[str, Any]]], list[str]]:
    return run_events


@pytest.fixture()
def sigma() -> Callable[[str], list[str]]:
    return compile_sigma
