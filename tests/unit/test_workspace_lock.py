"""`workspace_lock`: the one lock helper ingest and scan serialise on."""

from __future__ import annotations

import threading
import time

import pytest

from sentinel.ingest.batches import ingest_lock
from sentinel.scan.runner import scan_lock
from sentinel.workspace import Workspace, workspace_lock


def _acquired_while_held(ws: Workspace, outer: str, inner: str) -> bool:
    """Whether a second holder of `inner` gets in while `outer` is held (a thread, its own fd)."""
    got = threading.Event()

    def take() -> None:
        with workspace_lock(ws, inner):
            got.set()

    with workspace_lock(ws, outer):
        thread = threading.Thread(target=take)
        thread.start()
        blocked = not got.wait(0.3)
    thread.join(5)
    assert got.is_set()  # released, the waiter always gets it
    return not blocked


def test_same_name_waits_for_the_holder(workspace: Workspace) -> None:
    assert not _acquired_while_held(workspace, "scan", "scan")
    assert (workspace.root / "lake" / ".scan.lock").stat().st_mode & 0o777 == 0o600


def test_different_names_do_not_block_each_other(workspace: Workspace) -> None:
    assert _acquired_while_held(workspace, "scan", "ingest")


def test_ingest_and_scan_locks_are_the_workspace_locks(workspace: Workspace) -> None:
    order: list[str] = []

    def later(lock: object, label: str) -> threading.Thread:
        def run() -> None:
            with lock:  # type: ignore[attr-defined]
                order.append(label)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    with workspace_lock(workspace, "ingest"), workspace_lock(workspace, "scan"):
        threads = [later(ingest_lock(workspace), "ingest"), later(scan_lock(workspace), "scan")]
        time.sleep(0.2)
        order.append("released")
    for thread in threads:
        thread.join(5)
    assert order[0] == "released" and sorted(order[1:]) == ["ingest", "scan"]


def test_a_lock_name_is_a_plain_word(workspace: Workspace) -> None:
    with pytest.raises(ValueError, match="plain word"), workspace_lock(workspace, "../x"):
        pass
