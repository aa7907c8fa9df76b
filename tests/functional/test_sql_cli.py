"""`sentinel sql` through the real CLI on a workspace with hand-written lake files."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sentinel.workspace import Workspace
from tests.unit.lake.lakefiles import event, with_email, write_events

SENTINEL = Path(sys.executable).with_name("sentinel")
REVEAL = ("--reveal", "--reason", "functional test")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture()
def lake(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    write_events(ws.lake_dir, [event(i, prompt_text=f"ticket {i}") for i in range(3)])
    write_events(
        ws.lake_dir,
        [
            with_email(event(i, source="bedrock", prompt_text="mail bob@example.com"))
            for i in range(2)
        ],
        source="bedrock",
    )
    return ws


@pytest.fixture()
def sql(lake: Workspace) -> Run:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SENTINEL), "--workspace", str(lake.root), "sql", *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
            env={**os.environ, "COLUMNS": "200"},
        )

    return run


def audit_rows(ws: Workspace) -> list[dict]:  # type: ignore[type-arg]
    con = sqlite3.connect(ws.state_db)
    rows = con.execute("SELECT detail FROM audit WHERE action = 'reveal' ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def test_table_output(sql: Run) -> None:
    done = sql("SELECT event_id, source FROM events ORDER BY event_id", *REVEAL)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["event_id", "source"]
    assert [line.split()[0] for line in lines[2:]] == [
        "bedrock-0000",
        "bedrock-0001",
        "litellm-0000",
        "litellm-0001",
        "litellm-0002",
    ]


def test_table_limit_line(sql: Run) -> None:
    done = sql("SELECT * FROM range(250)", "--limit", "5", *REVEAL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("… 245 more rows")


def test_csv_output(sql: Run) -> None:
    done = sql("SELECT event_id, ts, pii_types FROM bedrock ORDER BY 1", "--format", "csv", *REVEAL)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert rows[0] == {
        "event_id": "bedrock-0000",
        "ts": "2025-01-24T09:00:00+00:00",
        "pii_types": '["email"]',
    }


def test_json_output_and_reveal_audit(sql: Run, lake: Workspace) -> None:
    query = "SELECT event_id, prompt_text FROM findings JOIN events USING (event_id) ORDER BY 1"
    done = sql(query, "--format", "json", *REVEAL)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[0] == {"event_id": "bedrock-0000", "prompt_text": "mail bob@example.com"}
    assert audit_rows(lake) == [
        {"command": "sql", "query": query, "reason": "functional test", "rows": 2}
    ]


def test_parquet_output(sql: Run, tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    done = sql("SELECT * FROM litellm", "--format", "parquet", "--output", str(target), *REVEAL)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert pq.read_table(target).num_rows == 3
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_parquet_to_stdout_is_a_usage_error(sql: Run) -> None:
    done = sql("SELECT 1", "--format", "parquet", *REVEAL)
    assert done.returncode == 2
    assert "--output" in done.stderr


def test_output_into_the_lake_is_refused(sql: Run, lake: Workspace) -> None:
    target = lake.lake_dir / "source=litellm" / "date=2025-01-24" / "evil.parquet"
    done = sql("SELECT 1", "--format", "parquet", "--output", str(target), *REVEAL)
    assert done.returncode == 2
    assert not target.exists()


def test_query_error_is_one_line_exit_3(sql: Run) -> None:
    done = sql("SELECT * FROM foo", *REVEAL)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        "Query error: Catalog Error: Table with name foo does not exist! Did you mean"
    )
    assert done.stdout == ""


def test_writing_statements_are_refused(sql: Run, lake: Workspace) -> None:
    done = sql(f"COPY events TO '{lake.root}/dump.csv'", *REVEAL)
    assert done.returncode == 3
    assert "not allowed" in done.stderr
    assert not (lake.root / "dump.csv").exists()


def test_reveal_without_reason_is_a_usage_error(sql: Run, lake: Workspace) -> None:
    done = sql("SELECT prompt_text FROM events", "--reveal")
    assert done.returncode == 2
    assert "--reason" in done.stderr
    assert done.stdout == ""
    assert audit_rows(lake) == []


def test_statements_from_stdin(sql: Run) -> None:
    script = "\n".join(
        [
            ".tables",
            "SELECT count(*) AS n",
            "  FROM events;",
            "SELECT * FROM nope;",
            ".schema findings",
            "SELECT 'a;b' AS s; -- a comment",
            "SELECT 42 AS answer",
        ]
    )
    done = sql("--format", "csv", *REVEAL, stdin=script)
    assert done.returncode == 3  # one statement failed; the others still ran
    out = done.stdout.splitlines()
    assert "bedrock" in out[0] and "events" in out[0] and "findings" in out[0]
    assert out[1:3] == ["n", "5"]
    assert out[3].startswith("findings(event_id VARCHAR")
    assert out[4:] == ["s", "a;b", "answer", "42"]
    assert done.stderr.count("Query error: Catalog Error") == 1
    assert "Traceback" not in done.stderr


def test_stdin_without_errors_exits_0(sql: Run) -> None:
    done = sql(*REVEAL, stdin="SELECT 1 AS one;\n.quit\nSELECT 2;\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["one", "---", "1"]


def test_masked_by_default(sql: Run) -> None:
    pytest.importorskip("sentinel.pii.masking")
    done = sql("SELECT prompt_text FROM bedrock", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "bob@example.com" not in done.stdout


def test_interactive_prompt_on_a_terminal(lake: Workspace) -> None:
    pty = pytest.importorskip("pty")
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the real CLI with a terminal on stdin/stdout
        os.execv(str(SENTINEL), ["sentinel", "-w", str(lake.root), "-q", "sql", *REVEAL])

    def read_until(marker: str, timeout: float = 30) -> str:
        seen, deadline = "", time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 4096).decode(errors="replace")
                except OSError:
                    break
        return seen

    assert "sentinel> " in read_until("sentinel> ")
    os.write(fd, b"SELECT count(*) AS n\n")
    assert "...> " in read_until("...> ")
    os.write(fd, b"FROM events;\n")
    shown = read_until("sentinel> ")
    assert "n\r\n-\r\n5\r\n" in shown  # the fitted table: header, rule, value
    os.write(fd, b"SELECT * FROM nope;\n")
    assert "Query error: Catalog Error" in read_until("sentinel> ")
    os.write(fd, b"\x04")  # Ctrl-D leaves
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    history = lake.logs_dir / "sql_history"
    assert "FROM events;" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600


def test_several_statements_print_in_order(sql: Run) -> None:
    done = sql("SELECT 1 AS one; SELECT 2 AS two", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["one", "1", "two", "2"]


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("out.csv", lambda text: text.splitlines()[0] == "n"),
        ("out.jsonl", lambda text: json.loads(text.splitlines()[0]) == {"n": 5}),
    ],
)
def test_output_format_follows_the_extension(
    sql: Run, tmp_path: Path, name: str, check: Callable[[str], bool]
) -> None:
    target = tmp_path / name
    done = sql("SELECT count(*) AS n FROM events", "--output", str(target))
    assert done.returncode == 0, done.stderr
    assert check(target.read_text())


def test_output_parquet_by_extension(sql: Run, tmp_path: Path) -> None:
    target = tmp_path / "x.parquet"
    done = sql("SELECT count(*) AS n FROM events", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert pq.read_table(target).to_pylist() == [{"n": 5}]


def test_output_format_mismatch_is_refused(sql: Run, tmp_path: Path) -> None:
    target = tmp_path / "x.parquet"
    done = sql("SELECT 1", "--format", "csv", "--output", str(target))
    assert done.returncode == 2
    assert "does not match" in done.stderr
    assert not target.exists()


def test_output_is_not_overwritten_without_force(sql: Run, tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    target.write_text("keep me")
    done = sql("SELECT 1 AS a", "--output", str(target))
    assert done.returncode == 2
    assert "--force" in done.stderr
    assert target.read_text() == "keep me"
    done = sql("SELECT 1 AS a", "--output", str(target), "--force")
    assert done.returncode == 0, done.stderr
    assert target.read_text().splitlines() == ["a", "1"]


def test_reveal_audit_stores_the_query_and_reason_masked(sql: Run, lake: Workspace) -> None:
    query = "SELECT count(*) AS n FROM events WHERE prompt_text LIKE '%bob@example.com%'"
    done = sql(query, "--reveal", "--reason", "asked by carol@example.org")
    assert done.returncode == 0, done.stderr
    [detail] = audit_rows(lake)
    assert "bob@example.com" not in detail["query"] and "b***@example.com" in detail["query"]
    assert "carol@example.org" not in detail["reason"]
    assert "bob@example.com" not in lake.state_db.read_bytes().decode("latin-1")


def test_masked_query_sees_masked_text(sql: Run) -> None:
    done = sql("SELECT replace(prompt_text, '@', ' at ') AS p FROM bedrock", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "bob" not in done.stdout and "b*** at example.com" in done.stdout


def test_a_corrupt_lake_file_is_reported_and_skipped(sql: Run, lake: Workspace) -> None:
    bad = lake.lake_dir / "source=litellm" / "date=2025-01-24" / "broken.parquet"
    bad.write_bytes(b"not parquet at all")
    done = sql("SELECT count(*) AS n FROM events", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["n", "5"]
    assert "Lake file skipped: source=litellm/date=2025-01-24/broken.parquet" in done.stderr


def test_history_is_saved_masked(lake: Workspace) -> None:
    readline = pytest.importorskip("readline")
    from sentinel.cli.sql import _save_history
    from sentinel.lake.privacy import Masker

    path = lake.logs_dir / "sql_history"
    readline.clear_history()
    readline.add_history("SELECT * FROM events WHERE prompt_text LIKE '%4111 1111 1111 1111%';")
    readline.add_history("SELECT 1;")
    _save_history(path, Masker.for_workspace(lake).mask_text)
    saved = path.read_text()
    assert "4111 1111 1111 1111" not in saved and "card ****1111" in saved
    assert "SELECT 1;" in saved
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    readline.clear_history()
