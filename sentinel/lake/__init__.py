"""The event lake: immutable, hive-partitioned Parquet files under `lake/events/`.

The ingest engine writes each batch to `lake/.staging/`, then renames it to
`lake/events/source=<source>/date=<YYYY-MM-DD>/<batch-id>.parquet`, so a reader only ever
sees committed, complete files. Readers (`query.open_lake`) use an in-memory DuckDB
connection over those files and hold no database lock, which is why `sentinel sql`, the
TUI and a cron scan never block the daemon's ingest.
"""
