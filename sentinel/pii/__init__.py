"""PII and secret detection: the catalog, the vectorised scanner, masking and hunting.

`scanner.scan_events` runs at ingest, `masking.mask_table` / `mask_text` on every path
that shows text, `hunt` answers "where did this value appear?" from digests alone.
"""
