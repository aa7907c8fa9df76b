"""User detectors from sentinel.toml: loaded into the scan, bad ones rejected with the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.config import load_config
from sentinel.exceptions import ConfigError
from sentinel.pii.catalog import load_catalog
from sentinel.pii.scanner import scan_events
from tests.unit.pii.conftest import KEY, event_table


def _config(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "sentinel.toml"
    path.write_text(body, encoding="utf-8")
    return load_config(path)


def test_user_detector_is_scanned(tmp_path: Path) -> None:
    config = _config(tmp_path, '[[pii.detectors]]\nname = "employee_id"\n'
                               'pattern = "EMP-[0-9]{6}"\nseverity = "high"\n')
    assert "employee_id" in load_catalog(config).types
    rows = scan_events(event_table(["ticket from EMP-123456 today"]), config, KEY).to_pylist()
    assert rows[0]["pii_types"] == ["employee_id"]


def test_user_detector_with_stdnum_validator(tmp_path: Path) -> None:
    config = _config(tmp_path, '[[pii.detectors]]\nname = "dutch_bsn"\n'
                               'pattern = "\\\\b[0-9]{9}\\\\b"\nvalidator = "stdnum.nl.bsn"\n')
    rows = scan_events(event_table(["bsn 111222333 or 111222334"]), config, KEY).to_pylist()
    assert [f["start"] for f in rows[0]["pii_findings"]] == [4]


@pytest.mark.parametrize(
    ("pattern", "validator", "message"),
    [
        ("EMP-([0-9]", None, "bad regex"),
        ("(?<=x)EMP", None, "bad regex|RE2"),
        ("(a)\\\\1", None, "RE2"),
        ("x*", None, "empty string"),
        ("EMP-[0-9]+", "lunh", "did you mean 'luhn'"),
    ],
)
def test_bad_user_detector_reports_config_line(
    tmp_path: Path, pattern: str, validator: str | None, message: str
) -> None:
    extra = f'validator = "{validator}"\n' if validator else ""
    config = _config(tmp_path, f'# comment\n\n[[pii.detectors]]\nname = "x_id"\n'
                               f'pattern = "{pattern}"\n{extra}')
    with pytest.raises(ConfigError, match=message) as info:
        load_catalog(config)
    assert f"{tmp_path / 'sentinel.toml'}:5" in str(info.value)
