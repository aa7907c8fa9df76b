"""The watcher daemon (`sentinel watch`): tail live log files into the lake.

A driver with no logic of its own: file events and periodic rescans only decide *when*
a file is read; what is read comes from the checkpoints in `state.db` (Vector's model),
through the same exactly-once ingest as `sentinel ingest`. After each pass that
committed batches, the incremental scan runs for the sources affected.
"""
