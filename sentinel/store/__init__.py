"""The SQLite case store (`state.db`): checkpoints, batches, audit, incidents."""
