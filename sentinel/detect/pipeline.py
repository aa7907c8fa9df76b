"""The processing pipeline: which events a rule's log source selects, which fields exist.

pySigma keeps this mapping out of the backend so the same rules can be converted for
another target with another pipeline. Here the mapping is small because sentinel has one
table: every log source is the `events` view filtered by its `source` column, and field
names are the schema's own (see `sentinel.detect.fields`).

The logsource taxonomy is derived from the installed log sources, never a fixed table:
each `LogSource` declares its `(product, service)` (`sentinel sources` lists them), and

* `product: P` + `service: S` selects the sources declaring exactly (P, S);
* `product: P` alone selects every source of product P — `product: ai_gateway` is every
  gateway source: LiteLLM, Bedrock, a `[sources.NAME]` mapping, a plugin.

The built-ins declare ai_gateway/litellm, ai_gateway/bedrock, openai/audit and
aws/cloudtrail; a `[sources.NAME]` in `sentinel.toml` is ai_gateway/NAME unless its
`logsource` table says otherwise. `Taxonomy.installed()` covers the entry-point sources
(what `sigma convert -t sentinel` sees); the scan passes the workspace's configured
sources too.

Anything else is an error naming the rule, never a rule that silently scans nothing. The
selected sources travel to the backend in the pipeline state (`sentinel_sources`) and
become a plain `source IN (...)` filter that DuckDB can push down to the lake's
`source=` partitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sentinel.sources.base import LogSource

STATE_SOURCES = "sentinel_sources"



@dataclass(frozen=True)
class Taxonomy:
    """Which `source` values each Sigma (product, service) selects."""

    sources: dict[tuple[str, str | None], tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_sources(cls, sources: Iterable[LogSource]) -> Taxonomy:
        table: dict[tuple[str, str | None], list[str]] = {}
        for source in sources:
            product, service = source.sigma_logsource
            for key in ((product, service), (product, None)):
                names = table.setdefault(key, [])
                if source.name not in names:
                    names.append(source.name)
        return cls({key: tuple(sorted(names)) for key, names in table.items()})

    @classmethod
    def installed(cls, extra: Iterable[LogSource] = ()) -> Taxonomy:
        """The entry-point sources (built-in and plugins) plus `extra` (configured ones)."""
        from sentinel.sources.registry import available_sources

        return cls.from_sources(available_sources(extra).values())

    def select(self, product: str | None, service: str | None) -> tuple[str, ...] | None:
        """The `source` values a logsource selects, or None when no source declares it."""
        if product is None:
            return None
        return self.sources.get((product, service))

    def sources_of(self, logsources: Iterable[tuple[str | None, str | None]]) -> list[str]:
        """The `source` values any of `logsources` selects, each once, in first-seen order."""
        found: list[str] = []
        for product, service in logsources:
            for source in self.select(product, service) or ():
                if source not in found:
                    found.append(source)
        return found

    def describe(self) -> str:
        return ", ".join(
            f"product: {p}" + (f" / service: {s}" if s else "") for p, s in sorted(
                self.sources, key=lambda k: (k[0], k[1] or "")
            )
        )


DEFAULT_VARS: dict[str, list[str]] = {
    # `|expand` placeholders usable in rules; a workspace config may override them later.
    "privileged_policies": [
        "*/AdministratorAccess",
        "*/IAMFullAccess",
        "*/AmazonBedrockFullAccess",
        "*/PowerUserAccess",
    ],
    # Approved AI vendors (the `vendor` column: LiteLLM's provider names, `aws-bedrock`).
    "allowed_ai_vendors": [
        "openai", "azure", "anthropic", "vertex_ai", "gemini", "mistral", "aws-bedrock",
        "bedrock",
    ],
    # Approved model name patterns (`model` column; wildcards allowed).
    "allowed_ai_models": [
        "gpt-4o*", "gpt-4.1*", "gpt-5*", "o3*", "o4-mini*", "azure/*", "claude-*",
        "*anthropic.claude-*", "gemini-*", "mistral-*", "mistral.*", "amazon.nova-*",
        "amazon.titan-*", "*meta.llama*", "text-embedding-*",
    ],
}


def sources_for(
    product: str | None, service: str | None, taxonomy: Taxonomy | None = None
) -> tuple[str, ...] | None:
    """The `source` values a logsource selects (default: the installed sources' taxonomy)."""
    return (taxonomy or Taxonomy.installed()).select(product, service)
