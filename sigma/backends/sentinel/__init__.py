"""sigma-cli discovery of sentinel's DuckDB backend (`sigma convert -t sentinel`).

pySigma scans the `sigma.backends` namespace package and registers every `Backend`
subclass found at module level under its `identifier`; this package only re-exports it.
"""

from sentinel.detect.backend import SentinelBackend

backends = {"sentinel": SentinelBackend}

__all__ = ["SentinelBackend", "backends"]
