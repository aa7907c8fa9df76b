"""Moved: every sentinel DuckDB macro is registered by `sentinel.duck` (one place).

Kept as a name for code written against it; new code calls
`sentinel.duck.register_macros` or opens connections with `sentinel.duck.connect`.
"""

from __future__ import annotations

from sentinel.duck import IPV4_RE, register_macros

install_macros = register_macros

__all__ = ["IPV4_RE", "install_macros"]
