"""`sentinel baselines list|check|convert`: inspect and validate the baselines.

A thin layer over `sentinel.detect.baseline` (loading and validation, every problem
located at `path:line:column`) and `sentinel.detect.baseline_sql` (the DuckDB SQL). The
scan runs the same baselines (`[detect] baselines`, `<workspace>/baselines`, else the
bundled set); these commands read `./baselines` when the current directory has one.
Problems go to stderr, tables and SQL to stdout; exit 1 when a baseline has a problem.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sentinel.cli.exits import EXIT_PARTIAL
from sentinel.cli.rules import _report_problems, _table
from sentinel.content import baselines_dir as bundled_baselines_dir
from sentinel.detect.baseline import BaselinePack, load_baselines
from sentinel.detect.baseline_sql import compile_baseline
from sentinel.detect.pipeline import Taxonomy
from sentinel.exceptions import RuleError

LOCAL_DIR = Path("baselines")


def default_dir() -> Path:
    """`./baselines` when the current directory has one, else the bundled set."""
    return LOCAL_DIR if LOCAL_DIR.is_dir() else bundled_baselines_dir()


def baselines_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--baselines", "path", type=click.Path(exists=True, path_type=Path),
        default=default_dir, show_default="./baselines if present, else the bundled set",
        help="Baseline directory or file (relative to the current directory).",
    )(func)


def _load(path: Path) -> tuple[BaselinePack, Taxonomy]:
    pack = load_baselines([path])
    taxonomy = Taxonomy.installed()
    for item in pack.baselines:
        source = item.spec.logsource
        if taxonomy.select(source.product, source.service) is None:
            pack.problems.append(item.problem(
                ("logsource",), f"unsupported logsource (product {source.product!r}, service "
                f"{source.service!r}); the installed sources declare {taxonomy.describe()}"))
    return pack, taxonomy


@click.group("baselines")
def baselines_group() -> None:
    """List, check and convert the baselines for unusual access (`baselines/`).

    Example: sentinel baselines check baselines/
    """


@baselines_group.command("list")
@baselines_option
def list_baselines(path: Path) -> None:
    """List the baselines: id, kind, level, principal, learning window, sources, title.

    Example: sentinel baselines list
    """
    pack, taxonomy = _load(path)
    rows = []
    for item in pack.baselines:
        spec = item.spec
        sources = taxonomy.select(spec.logsource.product, spec.logsource.service) or ()
        window = spec.learning + (f" (min {spec.min_history})" if spec.min_history else "")
        rows.append([spec.id, spec.kind, spec.level, ",".join(spec.by), window,
                     ",".join(sources), spec.title])
    click.echo(_table(["id", "kind", "level", "by", "learning", "source", "title"], rows))
    _report_problems(pack.problems)
    if pack.problems:
        raise SystemExit(EXIT_PARTIAL)


@baselines_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Validate baseline files and run their examples; every problem as
    path:line:column; exit 1 if any.

    PATHS default to ./baselines if present, else the bundled set.

    Example: sentinel baselines check baselines/gateway_key_new_client_ip.yml
    """
    from sentinel.scan.baseline_examples import check_examples

    problems = []
    count = examples = 0
    for path in paths or (default_dir(),):
        pack, taxonomy = _load(path)
        count += len(pack.baselines)
        problems += pack.problems
        for item in pack.baselines:
            source = item.spec.logsource
            sources = taxonomy.select(source.product, source.service)
            if sources:
                examples += len(item.spec.examples)
                problems += check_examples(item, tuple(sources))
    _report_problems(problems)
    click.echo(f"{count} baselines valid, {examples} examples run, {len(problems)} problems",
               err=True)
    if problems:
        raise SystemExit(EXIT_PARTIAL)


@baselines_group.command("convert")
@click.argument("baseline")
@baselines_option
def convert(baseline: str, path: Path) -> None:
    """Show the DuckDB SQL of one baseline (by id or title) and its bound parameters.

    `{relation}` stands for the lake files the scan reads; `$name` are bound parameters.

    Example: sentinel baselines convert gateway-key-new-client-ip
    """
    pack, taxonomy = _load(path)
    item = pack.find(baseline)
    if item is None:
        raise RuleError(f"no baseline {baseline!r} in {path} (try `sentinel baselines list`)")
    spec = item.spec
    sources = taxonomy.select(spec.logsource.product, spec.logsource.service) or ()
    compiled = compile_baseline(item, tuple(sources))
    click.echo(compiled.template)
    for name, value in sorted(compiled.params.items()):
        click.echo(f"-- ${name} = {value!r}")
