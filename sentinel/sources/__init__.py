"""Log sources: one module per format, all behind the `LogSource` contract in `base`."""

from sentinel.sources.base import LogSource
from sentinel.sources.registry import available_sources, get_source, recognise

__all__ = ["LogSource", "available_sources", "get_source", "recognise"]
