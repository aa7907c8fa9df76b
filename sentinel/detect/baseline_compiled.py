"""A compiled baseline as a scan runs it: its SQL and what the scan reads of its definition.

Kept apart from the format (`sentinel.detect.baseline`, pydantic) and the compiler
(`sentinel.detect.baseline_sql`) because it imports neither: a scan that reuses a kept
compile (`sentinel.scan.packcache`) runs `CompiledBaseline`s whose `loaded` is a
`CachedBaseline`, never parsing a baseline file nor importing pydantic. Whatever a scan
reads of `loaded` (rule id, title, level, kind, and of `spec`: `by`, `tags`, `kind`,
`learning`, `min_history_window`) both a parsed and a cached baseline give alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sentinel.detect.baseline_names import SpecNames

if TYPE_CHECKING:
    from sentinel.detect.baseline import LoadedBaseline

RELATION = "{relation}"
"""Where a baseline's SQL reads its events: replaced by a `read_parquet(...)` relation."""


@dataclass(frozen=True)
class BaselineFacts:
    """What a scan reads of a baseline's definition (its `spec`), without pydantic."""

    id: str
    title: str
    level: str
    kind: str
    status: str
    by: tuple[str, ...]
    tags: tuple[str, ...]
    learning: str
    min_history_window: timedelta


@dataclass(frozen=True)
class CachedBaseline(SpecNames):
    """A baseline as a kept compile recorded it: `loaded` of a cached `CompiledBaseline`."""

    spec: BaselineFacts


@dataclass(frozen=True)
class CompiledBaseline:
    """A baseline's SQL (with a `{relation}` slot), its parameters and the sources it reads."""

    loaded: LoadedBaseline | CachedBaseline
    template: str
    params: dict[str, Any]
    sources: tuple[str, ...]
    aggregate: str = ""
    """Model rows of `{relation}`'s events (`sentinel.detect.baseline_model`)."""
    combine: str = ""
    """One model from `{model}`, a union of models."""
    decide: str = ""
    """The alerts from the new events (`{relation}`) and the history's model (`{model}`)."""
    lookback: timedelta = timedelta(0)
    """How far before the new events the query must read (the learning window, a
    silence's gap, and a day)."""

    @property
    def rule_id(self) -> str:
        return self.loaded.rule_id

    @property
    def title(self) -> str:
        return self.loaded.title

    @property
    def level(self) -> str:
        return self.loaded.level

    @property
    def kind(self) -> str:
        return "baseline"

    def sql(self, relation: str) -> str:
        return self.template.replace(RELATION, relation)

    def decide_sql(self, relation: str, model: str) -> str:
        return self.decide.replace(RELATION, relation).replace("{model}", model)


def facts_of(loaded: LoadedBaseline | CachedBaseline) -> BaselineFacts:
    """The facts of a parsed (or cached) baseline, as a kept compile records them."""
    if isinstance(loaded, CachedBaseline):
        return loaded.spec
    spec = loaded.spec
    return BaselineFacts(
        id=spec.id, title=spec.title, level=spec.level, kind=spec.kind, status=spec.status,
        by=tuple(spec.by), tags=tuple(spec.tags), learning=spec.learning,
        min_history_window=spec.min_history_window,
    )
