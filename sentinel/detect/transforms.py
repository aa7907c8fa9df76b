"""The pySigma transformations of sentinel's processing pipeline (`build_pipeline`; sigma-cli
knows it as `-p sentinel`).

Three items, in order: expand `|expand` placeholders from the variables, reject fields
that are neither schema columns nor `raw.` paths, and look the rule's logsource up in
the taxonomy (`sentinel.detect.pipeline.Taxonomy`), putting the selected sources into
the pipeline state for the backend. A logsource no installed source declares is an
error naming the rule, never a rule that silently scans nothing.
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
from sentinel.detect.pipeline import DEFAULT_VARS, STATE_SOURCES, Taxonomy


@dataclass
class SelectSourcesTransformation(PreprocessingTransformation):
    """Look the rule's logsource up and put the selected sources into the pipeline state."""

    taxonomy: Taxonomy | None = None
    """None: the installed sources' taxonomy, looked up when a rule is converted."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if not isinstance(rule, SigmaRule):
            return
        logsource = rule.logsource
        taxonomy = self.taxonomy or Taxonomy.installed()
        sources = taxonomy.select(logsource.product, logsource.service)
        if sources is None:
            raise SigmaTransformationError(
                f"unsupported logsource (product {logsource.product!r}, service "
                f"{logsource.service!r}); the installed sources declare {taxonomy.describe()}",
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


def build_pipeline(
    variables: Mapping[str, Any] | None = None, taxonomy: Taxonomy | None = None
) -> ProcessingPipeline:
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
                identifier="sentinel_select_sources",
                transformation=SelectSourcesTransformation(taxonomy=taxonomy),
            ),
        ],
        vars=dict(DEFAULT_VARS) | dict(variables or {}),
    )
