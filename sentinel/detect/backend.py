"""The pySigma backend that turns Sigma rules into DuckDB SQL over the `events` view.

Declared as tokens on a `TextQueryBackend`; methods are overridden only where DuckDB and
Sigma's semantics need more than a template (field kinds, list columns, CIDR, NULLs,
keywords, correlations).

Semantics, chosen to be exactly Sigma's and checked by a differential test:

* Strings match case-insensitively — equality too — by comparing DuckDB `lower()` of both
  sides (utf8proc simple lowercase: `'ΣΑΣ'` → `'σασ'`, no final-sigma or `İ` → `i̇`
  special cases). `|cased` matches exactly. Plain values, prefixes, suffixes and
  substrings compile to `=`, `starts_with`, `ends_with`, `contains`, which need no
  escaping; any other wildcard pattern compiles to `ILIKE`/`LIKE` with `%`, `_` and `\\`
  in the value escaped (`ESCAPE '\\'` is added only when needed: it halves LIKE speed).
* Every atomic comparison is wrapped in `coalesce(..., false)`: a missing (NULL) field
  never equals a value, so `not selection` matches events where the field is missing.
* Numbers compare numerically (`TRY_CAST(text AS DOUBLE)` for text fields, so a
  non-numeric value is simply not equal); `|re` is `regexp_matches` (RE2, unanchored);
  `|cidr` is integer prefix arithmetic (see `sentinel.duck`).
* A list column (`pii_types`) matches when any element matches:
  `coalesce(len(list_filter(pii_types, lambda elem: <predicate>)) > 0, false)`.
* Keywords (values without a field) match when `prompt_text`, `response_text` or `raw`
  contains them (case-insensitive; wildcards allowed inside).
* `raw.a.b` reads `json_extract_string(raw, '$."a"."b"')`; a JSON null counts as missing.

Output contract (consumed by the incident engine):

* a detection rule → `SELECT * FROM events WHERE source IN (...) AND (<condition>)`: one
  row per matching event, every schema column;
* a correlation rule → one row per group and burst: the group-by columns (named as in the
  rule), `window_start`, `window_end` (TIMESTAMPTZ), `event_count` (matching events in
  the burst), `event_ids` (VARCHAR[], sorted) — see `sentinel.detect.correlation`.

The `condition` output format yields only the WHERE condition (with the source filter).
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.deferred import DeferredQueryExpression
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNull,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from sentinel.detect import correlation, folding
from sentinel.detect.fields import (
    LIST_ELEMENT,
    TEXT_KEYWORD_FIELDS,
    FieldRef,
    UnknownFieldError,
    quote_literal,
    resolve_field,
)
from sentinel.detect.pipeline import STATE_SOURCES
from sentinel.detect.transforms import build_pipeline

Cond = ConditionFieldEqualsValueExpression


class SentinelBackend(TextQueryBackend):
    """Sigma → DuckDB SQL over sentinel's `events` view (sigma-cli: `-t sentinel`)."""

    name: ClassVar[str] = "sentinel DuckDB SQL"
    identifier: ClassVar[str] = "sentinel"
    formats: ClassVar[dict[str, str]] = {
        "default": "DuckDB SELECT over the events view",
        "condition": "Only the WHERE condition",
    }
    # The sentinel pipeline is part of the backend: from the repository root sigma-cli reads
    # `-p sentinel` as the directory `sentinel/` (no pipeline YAML there), and a rule must
    # never convert without its log source filter and field checks. `-p sentinel` stays
    # valid (applying it twice is idempotent) and a `vars` pipeline can override variables.
    backend_processing_pipeline: ClassVar[ProcessingPipeline] = build_pipeline()
    requires_pipeline: ClassVar[bool] = False
    table: ClassVar[str] = "events"

    precedence = (ConditionNOT, ConditionAND, ConditionOR)
    group_expression: ClassVar[str] = "({expr})"
    token_separator = " "
    or_token: ClassVar[str] = "OR"
    and_token: ClassVar[str] = "AND"
    not_token: ClassVar[str] = "NOT"
    eq_token: ClassVar[str] = " = "

    # Case-insensitive string matching on the field's text form ({value}: plain literal,
    # {pattern}: LIKE pattern with its ESCAPE clause).
    eq_expression: ClassVar[str] = "lower({field}) = lower({value})"
    startswith_expression: ClassVar[str] = "starts_with(lower({field}), lower({value}))"
    endswith_expression: ClassVar[str] = "ends_with(lower({field}), lower({value}))"
    contains_expression: ClassVar[str] = "contains(lower({field}), lower({value}))"
    wildcard_match_expression: ClassVar[str] = "{field} ILIKE {pattern}"
    case_sensitive_match_expression: ClassVar[str] = "{field} = {value}"
    case_sensitive_startswith_expression: ClassVar[str] = "starts_with({field}, {value})"
    case_sensitive_endswith_expression: ClassVar[str] = "ends_with({field}, {value})"
    case_sensitive_contains_expression: ClassVar[str] = "contains({field}, {value})"
    case_sensitive_wildcard_match_expression: ClassVar[str] = "{field} LIKE {pattern}"
    wildcard_multi: ClassVar[str] = "%"
    wildcard_single: ClassVar[str] = "_"
    escape_char: ClassVar[str] = "\\"
    add_escaped: ClassVar[str] = "\\"
    str_quote: ClassVar[str] = "'"

    re_expression: ClassVar[str] = "regexp_matches({field}, {regex})"
    re_flag_prefix = True
    compare_op_expression: ClassVar[str] = "{field} {operator} {value}"
    compare_operators: ClassVar[dict[CompareOperators, str]] = {
        CompareOperators.LT: "<",
        CompareOperators.LTE: "<=",
        CompareOperators.GT: ">",
        CompareOperators.GTE: ">=",
    }
    field_equals_field_expression: ClassVar[str] = "lower({field1}) = lower({field2})"
    field_equals_field_startswith_expression: ClassVar[str] = (
        "starts_with(lower({field1}), lower({field2}))"
    )
    field_equals_field_endswith_expression: ClassVar[str] = (
        "ends_with(lower({field1}), lower({field2}))"
    )
    field_equals_field_contains_expression: ClassVar[str] = (
        "contains(lower({field1}), lower({field2}))"
    )
    field_null_expression: ClassVar[str] = "({field} IS NULL)"
    field_exists_expression: ClassVar[str] = "({field} IS NOT NULL)"
    field_not_exists_expression: ClassVar[str] = "({field} IS NULL)"
    ipv4_cidr_expression: ClassVar[str] = "(sentinel_ipv4({field}) >> {shift}) = {network}"
    ipv6_cidr_expression: ClassVar[str] = "(sentinel_ipv6({field}) >> {shift}) = {network}"
    null_safe_expression: ClassVar[str] = "coalesce({expr}, false)"
    list_any_expression: ClassVar[str] = (
        "coalesce(len(list_filter({field}, lambda elem: {expr})) > 0, false)"
    )
    source_filter_expression: ClassVar[str] = "source IN ({sources})"
    query_select_expression: ClassVar[str] = "SELECT * FROM {table} WHERE {condition}"

    correlation_methods: ClassVar[dict[str, str]] = {
        "default": "Window queries over the events view, one row per group and burst"
    }

    # --- fields -------------------------------------------------------------------------

    def field(self, name: str) -> FieldRef:
        try:
            return resolve_field(name)
        except UnknownFieldError as exc:
            raise SigmaFeatureNotSupportedByBackendError(str(exc)) from exc

    def escape_and_quote_field(self, field_name: str) -> str:
        return self.field(field_name).text_sql

    # --- values -------------------------------------------------------------------------

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        """A LIKE pattern literal: SQL quoting doubles `'`; `%`, `_`, `\\` are escaped."""
        pattern = s.convert(
            self.escape_char, self.wildcard_multi, self.wildcard_single, self.add_escaped
        )
        escape = f" ESCAPE {quote_literal(self.escape_char)}" if self.escape_char in pattern else ""
        return quote_literal(pattern) + escape

    def convert_value_re(
        self, r: SigmaRegularExpression, state: ConversionState
    ) -> str | DeferredQueryExpression:
        return quote_literal(r.escape([], "\\", False, True))

    # --- value lists on one field, folded (see `sentinel.detect.folding`) -----------------

    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> Any:
        folded = self._fold(cond)
        return folded if folded is not None else super().convert_condition_or(cond, state)

    def _fold(self, cond: ConditionOR) -> str | None:
        """One expression for an OR of CIDRs, or of plain ASCII substrings, on one field."""
        args = [arg for arg in cond.args if isinstance(arg, Cond)]
        if len(args) < 2 or len(args) != len(cond.args):
            return None
        fields = {arg.field for arg in args}
        if len(fields) != 1 or LIST_ELEMENT in fields or None in fields:
            return None
        ref = self.field(str(args[0].field))
        if ref.kind == "list":
            return None
        values = [arg.value for arg in args]
        networks = [v.network for v in values if isinstance(v, SigmaCIDRExpression)]
        if len(networks) == len(values):
            return folding.networks_sql(ref.text_sql, networks)
        literals = [_substring(v) for v in values]
        if all(text is not None and folding.foldable_literal(text) for text in literals):
            return folding.substrings_sql(ref.text_sql, [t for t in literals if t])
        return None

    # --- atomic conditions: NULL safety and list columns --------------------------------

    def convert_condition_field_eq_val(self, cond: Cond, state: ConversionState) -> Any:
        if isinstance(cond.value, SigmaExpansion | SigmaNull | SigmaExists):
            return super().convert_condition_field_eq_val(cond, state)
        ref = self.field(cond.field)
        if ref.kind == "list":
            element = Cond(LIST_ELEMENT, cond.value)
            element.parent = cond.parent
            inner = super().convert_condition_field_eq_val(element, state)
            return self.list_any_expression.format(field=ref.column_sql, expr=inner)
        expr = super().convert_condition_field_eq_val(cond, state)
        return self.null_safe_expression.format(expr=expr)

    def convert_condition_field_eq_val_exists(self, cond: Cond, state: ConversionState) -> Any:
        template = self.field_exists_expression if cond.value else self.field_not_exists_expression
        return template.format(field=self.field(cond.field).column_sql)

    def convert_condition_field_eq_val_null(self, cond: Cond, state: ConversionState) -> Any:
        return self.field_null_expression.format(field=self.field(cond.field).column_sql)

    def convert_condition_field_eq_val_str(self, cond: Cond, state: ConversionState) -> Any:
        return self._string_match(cond.field, _as_string(cond.value), cased=False, state=state)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: Cond, state: ConversionState
    ) -> Any:
        return self._string_match(cond.field, _as_string(cond.value), cased=True, state=state)

    def _string_match(
        self, field: str, value: SigmaString, cased: bool, state: ConversionState
    ) -> str:
        prefix = "case_sensitive_" if cased else ""
        star = SpecialChars.WILDCARD_MULTI
        body = value
        if not value.contains_special():
            kind = "match" if cased else "eq"
        elif (
            len(value) > 1
            and value.startswith(star)
            and value.endswith(star)
            and not value[1:-1].contains_special()
        ):
            kind, body = "contains", value[1:-1]
        elif value.endswith(star) and not value[:-1].contains_special():
            kind, body = "startswith", value[:-1]
        elif value.startswith(star) and not value[1:].contains_special():
            kind, body = "endswith", value[1:]
        else:
            kind = "wildcard_match"
        template: str = getattr(self, f"{prefix}{kind}_expression")
        return template.format(
            field=self.escape_and_quote_field(field),
            value=quote_literal(body.convert(None, None, None, ""))
            if kind != "wildcard_match"
            else "",
            pattern=self.convert_value_str(body, state) if kind == "wildcard_match" else "",
        )

    def convert_condition_field_eq_val_num(self, cond: Cond, state: ConversionState) -> Any:
        return f"{self.field(cond.field).number_sql} = {cond.value}"

    def convert_condition_field_compare_op_val(self, cond: Cond, state: ConversionState) -> Any:
        value = cond.value
        assert isinstance(value, SigmaCompareExpression)
        return self.compare_op_expression.format(
            field=self.field(cond.field).number_sql,
            operator=self.compare_operators[value.op],
            value=value.number,
        )

    def convert_condition_field_eq_val_bool(self, cond: Cond, state: ConversionState) -> Any:
        assert isinstance(cond.value, SigmaBool)
        literal = quote_literal("true" if cond.value.boolean else "false")
        return self.eq_expression.format(
            field=self.escape_and_quote_field(cond.field), value=literal
        )

    def convert_condition_field_eq_val_cidr(self, cond: Cond, state: ConversionState) -> Any:
        assert isinstance(cond.value, SigmaCIDRExpression)
        network = cond.value.network
        bits = 32 if isinstance(network, ipaddress.IPv4Network) else 128
        shift = bits - network.prefixlen
        template = self.ipv4_cidr_expression if bits == 32 else self.ipv6_cidr_expression
        if shift == bits:  # /0: any address of the family (a shift by the width is undefined)
            template = template.split(" >> ")[0] + " IS NOT NULL)"
        return template.format(
            field=self.escape_and_quote_field(cond.field),
            shift=shift,
            network=int(network.network_address) >> shift,
        )

    def convert_condition_field_eq_val_timestamp_part(
        self, cond: Cond, state: ConversionState
    ) -> Any:
        raise SigmaFeatureNotSupportedByBackendError(
            f"timestamp part modifiers (e.g. |minute) on field {cond.field!r} are not supported"
        )

    # --- keywords -----------------------------------------------------------------------

    def _keyword(self, cond: Any, value: Any, state: ConversionState) -> str:
        parts = []
        for name in TEXT_KEYWORD_FIELDS:
            item = Cond(name, value)
            item.parent = cond.parent
            parts.append(self.convert_condition_field_eq_val(item, state))
        return self.group_expression.format(expr=f" {self.or_token} ".join(parts))

    def convert_condition_val_str(self, cond: Any, state: ConversionState) -> Any:
        value = _as_string(cond.value)
        star = SpecialChars.WILDCARD_MULTI
        if not value.startswith(star):
            value = SigmaString("*") + value
        if not value.endswith(star):
            value = value + SigmaString("*")
        if isinstance(cond.value, SigmaCasedString):
            value = SigmaCasedString.from_sigma_string(value)
        return self._keyword(cond, value, state)

    def convert_condition_val_num(self, cond: Any, state: ConversionState) -> Any:
        return self._keyword(cond, SigmaString(f"*{cond.value}*"), state)

    def convert_condition_val_re(self, cond: Any, state: ConversionState) -> Any:
        return self._keyword(cond, cond.value, state)

    # --- queries ------------------------------------------------------------------------

    def finish_query(self, rule: Any, query: Any, state: ConversionState) -> Any:
        sources = state.processing_state.get(STATE_SOURCES)
        if isinstance(rule, SigmaRule) and sources:
            source_filter = self.source_filter_expression.format(
                sources=", ".join(quote_literal(s) for s in sources)
            )
            query = f"{source_filter} AND ({query})"
        return super().finish_query(rule, query, state)

    def finalize_query_default(
        self, rule: SigmaRule | SigmaCorrelationRule, query: Any, index: int, state: ConversionState
    ) -> Any:
        if isinstance(rule, SigmaCorrelationRule):
            return query
        return self.query_select_expression.format(table=self.table, condition=query)

    def finalize_query_condition(
        self, rule: SigmaRule | SigmaCorrelationRule, query: Any, index: int, state: ConversionState
    ) -> Any:
        return query

    def finalize_output_condition(self, queries: list[Any]) -> Any:
        return queries

    # --- correlations -------------------------------------------------------------------

    def convert_correlation_event_count_rule(
        self, rule: Any, output_format: Any = None, method: str = "default"
    ) -> list[str]:
        return [correlation.correlation_query(self.table, rule)]

    convert_correlation_value_count_rule = convert_correlation_event_count_rule
    convert_correlation_temporal_rule = convert_correlation_event_count_rule
    convert_correlation_temporal_ordered_rule = convert_correlation_event_count_rule
    convert_correlation_value_sum_rule = convert_correlation_event_count_rule
    convert_correlation_value_avg_rule = convert_correlation_event_count_rule


def _substring(value: Any) -> str | None:
    """The literal of a case-insensitive `*literal*` value (no other wildcard), else None."""
    star = SpecialChars.WILDCARD_MULTI
    if (
        not isinstance(value, SigmaString)
        or isinstance(value, SigmaCasedString)
        or len(value) < 3
        or not (value.startswith(star) and value.endswith(star))
        or value[1:-1].contains_special()
    ):
        return None
    return str(value[1:-1].convert(None, None, None, ""))


def _as_string(value: Any) -> SigmaString:
    if not isinstance(value, SigmaString):
        raise TypeError(f"expected a string value, got {type(value).__name__}")
    return value


__all__ = ["SentinelBackend"]
