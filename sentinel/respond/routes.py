"""Which playbook an incident gets: the routing part of the playbooks, without their schema.

Opening incidents needs of each playbook only its name, `priority` and `applies_to` (rule
ids, title and tag globs, minimum severity); a `Route` is exactly that, a frozen
dataclass. The full `Playbook` (`respond.playbook`: pydantic models for the steps and
deadlines, the YAML reader) costs a tenth of a second of imports; a scan from cron that
opens a few incidents gets its routes from a kept file instead (`scan.routecache`) and
never imports it.

Invariants:
- The matching is written once, here: `Playbook.match_score` is its route's, and
  `choose` ranks routes and playbooks alike (rule id match beats title match beats tag
  match, then `priority`, then name), so a route and the playbook it comes from are
  chosen for exactly the same incidents.
- Where playbooks are read from (`playbook_dirs`) and which files there are playbooks
  (`playbook_files`, in reading order) are decided here alone: the loader, the strict
  cache's signature (`respond.books`) and the kept routes' key use them.
- This module imports neither pydantic nor YAML nor the step kinds.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from sentinel.content import playbooks_dir
from sentinel.store.incidents import severity_rank

if TYPE_CHECKING:
    from sentinel.workspace import Workspace


@dataclass(frozen=True)
class Route:
    """A playbook as the intake sees it: its name, priority and what it applies to."""

    name: str
    priority: int = 0
    rules: tuple[str, ...] = ()
    """Rule ids, matched exactly."""
    titles: tuple[str, ...] = ()
    """Rule title globs, case-insensitive."""
    tags: tuple[str, ...] = ()
    """Rule tag globs, case-insensitive."""
    min_severity: str = "informational"

    def match_score(self, rule_id: str, title: str, tags: Sequence[str], severity: str) -> int:
        """0 when it does not apply; otherwise higher is more specific."""
        if severity_rank(severity) < severity_rank(self.min_severity):
            return 0
        if rule_id in self.rules:
            return 3
        if any(fnmatch.fnmatch(title.lower(), g.lower()) for g in self.titles):
            return 2
        if any(fnmatch.fnmatch(t.lower(), g.lower()) for g in self.tags for t in tags):
            return 1
        return 0


class Routed(Protocol):
    """What `choose` ranks: a `Route`, or a `Playbook` (which scores with its route)."""

    @property
    def name(self) -> str: ...

    @property
    def priority(self) -> int: ...

    def match_score(self, rule_id: str, title: str, tags: Sequence[str], severity: str) -> int:
        ...


class RouteSource(Protocol):
    """Whatever hands the intake its routes: the strict playbook cache of the watcher's
    lanes (`respond.books.Playbooks`) or the routes a scan keeps (`scan.routecache`)."""

    def routes(self) -> dict[str, Route]: ...


R = TypeVar("R", bound=Routed)


def choose(
    books: Mapping[str, R], rule_id: str, title: str, tags: Sequence[str], severity: str
) -> R | None:
    """The most specific playbook (or route) for an incident of this rule, None if none
    applies."""
    scored = [
        (book.match_score(rule_id, title, tags, severity), book.priority, book.name, book)
        for book in books.values()
    ]
    scored = [s for s in scored if s[0] > 0]
    if not scored:
        return None
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    return scored[0][3]


def playbook_dirs(ws: Workspace | None) -> list[Path]:
    """Where playbooks are read from, later ones overriding earlier ones by name."""
    dirs = [playbooks_dir()]
    if ws is not None and ws.config.incidents.playbooks:
        dirs.append(ws.root / ws.config.incidents.playbooks)
    return dirs


def playbook_files(directory: Path) -> list[Path]:
    """The playbook files of one directory, in reading order (none if it is no directory)."""
    if not directory.is_dir():
        return []
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])
