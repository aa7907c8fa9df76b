"""The playbook cache: parsed once while the files stay, again as soon as one changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sentinel.respond.books import Playbooks
from sentinel.respond.playbook import PlaybookError, load_playbooks
from sentinel.workspace import Workspace

SHIPPED = Path(__file__).parents[3] / "playbooks"
BAD = Path(__file__).parents[3] / "tests" / "data" / "respond" / "unknown_step_kind.yml"


@pytest.fixture
def books(workspace: Workspace) -> tuple[Workspace, Path]:
    """A workspace with a playbook directory of its own holding one playbook."""
    folder = workspace.root / "books"
    folder.mkdir()
    text = (SHIPPED / "secret-in-prompt.yml").read_text()
    (folder / "mine.yml").write_text(text.replace("name: secret-in-prompt", "name: mine", 1))
    config = workspace.config_path
    config.write_text(config.read_text().replace(
        '# playbooks = "playbooks"', 'playbooks = "books"', 1))
    return Workspace.open(workspace.root), folder


def test_parsed_once_while_nothing_changes(books: tuple[Workspace, Path]) -> None:
    ws, _ = books
    cache = Playbooks(ws, strict=True)
    first = cache.load()
    assert cache.load() == first and cache.load() == load_playbooks(ws)
    assert "mine" in first and cache.parses == 1


def test_an_added_edited_or_removed_file_is_seen_at_the_next_load(
    books: tuple[Workspace, Path],
) -> None:
    ws, folder = books
    cache = Playbooks(ws, strict=True)
    assert cache.load()["mine"].priority == 0

    mine = folder / "mine.yml"
    mine.write_text(mine.read_text().replace("name: mine", "name: mine\npriority: 7", 1))
    assert cache.load()["mine"].priority == 7

    text = mine.read_text()
    mine.write_text(text.replace("priority: 7", "priority: 8"))  # the same size
    os.utime(mine, ns=(1, 1))  # and an old mtime: the inode or mtime still differs
    assert cache.load()["mine"].priority == 8

    (folder / "other.yaml").write_text(text.replace("name: mine", "name: other", 1))
    assert {"mine", "other"} <= set(cache.load())

    mine.unlink()
    assert "mine" not in cache.load() and "other" in cache.load()
    assert cache.parses == 5
    assert cache.load() == load_playbooks(ws)


def test_a_broken_file_raises_until_fixed_when_strict_and_gives_none_otherwise(
    books: tuple[Workspace, Path],
) -> None:
    ws, folder = books
    strict, lenient = Playbooks(ws, strict=True), Playbooks(ws)
    (folder / "bad.yml").write_text(BAD.read_text())
    for _ in range(2):  # raised again without parsing again
        with pytest.raises(PlaybookError, match="bad.yml"):
            strict.load()
        assert lenient.load() == {}
    assert strict.parses == 1 and lenient.parses == 1

    (folder / "bad.yml").unlink()
    assert "mine" in strict.load() and "mine" in lenient.load()


def test_a_copy_is_returned(books: tuple[Workspace, Path]) -> None:
    cache = Playbooks(books[0])
    cache.load().clear()
    assert "mine" in cache.load()


def test_the_routes_follow_the_cache(books: tuple[Workspace, Path]) -> None:
    from sentinel.respond.playbook import routes_of

    ws, folder = books
    strict = Playbooks(ws, strict=True)
    assert strict.routes() == routes_of(load_playbooks(ws)) and "mine" in strict.routes()
    (folder / "bad.yml").write_text(BAD.read_text())
    with pytest.raises(PlaybookError, match="bad.yml"):
        strict.routes()
    assert Playbooks(ws).routes() == {}  # lenient: no playbooks, as `load` gives
    assert strict.parses == 2
