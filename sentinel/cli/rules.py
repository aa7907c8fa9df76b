"""`sentinel rules list|test|convert`: inspect, test and compile the detection pack.

Each command is a thin layer over `sentinel.detect`: `load_rules` (problems collected, one
bad rule never hides the others), `run_examples` (every rule's example events run through
its compiled SQL in DuckDB) and `compile_rule`. Rule problems are printed on stderr as
`path:line: message`; tables and SQL go to stdout.

Which sources a rule's logsource selects is the workspace's taxonomy when there is a
workspace (`--workspace`, `SENTINEL_HOME` or the default): built-in and plugin sources plus
its `[sources.NAME]` mappings, with its `[detect] variables`, exactly as `sentinel scan`
compiles them. Outside a workspace, the installed sources alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from sentinel.cli.exits import EXIT_PARTIAL
from sentinel.content import rules_dir as bundled_rules_dir
from sentinel.detect.compiler import compile_rule
from sentinel.detect.pipeline import Taxonomy
from sentinel.detect.rules import RuleProblem, load_rules
from sentinel.detect.testing import run_examples
from sentinel.exceptions import RuleError, WorkspaceError
from sentinel.workspace import Workspace

LOCAL_RULES_DIR = Path("detections")


def default_rules_dir() -> Path:
    """`./detections` when the current directory has one, else the bundled pack."""
    return LOCAL_RULES_DIR if LOCAL_RULES_DIR.is_dir() else bundled_rules_dir()


def rules_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--rules",
        "rules_dir",
        type=click.Path(exists=True, path_type=Path),
        default=default_rules_dir,
        show_default="./detections if present, else the bundled pack",
        help="Rule directory or file (relative to the current directory).",
    )(func)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _workspace_rules_context(ctx: click.Context) -> tuple[Taxonomy, dict[str, Any]]:
    """The taxonomy and `[detect] variables` rules compile with (see the module doc)."""
    root = (ctx.find_root().obj or {}).get("workspace")
    try:
        ws = Workspace.open(root) if root else None
    except WorkspaceError:
        ws = None
    if ws is None:
        return Taxonomy.installed(), {}
    from sentinel.ingest.engine import custom_sources

    variables = {k: list(v) for k, v in ws.config.detect.variables.items()}
    return Taxonomy.installed(custom_sources(ws)), variables


def _report_problems(problems: Sequence[RuleProblem]) -> None:
    for problem in problems:
        click.echo(f"error: {problem}", err=True)


@click.group()
def rules() -> None:
    """List, test and convert the Sigma detection rules.

    Example: sentinel rules test --rules detections/
    """


@rules.command("list")
@rules_option
@click.pass_context
def list_rules(ctx: click.Context, rules_dir: Path) -> None:
    """List the rules: id, title, level, log sources (the workspace's), tags.

    Example: sentinel rules list --rules detections/
    """
    taxonomy, _ = _workspace_rules_context(ctx)
    pack = load_rules([rules_dir])
    rows = [
        [
            loaded.rule_id,
            loaded.rule.title,
            loaded.level,
            ",".join(loaded.sources_in(taxonomy)),
            ",".join(loaded.tags),
        ]
        for loaded in pack.output_rules
    ]
    click.echo(_table(["id", "title", "level", "source", "tags"], rows))
    _report_problems(pack.problems)
    if pack.problems:
        raise SystemExit(EXIT_PARTIAL)


@rules.command("test")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@rules_option
@click.pass_context
def test(ctx: click.Context, path: Path | None, rules_dir: Path) -> None:
    """Run every rule's example events (`*.tests.jsonl`); exit 1 on any failure.

    PATH narrows the run to one rule file or directory.

    Example: sentinel rules test detections/openai/api_key_unrestricted.yml
    """
    taxonomy, variables = _workspace_rules_context(ctx)
    report = run_examples([path or rules_dir], variables, taxonomy)
    rows = []
    for result in report.results:
        status = "ok" if result.passed else "FAIL"
        detail = result.error or ("" if result.passed else f"matched {sorted(result.matched_ids)}")
        rows.append([status, result.title, result.case.name, result.case.expect, detail])
    quiet = bool((ctx.find_root().obj or {}).get("quiet"))
    failed = [row for row in rows if row[0] != "ok"]
    shown = failed if quiet else rows
    if shown:
        click.echo(_table(["result", "rule", "case", "expect", "detail"], shown))
    _report_problems(report.problems)
    passed = sum(1 for result in report.results if result.passed)
    click.echo(
        f"{passed}/{len(report.results)} cases passed, {len(report.problems)} rule problems",
        err=True,
    )
    if not report.ok:
        raise SystemExit(EXIT_PARTIAL)


@rules.command("convert")
@click.argument("rule")
@rules_option
@click.pass_context
def convert(ctx: click.Context, rule: str, rules_dir: Path) -> None:
    """Show the DuckDB SQL of one rule, given by id, name, title or file path.

    Example: sentinel rules convert detections/ai_gateway/credit_card_in_prompt.yml
    """
    sources: list[Path] = [rules_dir]
    if Path(rule).is_file():
        sources.append(Path(rule))
    pack = load_rules(sources)
    loaded = pack.find(rule)
    if loaded is None:
        located = [p for p in pack.problems if Path(rule).is_file() and p.path == Path(rule)]
        if located:
            raise RuleError(str(located[0]))
        raise RuleError(f"no rule {rule!r} in {rules_dir} (try `sentinel rules list`)")
    taxonomy, variables = _workspace_rules_context(ctx)
    click.echo(compile_rule(loaded, variables, taxonomy).sql)
