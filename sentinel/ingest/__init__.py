"""Ingest: framing, normalisation, quarantine and exactly-once batches."""
