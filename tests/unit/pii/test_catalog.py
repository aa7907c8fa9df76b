"""User detectors from sentinel.toml: loaded into the scan, bad ones rejected with the line."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import re2

from sentinel.config import load_config
from sentinel.exceptions import ConfigError
from sentinel.pii.catalog import load_catalog
from sentinel.pii.engine import find
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
        ("(?<=x)EMP", None, "bad regex for RE2"),
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
    assert "detector 'x_id'" in str(info.value)


def _user_detector_index(config) -> int:  # type: ignore[no-untyped-def]
    catalog = load_catalog(config)
    return next(i for i, d in enumerate(catalog.detectors) if d.re2_only)


def test_user_pattern_runs_in_re2_even_on_short_texts(tmp_path: Path, extraction: str) -> None:
    """`(a+)+b` backtracks exponentially in Python's `re` (33 s on 35 bytes); RE2 is linear."""
    config = _config(tmp_path, '[[pii.detectors]]\nname = "ab"\npattern = "(a+)+b"\n')
    catalog = load_catalog(config)
    index = _user_detector_index(config)
    assert isinstance(catalog.compiled[index], re2._Regexp)
    assert all(isinstance(c, re2._Regexp) for c, d in
               zip(catalog.compiled, catalog.detectors, strict=True) if d.re2_only)
    hostile = "a" * 34 + "c"  # 35 bytes: no match, every way of splitting the a's tried
    assert len(find(pa.array([hostile, "x aab y"], pa.large_string()), catalog)) == 1


def test_user_pattern_value_group_and_offsets_on_non_ascii_text(
    tmp_path: Path, extraction: str
) -> None:
    config = _config(
        tmp_path, '[[pii.detectors]]\nname = "emp"\npattern = "EMP-(?P<v>[0-9]{6})"\n'
    )
    catalog = load_catalog(config)
    text = "é ß EMP-123456 ok"
    matches = find(pa.array([text], pa.large_string()), catalog)
    assert [(catalog.detectors[d].name, v) for d, v in
            zip(matches.detectors, matches.values, strict=True)] == [("emp", "123456")]
    assert text[matches.starts[0] : matches.ends[0]] == "123456"


def test_user_pattern_rejected_by_re2_names_detector_and_line(tmp_path: Path) -> None:
    config = _config(tmp_path, '[[pii.detectors]]\nname = "big"\npattern = "(a{1000}){1000}"\n')
    with pytest.raises(ConfigError, match=r"sentinel.toml:3: detector 'big': bad regex for RE2"):
        load_catalog(config)
