"""sentinel.toml: wrong types are one located line each, never a traceback; all are collected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sentinel.config import check_config, load_config
from sentinel.exceptions import ConfigError
from sentinel.pii.catalog import check_config_file
from sentinel.workspace import CONFIG_TEMPLATE


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sentinel.toml"
    path.write_text(body, encoding="utf-8")
    return path


DETECTOR = '[[pii.detectors]]\nname = "emp"\npattern = "EMP-[0-9]+"\n'


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (DETECTOR + "validator = 5\n", 4, "'validator' must be str, got 5"),
        ("[pii]\ndetectors = 5\n", 2, "'detectors' must be an array of [[pii.detectors]]"),
        ("[pii]\ndetectors = [5]\n", 2, "each [[pii.detectors]] entry must be a table, got 5"),
        ('[[pii.detectors]]\nname = 5\npattern = "x+"\n', 2, "'name' must be str, got 5"),
        ('[[pii.detectors]]\nname = "a"\npattern = ["x"]\n', 3,
         "'pattern' must be str, got an array"),
        (DETECTOR + 'severity = "hgh"\n', 4, "(did you mean 'high'?)"),
        (DETECTOR + "severity = 3\n", 4, "'severity' must be str, got 3"),
        (DETECTOR + 'patern = "x"\n', 4, "unknown key 'patern' in [[pii.detectors]] "
         "(did you mean 'pattern'?)"),
        ('[pii]\nscan = "yes"\n', 2, "'scan' must be bool, got \"yes\""),
        ('[privacy]\nstore_text = "masekd"\n', 2, "(did you mean 'masked'?)"),
        ("[[watch]]\npath = 5\n", 2, "'path' must be str, got 5"),
        ('[[watch]]\npath = "/x"\nsource = false\n', 3, "'source' must be str, got false"),
        ("pii = 5\n", 1, "[pii] must be a table"),
        ('[scan]\nmemory_limit = "lots"\n', 2, "'memory_limit' must be a size such as"),
        ("[scan]\nmemory_limit = 1\n", 2, "'memory_limit' must be str, got 1"),
        ("[scan]\nthreads = -1\n", 2, "'threads' must be 0 (one per core) or more"),
        ("[scan]\nmemory = 1\n", 2, "(did you mean 'memory_limit'?)"),
    ],
)
def test_wrong_type_is_one_located_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.location is None or info.value.location.line == line
    assert re.match(rf"{re.escape(str(path))}:{line}(:\d+)?: ", str(info.value))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_every_problem_is_collected_in_file_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[privacy]\nstore_text = "masekd"\n\n[pii]\nprocesses = "two"\n\n'
        '[[pii.detectors]]\nname = "ok"\npattern = "(?<=x)y"\n\n'
        '[[pii.detectors]]\nname = "emp"\npattern = "EMP"\nvalidator = 5\n\n'
        '[[pii.detectors]]\nname = "fine"\npattern = "FINE-[0-9]+"\nvalidator = "lunh"\n',
    )
    _, problems = check_config(path)
    def line(problem: ConfigError) -> int:
        found = re.match(rf"{re.escape(str(path))}:(\d+)", problem.message)
        assert found, problem.message
        return int(found[1])

    assert [line(p) for p in problems] == [2, 5, 14]
    everything = check_config_file(path)
    lines = [line(p) for p in everything]
    assert lines == [2, 5, 9, 14, 18]
    assert "detector 'ok': bad regex for RE2" in everything[2].message
    assert "did you mean 'luhn'" in everything[4].message
    with pytest.raises(ConfigError, match=r"and 2 more problems: `sentinel config check`"):
        load_config(path)


def test_template_and_its_example_detector_are_valid(tmp_path: Path) -> None:
    assert check_config_file(_write(tmp_path, CONFIG_TEMPLATE)) == []
    example = CONFIG_TEMPLATE.replace("# [[pii.detectors]]", "[[pii.detectors]]")
    for key in ("name", "pattern", "severity"):
        example = example.replace(f"# {key} = ", f"{key} = ", 1)
    path = _write(tmp_path, example)
    assert check_config_file(path) == []
    assert [d.name for d in load_config(path).pii.detectors] == ["employee_id"]


def test_scan_resources_are_read(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, '[scan]\nmemory_limit = "512 MB"\nthreads = 1\n'))
    assert (config.scan.memory_limit, config.scan.threads) == ("512MB", 1)
    assert load_config(_write(tmp_path, "")).scan.memory_limit == "1GB"
