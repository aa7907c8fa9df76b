"""Loaded Sigma rules to DuckDB SQL through the backend, errors located in the rule file.

The pySigma side of `sentinel.detect.compiler`: that module holds what a scan uses (the
compiled rule) and calls this one only to compile, so a scan that reads a cached compile
(`sentinel.scan.packcache`) never imports pySigma.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from sentinel.detect.backend import SentinelBackend
from sentinel.detect.inputs import LocatedRuleError, RuleProblem
from sentinel.detect.pipeline import Taxonomy
from sentinel.detect.rules import LoadedRule
from sentinel.detect.transforms import build_pipeline


def _backend(variables: Mapping[str, Any] | None, taxonomy: Taxonomy | None) -> SentinelBackend:
    overrides = ProcessingPipeline(vars=dict(variables)) if variables else None
    backend = SentinelBackend(overrides)
    if taxonomy is not None:  # the workspace's sources (configured ones included)
        pipeline = build_pipeline(taxonomy=taxonomy)
        backend.backend_processing_pipeline = pipeline  # type: ignore[misc]
    backend.init_processing_pipeline()
    return backend


def _problem(
    loaded: LoadedRule, exc: Exception, rule: SigmaRule | SigmaCorrelationRule
) -> RuleProblem:
    message = str(exc.args[0]) if exc.args else str(exc)
    message = message.split(" (while ", 1)[0]
    owner = loaded
    if rule is not loaded.rule:  # the error is in a referenced rule, maybe in another file
        message = f"in referenced rule {rule.title!r}: {message}"
    return RuleProblem(owner.path, owner.file.locate(message, rule.title), message)


def _convert(backend: SentinelBackend, rule: SigmaRule | SigmaCorrelationRule) -> list[str]:
    if isinstance(rule, SigmaCorrelationRule):
        for reference in rule.referenced_rules:
            if isinstance(reference.rule, SigmaRule | SigmaCorrelationRule):
                try:
                    _convert(backend, reference.rule)
                except (SigmaError, NotImplementedError, TypeError, ValueError) as exc:
                    raise _Located(reference.rule, exc) from exc
        return list(backend.convert_correlation_rule(rule))
    result = backend.convert_rule(rule)
    if not result:  # building-block rules (referenced, generate: false) return no output
        result = list(rule.get_conversion_result())
        if result:
            result = [backend.finalize_query_default(rule, result[0], 0, None)]  # type: ignore[arg-type]
    return result


class _Located(Exception):
    def __init__(self, rule: SigmaRule | SigmaCorrelationRule, cause: Exception) -> None:
        super().__init__(*cause.args)
        self.rule = rule


def convert_rule(
    loaded: LoadedRule,
    variables: Mapping[str, Any] | None = None,
    taxonomy: Taxonomy | None = None,
) -> str:
    """The one query of a rule; raises LocatedRuleError located at the offending line."""
    backend = _backend(variables, taxonomy)
    try:
        queries = _convert(backend, loaded.rule)
    except _Located as exc:
        raise LocatedRuleError(_problem(loaded, exc, exc.rule)) from exc
    except (SigmaError, NotImplementedError, TypeError, ValueError) as exc:
        raise LocatedRuleError(_problem(loaded, exc, loaded.rule)) from exc
    if len(queries) != 1:
        message = f"expected one query, the rule produced {len(queries)}"
        raise LocatedRuleError(RuleProblem(loaded.path, loaded.line, message))
    return queries[0]
