"""`Workspace.owns`: the one rule for what neither ingest nor `--output` may touch."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.workspace import Workspace


@pytest.mark.parametrize(
    "relative",
    [
        "lake/events/source=litellm/date=2025-01-24/b.parquet",
        "lake/.staging/x.parquet",
        "quarantine/q.jsonl",
        "logs/sql_history",
        "sentinel.toml",
        "secret.key",
        "state.db",
        "state.db-wal",
        "state.db-shm",
    ],
)
def test_workspace_data_is_owned(workspace: Workspace, relative: str) -> None:
    assert workspace.owns(workspace.root / relative)


def test_other_paths_are_not_owned(workspace: Workspace, tmp_path: Path) -> None:
    assert not workspace.owns(tmp_path / "out.csv")
    assert not workspace.owns(workspace.root / "demo-logs" / "litellm.jsonl")


def test_a_symlink_into_the_workspace_is_owned(workspace: Workspace, tmp_path: Path) -> None:
    link = tmp_path / "innocent.csv"
    link.symlink_to(workspace.root / "secret.key")
    assert workspace.owns(link)
