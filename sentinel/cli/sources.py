"""`sentinel sources`: the installed log sources and the Sigma logsource each declares.

A thin layer over `sentinel.sources.registry.describe_sources`: the entry-point sources
(built-in and plugins) plus the `[sources.NAME]` mappings of the workspace's
`sentinel.toml`, when there is a workspace. The table is what rule authors need: the
`product`/`service` a rule names to select each source (see detections/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from sentinel.sources.base import LogSource
from sentinel.sources.registry import describe_sources

HEADERS = ("source", "product", "service", "origin", "description")


def _configured(workspace: str) -> list[LogSource]:
    """The workspace's configured sources; none when the directory is not a workspace."""
    from sentinel.ingest.engine import custom_sources
    from sentinel.workspace import Workspace

    if not (Path(workspace) / "sentinel.toml").is_file():
        return []
    return custom_sources(Workspace.open(workspace))


@click.command("sources")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format (json: one object per source, one per line).",
)
@click.pass_context
def sources(ctx: click.Context, output_format: str) -> None:
    """List the log sources sentinel can read and the Sigma logsource of each.

    Built-in sources, plugins (the `sentinel.sources` entry point) and the workspace's
    `[sources.NAME]` mappings. A rule's `logsource: product: P` selects every source of
    product P; adding `service: S` selects only that one.

    Example: sentinel sources --format json
    """
    infos = describe_sources(_configured(ctx.obj["workspace"]))
    if output_format == "json":
        for info in infos:
            click.echo(json.dumps(vars(info)))
        return
    rows = [(i.name, i.product, i.service, i.origin, i.description) for i in infos]
    widths = [max(len(h), *(len(r[n]) for r in rows)) for n, h in enumerate(HEADERS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    click.echo("\n".join(lines))
