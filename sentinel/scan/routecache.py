"""The playbooks' routes kept between scans, so a scan that opens incidents does not import
the playbook schema.

Opening incidents needs of each playbook only its route (`respond.routes.Route`: name,
priority, applies_to). Getting them by parsing the playbooks costs ~0.13 s of imports
(pydantic, the step models, the YAML reader) against ~0.01 s of parsing; a scan from cron
pays that for every handful of new alerts. So the routes of a successful load are kept in
`state/packs/playbooks-<slot>.json` with the rule pack (`scan.packcache`, whose reader and
writer this uses), under a key that hashes everything the load depends on:

* the playbook directories, in `playbook_dirs` order, and the path and content of every
  playbook file read, in reading order (`playbook_files`);
* the code that reads and validates a playbook (the source of `sentinel/respond`, the
  config reader its durations and webhooks come from, the incident fields its templates
  are checked against, this module) and sentinel's version.

Invariants:
- A hit gives the routes a load of the same files gives, and imports no pydantic, no
  YAML and no `respond.playbook`.
- A miss runs the real `load_playbooks`: a broken playbook raises its `PlaybookError`
  (file, line, what is wrong) as it always did, and nothing is kept, so a kept file never
  hides one. Only a load whose files did not change while it ran is kept.
- A missing, damaged, truncated or foreign file, or one of another key, is a silent miss;
  one that cannot be written costs the next scan a parse, nothing else (`packcache`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sentinel.respond.routes import Route, playbook_dirs, playbook_files
from sentinel.scan import packcache
from sentinel.store.incidents import SEVERITIES
from sentinel.workspace import Workspace

FORMAT = 1
"""Bumped when what a kept route holds changes."""

_PACKAGE = Path(__file__).resolve().parent.parent
_CODE = (
    *sorted((_PACKAGE / "respond").glob("*.py")), *sorted((_PACKAGE / "config").glob("*.py")),
    _PACKAGE / "store" / "incidents.py", Path(__file__),
)


class KeptRoutes:
    """The workspace's routes for the intake (a `respond.routes.RouteSource`): from the kept
    file when it holds this key, else from `load_playbooks` (raising what it raises), then
    kept for the next scan."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.parsed = False
        """Whether the playbooks were parsed (a miss), for tests."""

    def routes(self) -> dict[str, Route]:
        """Every playbook's route by name."""
        dirs = playbook_dirs(self.ws)
        key = routes_key(dirs)
        path = packcache.packs_dir(self.ws.root) / packcache.slot_name("playbooks", dirs)
        cached = packcache.read(path, key, _route)
        if cached is not None and not cached[1]:
            routes = {route.name: route for route in cached[0]}
            if len(routes) == len(cached[0]):
                return routes
        from sentinel.respond.playbook import load_playbooks, routes_of

        self.parsed = True
        routes = routes_of(load_playbooks(self.ws))
        if routes_key(dirs) == key:  # a file edited during the load: keep nothing
            packcache.write(path, key, [_entry(route) for route in routes.values()], [])
        return routes


def routes_key(dirs: list[Path]) -> str:
    """The hash of everything a load of the playbooks in `dirs` depends on."""
    digest = hashlib.sha256(f"{FORMAT}\0{_code_version()}\0".encode())
    for directory in dirs:
        digest.update(f"dir\0{directory}\0".encode())
        for path in playbook_files(directory):
            digest.update(f"file\0{path}\0{packcache.file_digest(path)}\0".encode())
    return digest.hexdigest()


def _entry(route: Route) -> dict[str, Any]:
    return {"name": route.name, "priority": route.priority, "rules": list(route.rules),
            "titles": list(route.titles), "tags": list(route.tags),
            "min_severity": route.min_severity}


def _route(item: Any) -> Route:
    """A kept route, every field checked (a wrong type raises: the file is a miss)."""
    priority, severity = item["priority"], packcache.as_text(item["min_severity"])
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError("expected an integer priority")
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    return Route(
        name=packcache.as_text(item["name"]), priority=priority,
        rules=_texts(item["rules"]), titles=_texts(item["titles"]), tags=_texts(item["tags"]),
        min_severity=severity,
    )


def _texts(items: Any) -> tuple[str, ...]:
    if not isinstance(items, list):
        raise TypeError("expected a list")
    return tuple(packcache.as_text(item) for item in items)


_VERSION: list[str] = []


def _code_version() -> str:
    """The playbook reader's source and sentinel's version, hashed once per process."""
    if not _VERSION:
        _VERSION.append(packcache.code_version(_CODE))
    return _VERSION[0]
