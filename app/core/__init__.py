"""The shared kernel every domain package builds on: config, database, errors, queue, logging."""
