"""`sentinel hunt`: where did a value, or a type of data, reach an AI vendor?"""

from __future__ import annotations

from pathlib import Path

import click

from sentinel.cli.options import check_reveal, output_options, resolve_output
from sentinel.exceptions import QueryError
from sentinel.lake.privacy import Masker
from sentinel.lake.query import open_lake
from sentinel.output import Reveal, emit
from sentinel.pii import hunt as pii_hunt
from sentinel.pii.catalog import Catalog, load_catalog
from sentinel.pii.masking import hint
from sentinel.workspace import Workspace

NARROW_HIDDEN = ("start", "end", "digest")
"""Columns a terminal table leaves out unless --wide: positions and the 64-hex digest
are for machines (csv/json/parquet keep them) and would wrap every row."""


@click.command("hunt")
@click.option("--value", "value", help="A value to trace (card, email, key, …); normalised.")
@click.option("--type", "type_name", help="A finding type to list, e.g. credit_card.")
@click.option("--since", help="Only events since a duration (7d, 12h) or ISO date.")
@click.option(
    "--wide", is_flag=True, help=f"Also show {', '.join(NARROW_HIDDEN)} (hidden in tables)."
)
@output_options
@click.pass_context
def hunt(
    ctx: click.Context,
    value: str | None,
    type_name: str | None,
    since: str | None,
    wide: bool,
    fmt: str | None,
    output: Path | None,
    force: bool,
    limit: int | None,
    reveal: bool,
    reason: str | None,
) -> None:
    """List every event, source, actor and vendor where a value or a type of PII appeared.

    The value is matched by its keyed digest, so the lake never needs a second copy of
    it. Values are masked unless --reveal --reason is given (recorded in the audit trail).

    Example: sentinel hunt --value 4111-1111-1111-1111
    """
    if (value is None) == (type_name is None):
        raise click.UsageError("give exactly one of --value or --type")
    revealed = check_reveal(reveal, reason)
    ws = Workspace.open(ctx.obj["workspace"])
    fmt = resolve_output(ws, fmt, output, force)
    catalog = load_catalog(ws.config)
    masker = Masker.for_workspace(ws)
    if type_name is not None and catalog.detector_for(type_name) is None:
        known = ", ".join(catalog.types)
        raise click.UsageError(f"unknown type {type_name!r}; known types: {known}")
    try:
        after = pii_hunt.parse_since(since) if since else None
    except QueryError as exc:
        raise click.BadParameter(
            exc.message.removeprefix(f"--since {since!r}: "), param_hint="'--since'"
        ) from exc
    con = open_lake(ws)
    try:
        if value is not None:
            key = ws.secret_key()
            table = pii_hunt.hunt_value(con, value, after, catalog, key, revealed is not None)
            what = _describe_value(value, catalog)
        else:
            assert type_name is not None
            table = pii_hunt.hunt_type(con, type_name, after, catalog, revealed is not None)
            what = f"type {type_name}"
    finally:
        con.close()
    if limit is not None:
        table = table.slice(0, limit)
    if fmt == "table" and not wide:
        table = table.drop_columns([c for c in NARROW_HIDDEN if c in table.column_names])
    audit = None
    if revealed is not None:
        reason = masker.mask_text(revealed)
        audit = Reveal(reason, command="hunt", query=what, state_db=ws.state_db)
    emit(table, fmt=fmt, output=output, reveal=audit, masker=masker)


def _describe_value(value: str, catalog: Catalog) -> str:
    """What the audit trail and messages may say about a hunted value: its hint only."""
    type_name = pii_hunt.value_type(value, catalog)
    detector = catalog.detector_for(type_name) if type_name else None
    return f"value {hint(detector, value) if detector else '(unrecognised value)'}"
