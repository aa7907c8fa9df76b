"""Which files a `[[watch]]` entry names: files, directories, globs, excludes."""

from __future__ import annotations

from pathlib import Path

from sentinel.config import WatchConfig
from sentinel.watch.targets import Target
from sentinel.workspace import Workspace


def names(target: Target, root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in target.list_files())


def test_directory_glob_file_and_exclude(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "logs" / "ws")  # a workspace inside a watched tree
    logs = tmp_path / "logs"
    for name in ("a.log", "b.log.1", "c.tmp", ".hidden", "sub/d.log", "sub/e.json"):
        (logs / name).parent.mkdir(parents=True, exist_ok=True)
        (logs / name).write_text("{}\n")
    directory = Target.of(WatchConfig(path=str(logs), exclude=("*.tmp",)), ws)
    assert directory.kind == "directory"
    assert names(directory, logs) == ["a.log", "b.log.1", "sub/d.log", "sub/e.json"]
    glob = Target.of(WatchConfig(path=f"{logs}/**/*.log"), ws)
    assert (glob.kind, glob.root) == ("glob", logs)
    assert names(glob, logs) == ["a.log", "sub/d.log"]
    single = Target.of(WatchConfig(path=str(logs / "future.log")), ws)
    assert (single.kind, single.root) == ("file", logs)
    assert names(single, logs) == []
    (logs / "future.log").write_text("{}\n")
    assert names(single, logs) == ["future.log"]
    assert not directory.matches(ws.state_db)
