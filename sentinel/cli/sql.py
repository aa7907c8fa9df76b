"""`sentinel sql`: DuckDB SQL over the lake views, one query or an interactive prompt.

Everything but parsing, the prompt and printing is `sentinel.lake.session.SqlSession`:
the sandbox (reads only, no file system), views masked before the query sees them
unless `--reveal --reason` (audited), and statements run in order.

Without QUERY it reads statements from a prompt (`sentinel> `, a statement ends at `;`,
history in `<workspace>/logs/sql_history`, stored masked and mode 0600), or from stdin
when stdin is not a terminal; an error is printed and the next statement runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from sentinel.cli.options import check_reveal, output_options, resolve_output
from sentinel.exceptions import SentinelError
from sentinel.lake.session import SqlSession
from sentinel.output import DEFAULT_TABLE_LIMIT, emit
from sentinel.output import printable as _printable
from sentinel.workspace import Workspace

PROMPT = "sentinel> "
CONTINUATION = "     ...> "
HISTORY_LENGTH = 1000
META_HELP = """\
.tables          list the views (events, findings, one per source, alerts, incidents)
.schema [VIEW]   columns and types of one view, or of every view
.quit / .exit    leave (Ctrl-D too); Ctrl-C cancels the statement being typed"""


class Printer:
    """How every statement of one invocation is written."""

    def __init__(
        self, session: SqlSession, fmt: str, output: Path | None, limit: int | None, quiet: bool
    ) -> None:
        self.session = session
        self.fmt = fmt
        self.output = output
        self.limit = DEFAULT_TABLE_LIMIT if limit is None and fmt == "table" else limit
        self.quiet = quiet

    def run(self, query: str, *, refresh: bool = False) -> None:
        if refresh:  # a long session sees batches and sources committed since it started
            self.session.refresh()
            self.report_problems()
        for result in self.session.execute(query):
            table, total = result.collect(self.limit)
            more = total - table.num_rows
            emit(
                table,
                fmt=self.fmt,
                output=self.output,
                more_rows=more,
                reveal=self.session.reveal(result.statement),
                masker=self.session.masker,
            )
            if more and self.fmt != "table" and not self.quiet:
                click.echo(f"… {more} more rows not written (--limit)", err=True)

    def report_problems(self) -> None:
        for problem in self.session.problems:
            click.echo(f"Lake file skipped: {_printable(problem)}", err=True)


@click.command("sql")
@click.argument("query", required=False)
@output_options
@click.pass_context
def sql(
    ctx: click.Context,
    query: str | None,
    fmt: str | None,
    output: Path | None,
    force: bool,
    limit: int | None,
    reveal: bool,
    reason: str | None,
) -> None:
    """Query the event lake with DuckDB SQL (read-only; PII masked unless --reveal).

    Views: events, findings (one row per PII finding), one per source (litellm,
    bedrock, cloudtrail, openai_audit, …), and alerts/incidents when they exist.
    Several statements separated by `;` run in order. Without QUERY, opens a prompt
    (statements end with `;`; .tables, .schema, .quit), or reads stdin when piped.

    Example: sentinel sql "SELECT actor_user, count(*) FROM findings GROUP BY 1"
    """
    revealed = check_reveal(reveal, reason)
    ws = Workspace.open(ctx.obj["workspace"])
    fmt = resolve_output(ws, fmt, output, force)
    if output is not None and query is None:
        raise click.UsageError("--output needs a QUERY (one result per file)")
    quiet = bool(ctx.obj.get("quiet"))
    with SqlSession(ws, reveal_reason=revealed) as session:
        if output is not None and query is not None and len(session_statements(session, query)) > 1:
            raise click.UsageError("--output takes one statement (one result per file)")
        printer = Printer(session, fmt, output, limit, quiet)
        printer.report_problems()
        try:
            if query is not None:
                printer.run(query)
            elif sys.stdin.isatty():
                _interactive(printer)
            elif run_statements(printer, _stdin_reader(), stdin_mode=True):
                sys.exit(3)
        except BrokenPipeError:  # `sentinel sql … | head`: the reader left; not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)


def session_statements(session: SqlSession, query: str) -> list[str]:
    from sentinel.lake import sandbox

    return [s.query for s in sandbox.split(session.con, query)]


def run_statements(
    printer: Printer, read_line: Callable[[bool], str | None], *, stdin_mode: bool
) -> int:
    """Read statements line by line and run each; returns the number that failed."""
    from sentinel.lake.sandbox import statement_complete

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
            if not _meta_command(printer.session, line.strip()):
                break
            continue
        if not buffer and not line.strip():
            continue
        buffer.append(line)
        text = "\n".join(buffer)
        if statement_complete(text):
            buffer.clear()
            failures += _run_one(printer, text)
    if stdin_mode and "".join(buffer).strip():  # a last statement without `;`
        failures += _run_one(printer, "\n".join(buffer))
    return failures


def _run_one(printer: Printer, text: str) -> int:
    try:
        printer.run(text, refresh=True)
    except SentinelError as exc:
        click.echo(f"{exc.title}: {printer.session.mask(exc.message)}", err=True)
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
        click.echo("  ".join(session.tables()))
    elif name == ".schema":
        for view in [arg] if arg else session.tables():
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


def _interactive(printer: Printer) -> None:
    session = printer.session
    history = _load_history(session.ws)
    if not printer.quiet:
        click.echo(
            f"sentinel sql on {session.ws.lake_dir} — views: {', '.join(session.tables())}. "
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
        run_statements(printer, read_line, stdin_mode=False)
    finally:
        if history is not None:
            _save_history(history, session.mask)


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


def _save_history(path: Path, mask: Callable[[str], str]) -> None:
    """Write the history with every line masked: the session recalls what was typed,
    the file keeps no finding (a query quoting a card keeps only its hint)."""
    import readline

    for index in range(readline.get_current_history_length()):
        line = readline.get_history_item(index + 1)
        if line:
            masked = mask(line)
            if masked != line:
                readline.replace_history_item(index, masked)
    try:
        readline.write_history_file(path)
        os.chmod(path, 0o600)
    except OSError:
        pass
