"""Options shared by the commands that print results (`sql`, `hunt`), and their checks.

`--output FILE` never surprises: the format follows the file's extension (`.csv`,
`.json`/`.jsonl`/`.ndjson`, `.parquet`, `.txt`) unless `--format` names one, a format
that contradicts the extension is refused, an existing file is kept unless `--force`,
and a file of the workspace itself (the lake, `state.db`, the key, the config) is never
a target (`Workspace.owns`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from sentinel.output import DEFAULT_TABLE_LIMIT, FORMATS
from sentinel.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION_FORMATS = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".txt": "table",
}


def output_options(func: F) -> F:
    """The shared --format/--output/--force/--limit/--reveal/--reason options."""
    options = [
        click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default=None,
            help="Output format [default: table, or from the --output extension].",
        ),
        click.option(
            "--output",
            "-o",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write to FILE (created 0600) instead of stdout.",
        ),
        click.option("--force", is_flag=True, help="Overwrite an existing --output file."),
        click.option(
            "--limit",
            type=click.IntRange(min=0),
            default=None,
            help=f"At most N rows [default: {DEFAULT_TABLE_LIMIT} for table, all otherwise].",
        ),
        click.option("--reveal", is_flag=True, help="Show PII unmasked (needs --reason; audited)."),
        click.option("--reason", metavar="TEXT", help="Why values are revealed (audit trail)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_reveal(reveal: bool, reason: str | None) -> str | None:
    """The reveal reason, or None when masking stays on; `--reveal` alone is a usage error."""
    if not reveal:
        return None
    if reason is None or not reason.strip():
        raise click.UsageError("--reveal needs --reason TEXT (it is written to the audit trail)")
    return reason.strip()


def resolve_output(ws: Workspace, fmt: str | None, output: Path | None, force: bool) -> str:
    """The format to write, after checking `--output` (extension, overwrite, workspace)."""
    if output is None:
        if fmt == "parquet":
            raise click.UsageError("--format parquet needs --output FILE")
        return fmt or "table"
    implied = EXTENSION_FORMATS.get(output.suffix.lower())
    if fmt is not None and implied is not None and fmt != implied:
        raise click.UsageError(
            f"--format {fmt} does not match --output {output.name} (a {implied} file); "
            "change the extension or the format"
        )
    if ws.owns(output):
        raise click.UsageError(f"--output {output} would overwrite workspace data")
    if output.exists() and not force:
        raise click.UsageError(f"--output {output} exists; add --force to overwrite it")
    return fmt or implied or "table"
