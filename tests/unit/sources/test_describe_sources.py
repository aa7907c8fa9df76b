"""`describe_sources`: every installed source with its Sigma logsource and its origin."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel.sources import registry
from sentinel.sources.base import LogSource
from sentinel.sources.jsonl import JsonlSource
from sentinel.sources.registry import describe_sources


class PluginSource(LogSource):
    """Stands for a class from another package (its module is not `sentinel.…`)."""

    name = "acme_gateway"
    description = "ACME gateway logs"

    def recognise(self, record: dict[str, Any]) -> bool:
        return False


PluginSource.__module__ = "sentinel_source_acme"


def test_builtins_with_their_logsource() -> None:
    found = {info.name: info for info in describe_sources()}
    assert {n: (i.product, i.service, i.origin) for n, i in found.items()} == {
        "litellm": ("ai_gateway", "litellm", "built-in"),
        "bedrock": ("ai_gateway", "bedrock", "built-in"),
        "cloudtrail": ("aws", "cloudtrail", "built-in"),
        "openai_audit": ("openai", "audit", "built-in"),
        "anthropic_activity": ("anthropic", "activity", "built-in"),
    }
    assert all(info.description for info in found.values())


def test_configured_and_plugin_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    builtins = dict(registry._builtin_sources())
    with_plugin = {**builtins, "acme_gateway": PluginSource}
    monkeypatch.setattr(registry, "_builtin_sources", lambda: with_plugin)
    configured = [
        JsonlSource("portkey", {"ts": "$.created_at"}),
        JsonlSource("vendor_audit", {"ts": "$.t"}, logsource=("acme", "audit")),
    ]
    found = {info.name: info for info in describe_sources(configured)}
    plugin = found["acme_gateway"]
    assert (plugin.origin, plugin.product, plugin.service) == (
        "plugin", "ai_gateway", "acme_gateway")
    assert (found["portkey"].origin, found["portkey"].product, found["portkey"].service) == (
        "config", "ai_gateway", "portkey")
    assert (found["vendor_audit"].product, found["vendor_audit"].service) == ("acme", "audit")
    products = [info.product for info in describe_sources(configured)]
    assert products == sorted(products)


def test_config_wins_over_a_builtin_of_the_same_name() -> None:
    found = {i.name: i for i in describe_sources([JsonlSource("litellm", {"ts": "$.t"})])}
    assert found["litellm"].origin == "config"
