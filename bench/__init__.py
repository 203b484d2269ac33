"""Suites, the runner, executors, the results store and the per-cell analyses."""
