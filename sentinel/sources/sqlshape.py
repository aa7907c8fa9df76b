"""Schema-derived parts of a source's select list.

Every source must name each column of `sentinel.schema.SOURCE_COLUMNS`, and most
columns of most formats have nothing to map (CloudTrail carries no prompt, an audit log
no tokens). Writing `NULL AS prompt_text` by hand in every source repeats the schema and
goes stale when a column is added. `with_unmapped_nulls` appends `NULL AS <column>` for
each schema column a select list does not alias, so a source writes only what it maps
and keeps its SQL's shape (one aliased expression per line, in schema order).

An alias counts as mapped when the select list contains `AS <column>` followed by a
comma or the end of the text, which is how every source writes its columns; a cast's
`AS BIGINT)` is never taken for one. A false reading fails loudly (the engine reports a
missing or duplicate column), never silently.
"""

from __future__ import annotations

import re

from sentinel.schema import SOURCE_COLUMNS

_ALIAS = re.compile(r"\bAS\s+([a-z_][a-z0-9_]*)\s*(?=,|$)", re.IGNORECASE)


def mapped_columns(select_sql: str) -> set[str]:
    """The schema columns a select list aliases."""
    return {name for name in _ALIAS.findall(select_sql.strip()) if name in SOURCE_COLUMNS}


def with_unmapped_nulls(select_sql: str) -> str:
    """`select_sql` plus `NULL AS <column>` for every schema column it does not map."""
    select_sql = select_sql.rstrip().rstrip(",")
    mapped = mapped_columns(select_sql)
    missing = [name for name in SOURCE_COLUMNS if name not in mapped]
    if not missing:
        return select_sql
    return select_sql + ",\n" + ",\n".join(f"    NULL AS {name}" for name in missing)
