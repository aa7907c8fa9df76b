"""The schema-derived NULL columns of a source's select list."""

from __future__ import annotations

import re

import pytest

from sentinel.schema import SOURCE_COLUMNS
from sentinel.sources.registry import available_sources
from sentinel.sources.sqlshape import mapped_columns, with_unmapped_nulls


def test_only_unmapped_columns_get_nulls() -> None:
    select = "x AS ts,\n    TRY_CAST(y AS BIGINT) AS prompt_tokens,\n    NULL AS _error"
    completed = with_unmapped_nulls(select)
    assert mapped_columns(completed) == set(SOURCE_COLUMNS)
    assert "NULL AS ts" not in completed and "NULL AS prompt_tokens" not in completed
    assert "NULL AS action" in completed
    assert with_unmapped_nulls(completed) == completed


def test_a_cast_is_not_an_alias() -> None:
    assert mapped_columns("CAST(a AS BIGINT), TRY_CAST(b AS action) x") == set()


@pytest.mark.parametrize("name", sorted(available_sources()))
def test_every_source_names_each_schema_column_once(name: str) -> None:
    source = available_sources()[name]
    if not source.select_sql:
        pytest.skip("configured source builds its select list itself")
    aliases = re.findall(r"\bAS\s+([a-z_][a-z0-9_]*)\s*(?=,|$)", source.select_list(), re.I)
    for column in SOURCE_COLUMNS:
        assert aliases.count(column) == 1, column
