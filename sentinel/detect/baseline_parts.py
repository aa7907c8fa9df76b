"""The pieces of baseline SQL that the whole-history query (`baseline_sql`) and the
model queries (`baseline_model`) share: the measures, the `where` filter, the principal
columns and a first_seen's value. Both build on this module and neither on the other.
"""

from __future__ import annotations

from typing import Any

from sentinel.detect.baseline import LIST_COLUMNS, PROMPT_COLUMNS, Baseline, FirstSeen
from sentinel.detect.baseline_compiled import RELATION

__all__ = [
    "LOCAL_DAY_HOUR", "MEASURES", "RELATION", "first_seen_value", "principal_columns",
    "where_sql",
]
from sentinel.detect.fields import quote_identifier as q

MEASURES = {
    "requests": "1",
    "tokens": "coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)",
    "cost": "CAST(coalesce(cost_usd, 0) AS DECIMAL(38, 9))",  # exact sums, in any order
}
LOCAL_DAY_HOUR = (
    ", date_trunc('day', timezone($tz, {ts})) AS day, hour(timezone($tz, {ts})) AS hod"
)
"""hours: the day (a local date, as a plain TIMESTAMP) and hour of day in the baseline's zone."""


def where_sql(spec: Baseline, params: dict[str, Any]) -> str:
    """The `where` filter as SQL over schema columns, its values as bound parameters."""
    parts = []
    for index, (name, condition) in enumerate(sorted(spec.where.items())):
        column, param = q(name), f"w{index}"
        negate, present = False, None
        if isinstance(condition, dict):
            operator, operand = next(iter(condition.items()))
            if operator == "present":
                present, condition = bool(operand), None
            else:
                negate, condition = True, operand
        if present is not None:
            test = f"len({column}) > 0" if name in LIST_COLUMNS else (
                f"({column} IS NOT NULL AND CAST({column} AS VARCHAR) <> '')"
            )
            parts.append(test if present else f"NOT coalesce({test}, false)")
            continue
        if condition is None:
            test = f"({column} IS NULL OR len({column}) = 0)" if name in LIST_COLUMNS else (
                f"{column} IS NULL"
            )
        else:
            params[param] = condition
            if name in LIST_COLUMNS:
                values = condition if isinstance(condition, list) else [condition]
                params[param] = [str(v) for v in values]
                test = f"list_has_any({column}, ${param}::VARCHAR[])"
            elif isinstance(condition, list):
                test = f"list_contains(${param}, {column})"
            else:
                test = f"{column} = ${param}"
        parts.append(f"NOT coalesce({test}, false)" if negate else f"coalesce({test}, false)")
    return " AND ".join(parts) or "true"


def principal_columns(spec: Baseline) -> tuple[list[str], str, str]:
    """The `by` columns as p0…pN, their non-NULL filter and the alert's principal list."""
    names = [f"p{i}" for i in range(len(spec.by))]
    select = [f"CAST({q(col)} AS VARCHAR) AS {name}" for col, name in zip(spec.by, names,
                                                                          strict=True)]
    not_null = " AND ".join(f"{q(col)} IS NOT NULL" for col in spec.by)
    return select, not_null, "[" + ", ".join(names) + "]"


def first_seen_value(spec: FirstSeen) -> tuple[str, str]:
    """(the extra column of `s`, the value expression over it) of a first_seen baseline.

    A value of prompt or response text is its keyed digest from the first step
    (`$digest_key`): the query, the alert's subject and the model only ever see the
    digest, so the text cannot reach `state.db` or a model file, whatever the kind does
    with the value later."""
    if spec.value is None:
        return "", "'*'"
    if spec.value in LIST_COLUMNS:
        return f", {q(spec.value)} AS value_of", "unnest(value_of)"
    if spec.value in PROMPT_COLUMNS:
        return f", sha256($digest_key || {q(spec.value)}) AS value_of", "value_of"
    return f", CAST({q(spec.value)} AS VARCHAR) AS value_of", "value_of"
