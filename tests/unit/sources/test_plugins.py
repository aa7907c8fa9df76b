"""A third-party source plugin that fails to load: one warning naming it, built-ins intact."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.sources import registry


def install_plugin(root: Path, dist: str, module: str, code: str, target: str) -> None:
    """A minimal installed distribution on `root` whose entry point names `target`."""
    (root / f"{module}.py").write_text(code)
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{target}\n")


@pytest.fixture()
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._builtin_sources.cache_clear()
    yield tmp_path
    registry._builtin_sources.cache_clear()
    for name in ("broken_vendor_source", "odd_vendor_source"):
        sys.modules.pop(name, None)


def test_a_plugin_whose_import_raises_is_one_warning_and_the_builtins_work(
    plugins: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_plugin(
        plugins, "sentinel-source-broken", "broken_vendor_source",
        "raise ImportError('needs libfoo 2.0')\n", "broken = broken_vendor_source:Source",
    )
    with caplog.at_level(logging.WARNING, logger="sentinel"):
        first = registry.available_sources()
        second = registry.available_sources()
    assert {"litellm", "bedrock", "cloudtrail", "openai_audit"} <= set(first)
    assert "broken" not in first and set(first) == set(second)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "'sentinel-source-broken'" in warnings[0] and "needs libfoo 2.0" in warnings[0]
    assert registry.get_source("litellm").name == "litellm"


def test_a_plugin_that_is_not_a_log_source_is_left_out(
    plugins: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_plugin(
        plugins, "sentinel-source-odd", "odd_vendor_source",
        "Source = 42\n", "odd = odd_vendor_source:Source",
    )
    with caplog.at_level(logging.WARNING, logger="sentinel"):
        sources = registry.available_sources()
    assert "odd" not in sources and "litellm" in sources
    assert "not a LogSource" in caplog.text and "'sentinel-source-odd'" in caplog.text
