"""The playbooks' routes (`sentinel.respond.routes`): a route chooses exactly as the playbook
it comes from (what the intake imports instead of it: tests/unit/scan/test_startup_imports.py)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sentinel.respond.playbook import choose as choose_playbook
from sentinel.respond.playbook import load_playbooks, routes_of
from sentinel.respond.routes import Route, choose
from sentinel.store.incidents import SEVERITIES, severity_rank

BOOKS = load_playbooks()
ROUTES = routes_of(BOOKS)
EXTRA = Route("by-rule-id", priority=3, rules=("rule-1", "rule-2"), min_severity="high")
"""A route by rule id (no shipped playbook has one), to rank against the shipped ones."""


def _words(globs: list[str]) -> st.SearchStrategy[str]:
    """Text a glob matches (its stars filled in), in any case, or not (a letter dropped)."""
    def fill(glob: str, filler: str, upper: bool, drop: bool) -> str:
        text = glob.replace("*", filler).replace("?", "x")
        text = text[1:] if drop and text else text
        return text.upper() if upper else text

    return st.builds(fill, st.sampled_from(globs), st.text(max_size=6), st.booleans(),
                     st.booleans())


_TITLES = sorted({g for r in ROUTES.values() for g in r.titles})
_TAGS = sorted({g for r in ROUTES.values() for g in r.tags})
titles = st.one_of(_words(_TITLES), st.text(max_size=30))
tags = st.lists(st.one_of(_words(_TAGS), st.text(max_size=12)), max_size=4)
severities = st.one_of(st.sampled_from([*SEVERITIES, "", "unknown"]), st.text(max_size=8))
rule_ids = st.one_of(st.sampled_from(["rule-1", "rule-2", "rule-3"]), st.text(max_size=8))


def test_every_shipped_playbook_has_its_route() -> None:
    assert set(ROUTES) == set(BOOKS) and len(ROUTES) == 5
    for name, book in BOOKS.items():
        route = ROUTES[name]
        assert (route.name, route.priority, route.min_severity) == (
            book.name, book.priority, book.applies_to.min_severity)
        assert list(route.titles) == book.applies_to.titles
        assert list(route.tags) == book.applies_to.tags
        assert list(route.rules) == book.applies_to.rules


@settings(max_examples=300, deadline=None, database=None)
@given(rule_ids, titles, tags, severities)
@example("x", "Payment card number sent to an AI model", ["attack.t1567"], "high")
@example("x", "Full customer record in one prompt", ["attack.t1567"], "high")  # priority
@example("x", "Cloud credentials or private key sent", ["ATTACK.T1552.001"], "critical")
@example("x", "card number", [], "low")  # under every playbook's min_severity
@example("rule-1", "card number", [], "high")  # a rule id beats a title
@example("x", "", [], "")
def test_a_route_chooses_as_its_playbook_does(
    rule_id: str, title: str, tags: list[str], severity: str
) -> None:
    for name, book in BOOKS.items():
        assert ROUTES[name].match_score(rule_id, title, tags, severity) == (
            book.match_score(rule_id, title, tags, severity))
    by_book = choose_playbook(BOOKS, rule_id, title, tags, severity)
    by_route = choose(ROUTES, rule_id, title, tags, severity)
    assert (by_book.name if by_book else None) == (by_route.name if by_route else None)
    # A rule id match (3) beats any title or tag match of the shipped playbooks (2 or 1).
    by_id = rule_id in EXTRA.rules and severity_rank(severity) >= severity_rank("high")
    mixed = choose({**ROUTES, EXTRA.name: EXTRA}, rule_id, title, tags, severity)
    assert mixed == (EXTRA if by_id else by_route)


def test_ties_go_to_priority_then_name() -> None:
    low, high = Route("b-low", titles=("*card*",)), Route("a-high", 5, titles=("*card*",))
    other = Route("a-same", titles=("*card*",))
    assert choose({"x": low, "y": high}, "r", "Card", [], "low") == high
    assert choose({"x": low, "z": other}, "r", "Card", [], "low") == other
    assert choose({"x": low}, "r", "Card", [], "low") == low
    assert choose({}, "r", "Card", [], "low") is None

