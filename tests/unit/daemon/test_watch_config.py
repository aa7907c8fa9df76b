"""`[[watch]]` and `[daemon]` in sentinel.toml: parsed strictly, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.config import DaemonConfig, load_config
from sentinel.exceptions import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sentinel.toml"
    path.write_text(text)
    return path


def test_watch_tables_with_every_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
[[watch]]
path = "/var/log/litellm"
source = "litellm"
exclude = ["*.tmp", "*.swp"]
start_at = "end"
poll = true

[[watch]]
path = "/data/s3/**/*.json"

[daemon]
batch_bytes = 1048576
batch_seconds = 0.5
idle_timeout = 3
"""))
    first, second = config.watch
    assert (first.path, first.source, first.exclude, first.start_at, first.poll) == (
        "/var/log/litellm", "litellm", ("*.tmp", "*.swp"), "end", True,
    )
    assert (second.start_at, second.poll, second.exclude) == ("beginning", False, ())
    assert second.line == 9
    assert config.daemon == DaemonConfig(batch_bytes=1048576, batch_seconds=0.5, idle_timeout=3.0)
    assert isinstance(config.daemon.idle_timeout, float)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[watch]]\npath = "/x"\nstart_at = "middle"\n', "start_at must be one of"),
        ('[[watch]]\npath = "/x"\nexclude = "*.tmp"\n', "list of glob patterns"),
        ('[[watch]]\npath = "/x"\npoll = "yes"\n', "'poll' must be bool"),
        ('[[watch]]\npath = "/x"\nexlcude = ["a"]\n', "did you mean 'exclude'"),
        ('[[watch]]\nsource = "litellm"\n', "needs 'path'"),
        ("[daemon]\nidle_timeout = 0\n", "must be a positive number"),
        ("[daemon]\nbatch_bytes = 1.5\n", "'batch_bytes' must be int"),
        ("[daemon]\nbatch_seconds = true\n", "must be a positive number"),
        ("[daemon]\nrescan_intervall = 5\n", "did you mean 'rescan_interval'"),
    ],
)
def test_bad_watch_config_is_rejected_with_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert message in caught.value.message
    assert f"{tmp_path / 'sentinel.toml'}:" in caught.value.message
