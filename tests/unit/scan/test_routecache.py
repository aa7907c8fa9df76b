"""The playbooks' routes kept between scans (`sentinel.scan.routecache`): a hit gives what a
load gives, without the playbook schema; any change to what the load reads is a miss; a
damaged or foreign file is a silent miss; a broken playbook is never hidden."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.exceptions import PlaybookError
from sentinel.respond import playbook
from sentinel.respond.playbook import load_playbooks, routes_of
from sentinel.respond.routes import Route, choose
from sentinel.scan import packcache, routecache
from sentinel.scan.routecache import KeptRoutes
from sentinel.store.incidents import SEVERITIES
from sentinel.workspace import Workspace
from tests.unit.scan.test_packcache import _damage

SHIPPED = Path(__file__).parents[3] / "playbooks"
BAD = Path(__file__).parents[3] / "tests" / "data" / "respond" / "unknown_step_kind.yml"


def _mine(name: str = "mine", priority: int = 0) -> str:
    text = (SHIPPED / "secret-in-prompt.yml").read_text()
    return text.replace("name: secret-in-prompt", f"name: {name}\npriority: {priority}", 1)


def _use_dir(ws: Workspace, folder: str) -> Workspace:
    config = ws.config_path
    text = config.read_text()
    text = text.replace('# playbooks = "playbooks"', f'playbooks = "{folder}"', 1)
    text = text.replace('playbooks = "books"', f'playbooks = "{folder}"', 1)
    config.write_text(text)
    return Workspace.open(ws.root)


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    """A workspace with a playbook directory of its own holding one playbook."""
    (workspace.root / "books").mkdir()
    (workspace.root / "books" / "mine.yml").write_text(_mine())
    return _use_dir(workspace, "books")


def _kept(ws: Workspace) -> tuple[dict[str, Route], bool]:
    """(the routes, whether the playbooks were parsed for them)."""
    source = KeptRoutes(ws)
    return source.routes(), source.parsed


def _files(ws: Workspace) -> list[Path]:
    return sorted(packcache.packs_dir(ws.root).glob("playbooks-*.json"))


def test_a_hit_gives_what_a_load_gives(ws: Workspace) -> None:
    loaded = routes_of(load_playbooks(ws))
    assert _files(ws) == []
    assert _kept(ws) == (loaded, True)  # a miss: parsed, then kept
    assert _kept(ws) == (loaded, False)  # a hit
    assert {"mine", "secret-in-prompt", "customer-pii-to-vendor"} <= set(loaded)
    [path] = _files(ws)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.fixture(scope="module")
def kept_and_loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Route], dict]:
    ws = Workspace.init(tmp_path_factory.mktemp("kept") / "ws")
    KeptRoutes(ws).routes()
    source = KeptRoutes(ws)
    kept = source.routes()
    assert not source.parsed
    return kept, load_playbooks(ws)


_GLOBS = sorted({g for b in load_playbooks().values() for g in [*b.applies_to.titles,
                                                               *b.applies_to.tags]})
_TEXT = st.one_of(st.sampled_from(_GLOBS).map(lambda g: g.replace("*", "")),
                  st.text(max_size=20))


@settings(max_examples=200, deadline=None, database=None)
@given(_TEXT, st.lists(_TEXT, max_size=3), st.sampled_from([*SEVERITIES, "unknown"]))
def test_kept_routes_choose_as_the_loaded_playbooks_do(
    kept_and_loaded: tuple[dict[str, Route], dict], title: str, tags: list[str], severity: str
) -> None:
    kept, books = kept_and_loaded
    assert kept == routes_of(books) and len(kept) == 5
    by_route = choose(kept, "some-rule", title, tags, severity)
    by_book = choose(books, "some-rule", title, tags, severity)
    assert (by_route.name if by_route else None) == (by_book.name if by_book else None)


def test_an_edited_added_or_removed_playbook_is_a_miss(ws: Workspace) -> None:
    _kept(ws)
    mine = ws.root / "books" / "mine.yml"
    mine.write_text(_mine(priority=7))
    routes, parsed = _kept(ws)
    assert parsed and routes["mine"].priority == 7
    mine.write_text(_mine(priority=8))  # the same size, an old mtime: the content counts
    os.utime(mine, ns=(1, 1))
    routes, parsed = _kept(ws)
    assert parsed and routes["mine"].priority == 8
    assert _kept(ws) == (routes, False)

    (ws.root / "books" / "other.yaml").write_text(_mine("other"))
    routes, parsed = _kept(ws)
    assert parsed and {"mine", "other"} <= set(routes)
    mine.unlink()
    routes, parsed = _kept(ws)
    assert parsed and "mine" not in routes and "other" in routes
    assert routes == routes_of(load_playbooks(ws))


def test_another_playbook_directory_is_a_miss(ws: Workspace) -> None:
    _kept(ws)
    (ws.root / "more").mkdir()
    (ws.root / "more" / "mine.yml").write_text(_mine(priority=3))  # the same file name
    other = _use_dir(ws, "more")
    routes, parsed = _kept(other)
    assert parsed and routes["mine"].priority == 3
    assert len(_files(ws)) == 2  # one per set of directories
    assert _kept(_use_dir(other, "books")) == (_kept(ws)[0], False)


def test_the_shipped_playbooks_alone_are_kept_too(workspace: Workspace) -> None:
    assert _kept(workspace) == (routes_of(load_playbooks(workspace)), True)
    assert _kept(workspace)[1] is False
    (workspace.root / "books").mkdir()  # configured and made later: its files count
    ws = _use_dir(workspace, "books")
    assert _kept(ws)[1] is True
    (ws.root / "books" / "mine.yml").write_text(_mine())
    routes, parsed = _kept(ws)
    assert parsed and "mine" in routes


def test_a_broken_playbook_raises_as_a_load_does_and_is_never_kept(ws: Workspace) -> None:
    _kept(ws)
    (ws.root / "books" / "bad.yml").write_text(BAD.read_text())
    with pytest.raises(PlaybookError) as loaded:
        load_playbooks(ws)
    for _ in range(2):
        with pytest.raises(PlaybookError) as kept:
            KeptRoutes(ws).routes()
        assert (kept.value.message, kept.value.title) == (
            loaded.value.message, loaded.value.title)
        assert "bad.yml:9: unknown step kind 'pager'" in kept.value.message
    [path] = _files(ws)  # the good set's routes only
    key = routecache.routes_key(playbook.playbook_dirs(ws))
    assert json.loads(path.read_text().split("\n", 1)[0])["key"] != key


def test_a_file_edited_during_the_load_is_not_kept(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = playbook.load_playbooks

    def edited_meanwhile(at: Workspace | None = None) -> dict[str, playbook.Playbook]:
        books = real(at)
        (ws.root / "books" / "mine.yml").write_text(_mine(priority=9))
        return books

    monkeypatch.setattr(playbook, "load_playbooks", edited_meanwhile)
    assert _kept(ws)[0]["mine"].priority == 0
    assert _files(ws) == []
    monkeypatch.undo()
    assert _kept(ws) == (routes_of(load_playbooks(ws)), True)
    assert _kept(ws)[0]["mine"].priority == 9


def test_another_reader_version_is_a_miss(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kept(ws)
    monkeypatch.setattr(routecache, "_VERSION", ["another playbook reader"])
    assert _kept(ws)[1] is True


def test_the_key_covers_the_playbook_reader() -> None:
    names = {str(path.relative_to(routecache._PACKAGE)) for path in routecache._CODE}
    assert {"respond/playbook.py", "respond/steps.py", "respond/params.py",
            "respond/yamlsafe.py", "respond/routes.py", "scan/routecache.py",
            "store/incidents.py"} <= names


def _rewrite(path: Path, change: str) -> None:
    """The kept file changed in one way, its body's digest made to fit (but for "body
    edited": valid JSON, not the body the header's digest is of)."""
    header, body = path.read_text().split("\n", 1)
    meta, data = json.loads(header), json.loads(body)
    if change == "other key":
        meta["key"] = "0" * 64
    elif change == "other format":
        meta["format"] = packcache.FORMAT + 1
    elif change == "a problem":
        data["problems"] = [{"path": "x.yml", "line": 1, "message": "m", "column": None,
                             "baseline": False}]
    elif change in ("wrong type", "body edited"):
        data["items"][0]["priority"] = "7" if change == "wrong type" else 7
    elif change == "unknown severity":
        data["items"][0]["min_severity"] = "severe"
    elif change == "a name twice":
        data["items"].append(data["items"][0])
    body = json.dumps(data)
    if change != "body edited":
        meta["sha256"] = hashlib.sha256(body.encode()).hexdigest()
    path.write_text(json.dumps(meta) + "\n" + body)


