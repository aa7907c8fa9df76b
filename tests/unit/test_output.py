"""Result output: each format, values shown as data (never markup), masking and reveal."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import sqlite3
import stat
import sys
from pathlib import Path
from unittest import mock

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentinel import output
from sentinel.cli.options import check_reveal
from sentinel.output import OutputError, Reveal, emit
from sentinel.workspace import Workspace

MARKUP = "[bold red]x[/]"
ANSI = "\x1b[31mred\x1b[0m"
BIDI = "abc\u202edef"


class Terminal(io.StringIO):
    """A StringIO that says it is a terminal, so rich renders its table."""

    def isatty(self) -> bool:
        return True


@pytest.fixture()
def table() -> pa.Table:
    return pa.table(
        {
            "n": pa.array([1, 2], pa.int64()),
            "ts": pa.array(
                [dt.datetime(2025, 1, 24, 9, 0, tzinfo=dt.UTC), None],
                pa.timestamp("us", tz="UTC"),
            ),
            "prompt": [MARKUP, ANSI],
            "types": [["email"], []],
            "note": [BIDI, "line1\nline2"],
        }
    )


def render(
    table: pa.Table,
    fmt: str,
    stream: io.StringIO | None = None,
    *,
    masked: bool = False,
    **kw: object,
) -> str:
    """`emit` into a string; format tests see values unmasked unless `masked`."""
    stream = stream if stream is not None else io.StringIO()
    with contextlib.ExitStack() as stack:
        if not masked:
            stack.enter_context(mock.patch.object(output, "_protect", lambda t, r: t))
        emit(table, fmt=fmt, stream=stream, **kw)  # type: ignore[arg-type]
    return stream.getvalue()


def test_plain_table_is_aligned_text(table: pa.Table) -> None:
    text = render(table, "table")
    lines = text.splitlines()
    assert lines[0].split() == ["n", "ts", "prompt", "types", "note"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert "2025-01-24T09:00:00+00:00" in lines[2]
    assert "NULL" in lines[3]
    assert "\x1b" not in text


def test_plain_table_shows_markup_and_escapes_literally(table: pa.Table) -> None:
    text = render(table, "table")
    assert MARKUP in text
    assert "\\x1b[31mred\\x1b[0m" in text
    assert "abc\\u202edef" in text
    assert "line1\\nline2" in text
    assert "\u202e" not in text and "\x1b" not in text


def test_rich_table_renders_values_as_text_not_markup(table: pa.Table) -> None:
    text = render(table, "table", Terminal())
    assert MARKUP in text  # not turned into bold red
    assert "\x1b[31m" not in text  # the data's own escape is not passed through
    assert "\\x1b[31mred" in text
    assert "\u202e" not in text


def test_more_rows_line(table: pa.Table) -> None:
    assert render(table, "table", more_rows=42).splitlines()[-1].startswith("… 42 more rows")
    assert "… 1 more row " in render(table, "table", Terminal(), more_rows=1)


def test_csv_keeps_values_exact(table: pa.Table) -> None:
    parsed = list(csv.reader(io.StringIO(render(table, "csv"))))
    assert parsed[0] == ["n", "ts", "prompt", "types", "note"]
    assert parsed[1] == ["1", "2025-01-24T09:00:00+00:00", MARKUP, '["email"]', BIDI]
    assert parsed[2] == ["2", "", ANSI, "[]", "line1\nline2"]


def test_csv_defuses_spreadsheet_formulas() -> None:
    cells = ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "a=b"]
    table = pa.table({"text": cells, "n": pa.array([-1] * len(cells), pa.int64())})
    parsed = list(csv.reader(io.StringIO(render(table, "csv"))))
    assert [row[0] for row in parsed[1:]] == ["'" + c for c in cells[:-1]] + ["a=b"]
    assert {row[1] for row in parsed[1:]} == {"-1"}  # numbers are numbers
    assert json.loads(render(table, "json").splitlines()[0])["text"] == cells[0]  # exact


def test_a_column_masking_cannot_walk_prints_nothing() -> None:
    union = pa.UnionArray.from_sparse(pa.array([0], pa.int8()), [pa.array(["jane@example.org"])])
    stream = io.StringIO()
    with pytest.raises(OutputError, match="cannot mask"):
        emit(pa.table({"u": union}), fmt="json", stream=stream)
    assert stream.getvalue() == ""


def test_json_lines_are_escaped_and_exact(table: pa.Table) -> None:
    text = render(table, "json")
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\u001b[31m" in text and "\\u202e" in text
    lines = text.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first == {
        "n": 1,
        "ts": "2025-01-24T09:00:00+00:00",
        "prompt": MARKUP,
        "types": ["email"],
        "note": BIDI,
    }
    assert second["ts"] is None and second["prompt"] == ANSI


def test_json_handles_nested_and_special_values() -> None:
    special = pa.table(
        {
            "f": [float("nan")],
            "s": pa.array([{"a": 1, "b": "x"}]),
            "b": pa.array([b"\x00\xff"], pa.binary()),
            "d": pa.array([dt.date(2025, 1, 1)]),
        }
    )
    row = json.loads(render(special, "json"))
    assert row == {"f": "nan", "s": {"a": 1, "b": "x"}, "b": "00ff", "d": "2025-01-01"}


def test_parquet_needs_a_file(table: pa.Table) -> None:
    with pytest.raises(OutputError, match="--output"):
        render(table, "parquet")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json", "table"])
def test_output_file_is_owner_only(table: pa.Table, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"out.{fmt}"
    target.write_text("stale-content")
    target.chmod(0o644)
    with mock.patch.object(output, "_protect", lambda t, r: t):
        emit(table, fmt=fmt, output=target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    if fmt == "parquet":
        assert pq.read_table(target).equals(table)
    else:
        assert "stale-content" not in target.read_text()


def test_unknown_format(table: pa.Table) -> None:
    with pytest.raises(OutputError, match="unknown format"):
        render(table, "xml")


def test_check_reveal() -> None:
    assert check_reveal(False, None) is None
    assert check_reveal(True, " incident 42 ") == "incident 42"
    for reason in (None, "  "):
        with pytest.raises(click.UsageError, match="--reason"):
            check_reveal(True, reason)


class TestMasking:
    def test_reveal_is_audited_before_printing(self, tmp_path: Path, table: pa.Table) -> None:
        ws = Workspace.init(tmp_path / "ws")
        reveal = Reveal("case 7", "sql", "SELECT prompt FROM events", ws.state_db)
        text = render(table, "json", masked=True, reveal=reveal)
        assert MARKUP in json.loads(text.splitlines()[0])["prompt"]
        con = sqlite3.connect(ws.state_db)
        action, detail = con.execute("SELECT action, detail FROM audit").fetchone()
        assert action == "reveal"
        assert json.loads(detail) == {
            "command": "sql",
            "query": "SELECT prompt FROM events",
            "reason": "case 7",
            "rows": 2,
        }

    def test_without_masking_nothing_is_printed(
        self, monkeypatch: pytest.MonkeyPatch, table: pa.Table
    ) -> None:
        monkeypatch.setitem(sys.modules, "sentinel.pii.masking", None)
        stream = io.StringIO()
        with pytest.raises(OutputError, match="mask"):
            emit(table, fmt="csv", stream=stream)
        assert stream.getvalue() == ""

    def test_without_a_library_masking_loads_late_nothing_is_printed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """phonenumbers loads on the first phone-like value: missing, the output fails closed."""
        monkeypatch.setitem(sys.modules, "phonenumbers", None)
        stream = io.StringIO()
        phone = pa.table({"note": ["ok", "call +44 20 7946 0958"]})
        with pytest.raises(OutputError, match=r"cannot mask the result \(phonenumbers is missing"):
            emit(phone, fmt="json", stream=stream)
        assert stream.getvalue() == ""

    def test_results_go_through_mask_table(self, table: pa.Table) -> None:
        masking = pytest.importorskip("sentinel.pii.masking")
        expected = render(masking.mask_table(table), "json")
        assert render(table, "json", masked=True) == expected
