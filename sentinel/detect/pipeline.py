"""The processing pipeline: which events a rule's log source selects, which fields exist.

pySigma keeps this mapping out of the backend so the same rules can be converted for
another target with another pipeline. Here the mapping is small because sentinel has one
table: every log source is the `events` view filtered by its `source` column, and field
names are the schema's own (see `sentinel.detect.fields`).

The logsource taxonomy (documented for rule authors in `detections/README.md`):

| product      | service    | events (`source` column)   |
|--------------|------------|----------------------------|
| ai_gateway   | (none)     | litellm, bedrock           |
| ai_gateway   | litellm    | litellm                    |
| ai_gateway   | bedrock    | bedrock                    |
| openai       | audit      | openai_audit               |
| aws          | cloudtrail | cloudtrail                 |

Anything else is an error naming the rule, never a rule that silently scans nothing. The
selected sources travel to the backend in the pipeline state (`sentinel_sources`) and
become a plain `source IN (...)` filter that DuckDB can push down to the lake's
`source=` partitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaTransformationError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import (
    DetectionItemTransformation,
    PreprocessingTransformation,
)
from sigma.processing.transformations.placeholder import ValueListPlaceholderTransformation
from sigma.rule import SigmaDetectionItem, SigmaRule

from sentinel.detect.fields import UnknownFieldError, is_known_field

STATE_SOURCES = "sentinel_sources"

LOGSOURCES: dict[tuple[str, str | None], tuple[str, ...]] = {
    ("ai_gateway", None): ("litellm", "bedrock"),
    ("ai_gateway", "litellm"): ("litellm",),
    ("ai_gateway", "bedrock"): ("bedrock",),
    ("openai", "audit"): ("openai_audit",),
    ("aws", "cloudtrail"): ("cloudtrail",),
}

DEFAULT_VARS: dict[str, list[str]] = {
    # `|expand` placeholders usable in rules; a workspace config may override them later.
    "privileged_policies": [
        "*/AdministratorAccess",
        "*/IAMFullAccess",
        "*/AmazonBedrockFullAccess",
        "*/PowerUserAccess",
    ],
}


def sources_for(product: str | None, service: str | None) -> tuple[str, ...] | None:
    """The `source` values a logsource selects, or None when sentinel has no such source."""
    if product is None:
        return None
    return LOGSOURCES.get((product, service))


def known_logsources() -> str:
    return ", ".join(f"product: {p}" + (f" / service: {s}" if s else "") for p, s in LOGSOURCES)


@dataclass
class SelectSourcesTransformation(PreprocessingTransformation):
    """Look the rule's logsource up and put the selected sources into the pipeline state."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if not isinstance(rule, SigmaRule):
            return
        logsource = rule.logsource
        sources = sources_for(logsource.product, logsource.service)
        if sources is None:
            raise SigmaTransformationError(
                f"unsupported logsource (product {logsource.product!r}, service "
                f"{logsource.service!r}); sentinel knows {known_logsources()}",
                source=rule.source,
            )
        if self._pipeline is not None:
            self._pipeline.state[STATE_SOURCES] = list(sources)


@dataclass
class CheckFieldsTransformation(DetectionItemTransformation):
    """Reject fields that are neither schema columns nor `raw.` paths (also in correlations)."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> None:
        field = detection_item.field
        if field is not None and not is_known_field(field):
            raise SigmaTransformationError(
                str(UnknownFieldError(field)), source=detection_item.source
            )

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaCorrelationRule):
            names = list(rule.group_by or [])
            for alias in rule.aliases:
                names.extend(alias.mapping.values())
            fieldref = getattr(rule.condition, "fieldref", None)
            names.extend([fieldref] if isinstance(fieldref, str) else fieldref or [])
            alias_names = {alias.alias for alias in rule.aliases}
            for name in names:
                if name not in alias_names and not is_known_field(name):
                    raise SigmaTransformationError(str(UnknownFieldError(name)), source=rule.source)


def sentinel_pipeline(variables: Mapping[str, Any] | None = None) -> ProcessingPipeline:
    """The pipeline mapping sentinel's log sources and fields (sigma-cli: `-p sentinel`)."""
    return ProcessingPipeline(
        name="sentinel: log sources and event schema fields",
        allowed_backends=frozenset({"sentinel"}),
        priority=20,
        items=[
            ProcessingItem(
                identifier="sentinel_expand_placeholders",
                transformation=ValueListPlaceholderTransformation(),
            ),
            ProcessingItem(
                identifier="sentinel_check_fields", transformation=CheckFieldsTransformation()
            ),
            ProcessingItem(
                identifier="sentinel_select_sources", transformation=SelectSourcesTransformation()
            ),
        ],
        vars=dict(DEFAULT_VARS) | dict(variables or {}),
    )
