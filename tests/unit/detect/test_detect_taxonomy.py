"""The logsource taxonomy is derived from the installed sources, configured ones included."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from sentinel.config import load_config
from sentinel.detect.compiler import LocatedRuleError, compile_rule
from sentinel.detect.pipeline import Taxonomy
from sentinel.detect.rules import load_rules
from sentinel.detect.testing import events_table, run_sql
from sentinel.exceptions import ConfigError
from sentinel.sources.base import LogSource
from sentinel.sources.jsonl import JsonlSource


class PluginSource(LogSource):
    """A third-party source that declares no logsource: a gateway service of its name."""

    name = "acmeplugin"

    def recognise(self, record: dict[str, Any]) -> bool:
        return False


class VendorAudit(LogSource):
    name = "acme_audit"
    logsource = ("acme", "audit")

    def recognise(self, record: dict[str, Any]) -> bool:
        return False


def rule_file(tmp_path: Path, logsource: str) -> Path:
    path = tmp_path / "rule.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            title: model m
            id: 00000000-0000-4000-8000-0000000000aa
            status: test
            logsource: {{{logsource}}}
            detection:
              sel: {{model: m}}
              condition: sel
            """
        )
    )
    return path


def compiled_sql(tmp_path: Path, logsource: str, taxonomy: Taxonomy | None) -> str:
    pack = load_rules([rule_file(tmp_path, logsource)])
    return compile_rule(pack.rules[0], taxonomy=taxonomy).sql


def test_builtin_sources_declare_their_logsource() -> None:
    taxonomy = Taxonomy.installed()
    assert taxonomy.select("ai_gateway", None) == ("bedrock", "litellm")
    assert taxonomy.select("ai_gateway", "litellm") == ("litellm",)
    assert taxonomy.select("openai", "audit") == ("openai_audit",)
    assert taxonomy.select("aws", "cloudtrail") == ("cloudtrail",)
    assert taxonomy.select("aws", None) == ("cloudtrail",)
    assert taxonomy.select(None, "cloudtrail") is None


def test_gateway_product_selects_custom_and_plugin_sources(tmp_path: Path) -> None:
    custom = JsonlSource("portkey", {"ts": "$.t"})
    taxonomy = Taxonomy.installed([custom, PluginSource(), VendorAudit()])
    assert taxonomy.select("ai_gateway", None) == ("acmeplugin", "bedrock", "litellm", "portkey")
    assert taxonomy.select("ai_gateway", "portkey") == ("portkey",)
    assert taxonomy.select("ai_gateway", "acmeplugin") == ("acmeplugin",)
    assert taxonomy.select("acme", None) == ("acme_audit",)
    sql = compiled_sql(tmp_path, "product: ai_gateway", taxonomy)
    table = events_table(
        [
            {"event_id": "p", "ts": "2026-01-01T00:00:00+00:00", "source": "portkey", "model": "m"},
            {"event_id": "c", "ts": "2026-01-01T00:00:00+00:00", "source": "cloudtrail",
             "model": "m"},
        ]
    )
    assert run_sql(sql, table) == ["p"]
    sql = compiled_sql(tmp_path, "product: ai_gateway, service: portkey", taxonomy)
    assert "source IN ('portkey')" in sql


def test_unknown_logsource_names_what_is_installed(tmp_path: Path) -> None:
    with pytest.raises(LocatedRuleError) as info:
        compiled_sql(tmp_path, "product: ai_gateway, service: portkey", None)
    message = str(info.value)
    assert "rule.yml:" in message and "unsupported logsource" in message
    assert "product: ai_gateway / service: litellm" in message


def test_configured_source_declares_logsource(tmp_path: Path) -> None:
    config = tmp_path / "sentinel.toml"
    config.write_text(
        textwrap.dedent(
            """\
            [sources.helix]
            [sources.helix.fields]
            ts = "$.t"
            [sources.helix.logsource]
            product = "ai_gateway"
            service = "helicone"

            [sources.plain.fields]
            ts = "$.t"
            """
        )
    )
    parsed = {s.name: s for s in load_config(config).sources}
    assert parsed["helix"].logsource == ("ai_gateway", "helicone")
    assert parsed["plain"].logsource is None
    plain = JsonlSource("plain", {"ts": "$.t"}, logsource=parsed["plain"].logsource)
    assert plain.sigma_logsource == ("ai_gateway", "plain")


def test_configured_logsource_typo_is_located(tmp_path: Path) -> None:
    config = tmp_path / "sentinel.toml"
    config.write_text(
        '[sources.helix.fields]\nts = "$.t"\n\n[sources.helix.logsource]\nprodcut = "x"\n'
    )
    with pytest.raises(ConfigError, match=r"sentinel.toml:5:1: unknown key 'prodcut'.*'product'"):
        load_config(config)