@pytest.mark.parametrize(
    "how", ["truncated", "empty", "binary", "foreign", "deep", "directory", "body edited",
            "other key", "other format", "a problem", "wrong type", "unknown severity",
            "a name twice"],
)
def test_a_damaged_kept_file_is_a_silent_miss(ws: Workspace, how: str) -> None:
    loaded = routes_of(load_playbooks(ws))
    _kept(ws)
    [path] = _files(ws)
    if how in ("truncated", "empty", "binary", "foreign", "deep", "directory"):
        _damage(path, how)  # as the rule pack's tests damage theirs
    else:
        _rewrite(path, how)
    assert _kept(ws) == (loaded, True)
    assert _kept(ws) == (loaded, how == "directory")  # rewritten whole, unless it cannot be


def test_an_unwritable_state_folder_costs_only_a_parse(ws: Workspace) -> None:
    packs = packcache.packs_dir(ws.root)
    packs.parent.mkdir(parents=True, exist_ok=True)
    packs.write_text("not a folder")
    assert _kept(ws) == (routes_of(load_playbooks(ws)), True)
    assert _kept(ws)[1] is True


def test_keeping_a_rule_pack_leaves_the_routes(ws: Workspace) -> None:
    _kept(ws)
    packs = packcache.packs_dir(ws.root)
    (packs / "stale-layout.json").write_text("{}")
    packcache.write(packs / "rules-0123.json", "key", [], [])  # prunes the other files
    assert sorted(p.name for p in packs.glob("*.json")) == [_files(ws)[0].name,
                                                             "rules-0123.json"]
    assert _kept(ws)[1] is False

