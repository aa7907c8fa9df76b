"""`sentinel sql`: DuckDB SQL over the lake views, one query or an interactive prompt.

The command only reads: it opens the lake through `lake.query.open_lake` (views over the
committed Parquet files, file access limited to the lake, COPY/ATTACH/INSTALL/LOAD
refused), so it can run beside the daemon and never changes the lake. Results go through
`output.emit`, which masks PII unless `--reveal --reason` is given (and audited).

Without QUERY it reads statements from a prompt (`sentinel> `, a statement ends at `;`,
history in `<workspace>/logs/sql_history`, mode 0600 because queries quote PII), or from
stdin when stdin is not a terminal; an error is printed and the next statement runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from sentinel.exceptions import SentinelError
from sentinel.lake.query import open_lake, refresh_views, run_query
from sentinel.output import DEFAULT_TABLE_LIMIT, Reveal, check_reveal, emit, output_options
from sentinel.output import printable as _printable
from sentinel.workspace import Workspace

PROMPT = "sentinel> "
CONTINUATION = "     ...> "
HISTORY_LENGTH = 1000
META_HELP = """\
.tables          list the views (events, findings, one per source)
.schema [VIEW]   columns and types of one view, or of every view
.quit / .exit    leave (Ctrl-D too); Ctrl-C cancels the statement being typed"""


class SqlSession:
    """One lake connection and the output settings every statement of a session uses."""

    def __init__(
        self,
        ws: Workspace,
        *,
        fmt: str,
        output: Path | None,
        limit: int | None,
        reason: str | None,
        quiet: bool,
    ) -> None:
        self.ws = ws
        self.fmt = fmt
        self.output = output
        if limit is None and fmt == "table":
            limit = DEFAULT_TABLE_LIMIT
        self.limit = limit
        self.reason = reason
        self.quiet = quiet
        self.con = open_lake(ws)

    def run(self, query: str, *, refresh: bool = False) -> None:
        if refresh:  # a long session sees sources committed since it started
            refresh_views(self.con, self.ws)
        result = run_query(self.con, query, limit=self.limit)
        reveal = None
        if self.reason is not None:
            reveal = Reveal(self.reason, "sql", query, self.ws.state_db)
        emit(
            result.table,
            fmt=self.fmt,
            output=self.output,
            more_rows=result.more_rows,
            reveal=reveal,
        )
        if result.more_rows and self.fmt != "table" and not self.quiet:
            click.echo(f"… {result.more_rows} more rows not written (--limit)", err=True)

    def views(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_type = 'VIEW' AND table_name NOT LIKE '\\_sentinel%' ESCAPE '\\' "
            "ORDER BY table_name"
        ).fetchall()
        return [row[0] for row in rows]

    def schema(self, view: str) -> list[tuple[str, str]]:
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [view],
        ).fetchall()
        return [(row[0], row[1]) for row in rows]


@click.command("sql")
@click.argument("query", required=False)
@output_options
@click.pass_context
def sql(
    ctx: click.Context,
    query: str | None,
    fmt: str,
    output: Path | None,
    limit: int | None,
    reveal: bool,
    reason: str | None,
) -> None:
    """Query the event lake with DuckDB SQL (read-only; PII masked unless --reveal).

    Views: events, findings (one row per PII finding) and one per source (litellm,
    bedrock, cloudtrail, openai_audit, …). Without QUERY, opens a prompt (statements end
    with `;`; .tables, .schema, .quit), or reads statements from stdin when piped.

    Example: sentinel sql "SELECT actor_user, count(*) FROM findings GROUP BY 1"
    """
    revealed = check_reveal(reveal, reason)
    ws = Workspace.open(ctx.obj["workspace"])
    if output is not None:
        _check_output_path(ws, output)
        if query is None:
            raise click.UsageError("--output needs a QUERY (one result per file)")
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    quiet = bool(ctx.obj.get("quiet"))
    session = SqlSession(ws, fmt=fmt, output=output, limit=limit, reason=revealed, quiet=quiet)
    try:
        if query is not None:
            session.run(query)
        elif sys.stdin.isatty():
            _interactive(session)
        elif run_statements(session, _stdin_reader(), stdin_mode=True):
            sys.exit(3)
    except BrokenPipeError:  # `sentinel sql … | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)


def run_statements(
    session: SqlSession, read_line: Callable[[bool], str | None], *, stdin_mode: bool
) -> int:
    """Read statements line by line and run each; returns the number that failed."""
    buffer: list[str] = []
    failures = 0
    while True:
        try:
            line = read_line(bool(buffer))
        except KeyboardInterrupt:  # cancel the statement being typed, keep the session
            buffer.clear()
            click.echo()
            continue
        if line is None:
            break
        if not buffer and line.strip().startswith("."):
            if not _meta_command(session, line.strip()):
                break
            continue
        if not buffer and not line.strip():
            continue
        buffer.append(line)
        text = "\n".join(buffer)
        if statement_complete(text):
            buffer.clear()
            failures += _run_one(session, text)
    if stdin_mode and "".join(buffer).strip():  # a last statement without `;`
        failures += _run_one(session, "\n".join(buffer))
    return failures


def statement_complete(text: str) -> bool:
    """Whether `text` ends with a `;` outside quotes and comments."""
    state: str | None = None
    ended = False
    i = 0
    while i < len(text):
        char, pair = text[i], text[i : i + 2]
        if state is None:
            if char in "'\"":
                state, ended = char, False
            elif pair in ("--", "/*"):
                state = pair
                i += 1
            elif char == ";":
                ended = True
            elif not char.isspace():
                ended = False
        elif state in ("'", '"'):
            if char == state:
                state = None
        elif state == "--":
            if char == "\n":
                state = None
        elif pair == "*/":
            state = None
            i += 1
        i += 1
    return ended and state in (None, "--")


def _run_one(session: SqlSession, text: str) -> int:
    try:
        session.run(text, refresh=True)
    except SentinelError as exc:
        click.echo(f"{exc.title}: {exc.message}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 1
    return 0


def _meta_command(session: SqlSession, line: str) -> bool:
    """Run a `.command`; False means leave the session."""
    name, _, arg = line.partition(" ")
    arg = arg.strip().rstrip(";").strip()
    if name in (".quit", ".exit"):
        return False
    if name == ".tables":
        click.echo("  ".join(session.views()))
    elif name == ".schema":
        for view in [arg] if arg else session.views():
            columns = session.schema(view)
            if not columns:
                click.echo(f"Query error: no view named {_printable(view)}", err=True)
                continue
            body = ", ".join(f"{column} {kind}" for column, kind in columns)
            click.echo(_printable(f"{view}({body})"))
    elif name == ".help":
        click.echo(META_HELP)
    else:
        click.echo(f"Unknown command {_printable(name)}; try .help", err=True)
    return True


def _stdin_reader() -> Callable[[bool], str | None]:
    def read_line(_continuation: bool) -> str | None:
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    return read_line


def _interactive(session: SqlSession) -> None:
    history = _load_history(session.ws)
    if not session.quiet:
        click.echo(
            f"sentinel sql on {session.ws.lake_dir} — views: {', '.join(session.views())}. "
            "End statements with ';', .help for commands.",
            err=True,
        )

    def read_line(continuation: bool) -> str | None:
        try:
            return input(CONTINUATION if continuation else PROMPT)
        except EOFError:
            click.echo()
            return None

    try:
        run_statements(session, read_line, stdin_mode=False)
    finally:
        if history is not None:
            _save_history(history)


def _load_history(ws: Workspace) -> Path | None:
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline: the prompt works, unremembered
        return None
    path = ws.logs_dir / "sql_history"
    try:
        ws.logs_dir.mkdir(mode=0o700, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(path, 0o600)
        readline.read_history_file(path)
    except OSError:
        return None
    readline.set_history_length(HISTORY_LENGTH)
    return path


def _save_history(path: Path) -> None:
    import readline

    try:
        readline.write_history_file(path)
        os.chmod(path, 0o600)
    except OSError:
        pass


def _check_output_path(ws: Workspace, output: Path) -> None:
    """Refuse to write a result into the lake or over the workspace's own files."""
    target = output.expanduser().resolve()
    protected = {ws.config_path, ws.root / "secret.key", ws.state_db}
    protected |= {Path(f"{ws.state_db}{suffix}") for suffix in ("-wal", "-shm")}
    if target.is_relative_to(ws.root / "lake") or target in protected:
        raise click.UsageError(f"--output {output} would overwrite workspace data")
