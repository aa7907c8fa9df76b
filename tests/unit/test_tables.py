"""Terminal tables: fitted to the width, shortened around an ellipsis, records when too wide."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel import output, tables

GOLDEN = Path(__file__).parent.parent / "data" / "output"
ARN = "arn:aws:sts::111122223333:assumed-role/bedrock-assistant-role/ecs-task-3c1d5e7f"


def _events() -> pa.Table:
    """A result shaped like `SELECT * FROM events LIMIT 2`: many columns, long values."""
    return pa.table(
        {
            "event_id": ["0052ba3e-0d1d-436a-a920-2beab778ece8", "fbca6e14-5210-4b5a"],
            "ts": pa.array(
                [dt.datetime(2026, 11, 6, 7, 15, tzinfo=dt.UTC)] * 2, pa.timestamp("us", "UTC")
            ),
            "source": ["bedrock", "litellm"],
            "actor_user": [ARN, "olivia@northwind.example"],
            "model": ["anthropic.claude-3-5-sonnet-20240620-v1:0", "gpt-4o"],
            "prompt_tokens": pa.array([470, 12], pa.int64()),
            "prompt_text": ["Summarise these notes from the weekly sync " * 3, "[bold]hi[/]"],
        }
    )


def _render(table: pa.Table, columns: int | None, monkeypatch: pytest.MonkeyPatch) -> str:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    stream = io.StringIO()
    monkeypatch.setattr(output, "_protect", lambda t, r: t)
    output.emit(table, fmt="table", stream=stream)
    return stream.getvalue()


@pytest.mark.parametrize("columns", [80, 200])
def test_snapshot(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _render(_events(), columns, monkeypatch)
    golden = GOLDEN / f"events_{columns}.txt"
    if os.environ.get("SENTINEL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert all(tables.cells(line) <= columns for line in text.splitlines())


def test_wide_result_in_80_columns_is_one_block_per_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = _render(_events(), 80, monkeypatch)
    assert text.count("-[ RECORD ") == 2
    assert "actor_user" in text and "[bold]hi[/]" in text  # headers and data, literally
    assert ARN[-20:] in text  # the end of an ARN (the role/user) survives shortening


def test_piped_output_honours_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    narrow = pa.table({"a": ["x" * 50], "b": ["y" * 50]})
    text = _render(narrow, 60, monkeypatch)
    assert max(tables.cells(line) for line in text.splitlines()) <= 60
    assert "…" in text and "-[ RECORD" not in text  # squeezed, still a grid


def test_no_width_keeps_the_grid_and_cuts_long_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _render(pa.table({"t": ["z" * 500]}), None, monkeypatch)
    assert max(len(line) for line in text.splitlines()) == tables.MAX_CELL_WIDTH


def test_empty_result_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _render(pa.table({"source": pa.array([], pa.string())}), 80, monkeypatch)
    assert text.splitlines()[-1] == "(0 rows)"


def test_wide_characters_count_two_cells() -> None:
    assert tables.cells("日本") == 4
    assert tables.cells(tables.shorten("日本語のテキストです", 7)) <= 7


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("abcdef", 6, "abcdef"),
        ("abcdefgh", 5, "ab…gh"),
        (ARN, 21, "arn:aws:st…k-3c1d5e7f"),
        ("abc", 1, "…"),
        ("abc", 0, ""),
    ],
)
def test_shorten_examples(text: str, width: int, expected: str) -> None:
    assert tables.shorten(text, width) == expected


@given(st.text(max_size=80), st.integers(min_value=0, max_value=90))
def test_shorten_never_exceeds_the_width(text: str, width: int) -> None:
    shortened = tables.shorten(text, width)
    assert tables.cells(shortened) <= width or tables.cells(text) <= width
    if tables.cells(text) <= width:
        assert shortened == text


@given(
    st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=12),
    st.integers(min_value=20, max_value=250),
)
def test_fitted_widths_fit_or_give_way_to_records(natural: list[int], width: int) -> None:
    floors = [min(n, 10) for n in natural]
    widths = tables.fit_widths(natural, floors, width)
    gaps = 2 * (len(natural) - 1)
    if widths is None:
        assert sum(floors) + gaps > width
    else:
        assert sum(widths) + gaps <= width
        assert all(f <= w <= n for f, w, n in zip(floors, widths, natural, strict=True))


@pytest.mark.parametrize("text", ["00\x1f\x00", "\x1b[31mred", "a\x00b\x00c\x00d"])
def test_shorten_with_control_characters_stays_within_the_width(text: str) -> None:
    for width in range(0, 6):
        assert tables.cells(tables.shorten(text, width)) <= width


@given(st.text(max_size=40) | st.text(st.characters(max_codepoint=0x7F), max_size=40))
def test_cells_agrees_with_wcwidth(text: str) -> None:
    """Printable ASCII is counted without wcwidth; the count is what wcwidth says."""
    from wcwidth import wcswidth, wcwidth

    width = wcswidth(text)
    expected = width if width >= 0 else sum(max(wcwidth(c), 0) for c in text)
    assert tables.cells(text) == expected


def test_an_ascii_table_is_laid_out_without_wcwidth() -> None:
    code = (
        "import sys, io, pyarrow as pa\n"
        "from sentinel.output import emit\n"
        "stream = io.StringIO()\n"
        "emit(pa.table({'level': ['high'], 'group_key': ['actor_key=key-1']}), stream=stream)\n"
        "print(stream.getvalue(), 'wcwidth' in sys.modules)\n"
        "emit(pa.table({'t': ['日本']}), stream=stream)\n"
        "print('wcwidth' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "level", "group_key", "-----", "---------------", "high", "actor_key=key-1", "False",
        "True",
    ]  # fmt: skip
