"""`workspace_lock`: the one lock helper ingest and scan serialise on."""

from __future__ import annotations

import os
import threading
import time

import pytest

from sentinel.ingest.batches import ingest_lock
from sentinel.scan.runner import scan_lock
from sentinel.workspace import LockFile, Workspace, workspace_lock


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


def _blocks(outer: object, inner: object) -> bool:
    """Whether taking `inner` (in a thread) waits while `outer` is held."""
    got = threading.Event()

    def take() -> None:
        with inner:  # type: ignore[attr-defined]
            got.set()

    with outer:  # type: ignore[attr-defined]
        thread = threading.Thread(target=take)
        thread.start()
        blocked = not got.wait(0.3)
    thread.join(5)
    assert got.is_set()
    return blocked


def test_scans_of_different_rule_classes_do_not_wait_for_each_other(
    workspace: Workspace,
) -> None:
    def per_event() -> object:
        return scan_lock(workspace, per_event=True, lookback=False)

    def lookback() -> object:
        return scan_lock(workspace, per_event=False, lookback=True)

    # The watcher's per-event scans run beside a long correlation scan…
    assert not _blocks(lookback(), per_event())
    assert not _blocks(per_event(), lookback())
    # …while two scans of one class, or a whole `sentinel scan`, wait their turn.
    assert _blocks(per_event(), per_event())
    assert _blocks(lookback(), lookback())
    assert _blocks(lookback(), scan_lock(workspace))
    assert _blocks(scan_lock(workspace), per_event())


def test_without_waiting_a_held_lock_is_refused_at_once(workspace: Workspace) -> None:
    got: list[bool] = []

    def probe() -> None:
        with workspace_lock(workspace, "ingest", wait=False) as locked:
            got.append(locked)

    with workspace_lock(workspace, "ingest") as locked:
        assert locked
        thread = threading.Thread(target=probe)
        thread.start()
        thread.join(5)
    probe()
    assert got == [False, True]


def test_the_daemon_lock_is_a_lock_file_with_its_holder(workspace: Workspace) -> None:
    lock = LockFile(workspace.root / "daemon.lock")
    assert lock.holder() is None
    assert lock.acquire(wait=False)
    lock.write_holder()
    other = LockFile(lock.path)
    assert not other.acquire(wait=False)
    assert other.holder() == os.getpid()
    lock.release()
    assert other.holder() is None and other.acquire(wait=False)
    other.release()
