"""What a scan reports a baseline by (id, title, level, kind, tags), read from its `spec`:
one set of names for the parsed baseline (`detect.baseline.LoadedBaseline`, pydantic) and
the kept one (`detect.baseline_compiled.CachedBaseline`). Apart from both, so that neither
module imports the other for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class _Facts(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def tags(self) -> Sequence[str]: ...


class SpecNames:
    """What a scan reports a baseline by, read from its `spec`: shared by the loaded
    baseline (pydantic `Baseline`) and the kept one (`BaselineFacts`)."""

    spec: _Facts

    @property
    def rule_id(self) -> str:
        return self.spec.id

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def level(self) -> str:
        return self.spec.level

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def tags(self) -> list[str]:
        return list(self.spec.tags)
