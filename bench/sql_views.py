"""What the SQL session's masked views cost per query on a workspace (`make run` builds one).

    python bench/sql_views.py [--workspace sentinel-data] [--runs 10]

For each query: the median wall time of `runs` executions through `SqlSession`, fetching
every row: revealed (the views without the masking UDF), masked (the default), and masked
plus the output-side scan `sentinel sql` also runs on what it prints. The difference
between the first two is what masking before the query costs. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sentinel.lake.session import SqlSession
from sentinel.workspace import Workspace

QUERIES = {
    "SELECT * LIMIT 100": "SELECT * FROM events LIMIT 100",
    "count(*) of SELECT *": "SELECT count(*) FROM (SELECT * FROM events)",
    "GROUP BY actor_user, model": (
        "SELECT actor_user, model, count(*) AS n, sum(cost_usd) AS cost FROM events GROUP BY 1, 2"
    ),
    "GROUP BY left(prompt_text, 40)": (
        "SELECT left(prompt_text, 40) AS p, count(*) AS n FROM events GROUP BY 1"
    ),
}
ALL_ROWS = {"SELECT * (every row)": "SELECT * FROM events"}


def median_ms(session: SqlSession, sql: str, runs: int, net: bool = False) -> float:
    """Median wall time of `sql` fetched in full; `net`: plus the output-side scan."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for table, _ in session.run(sql):
            if net:
                session.masker.mask_table(table)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", default="sentinel-data")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--all-rows", action="store_true", help="also SELECT * of every row")
    args = parser.parse_args()
    ws = Workspace.open(args.workspace)
    masked = SqlSession(ws)
    revealed = SqlSession(ws, reveal_reason="benchmark")
    rows = masked.run("SELECT count(*) FROM events")[0][0].column(0)[0].as_py()
    print(f"{rows} events; median of {args.runs} runs, ms")
    print(f"{'query':34} {'revealed':>9} {'masked':>9} {'+out net':>9}")
    queries = {**QUERIES, **(ALL_ROWS if args.all_rows else {})}
    for name, sql in queries.items():
        print(
            f"{name:34} {median_ms(revealed, sql, args.runs):9.1f}"
            f" {median_ms(masked, sql, args.runs):9.1f}"
            f" {median_ms(masked, sql, args.runs, net=True):9.1f}"
        )


if __name__ == "__main__":
    main()
