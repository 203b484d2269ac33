"""Wall time of a suite with 1 worker versus N workers, local processes and Dask.

Run with ``python -m tabscope.bench.perf.workers [SUITE] [--workers N]`` (default: the quick
suite, 2 workers). Every configuration runs the whole suite from scratch into its own
temporary directory, one thread per cell, so the only difference is how many cells run side
by side. Prints a table of wall times and speed-ups over the single worker, and checks that
every configuration stored the same metrics.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from tabscope.bench.executors import available_cores
from tabscope.bench.runner import run_suite
from tabscope.bench.store import METRIC_COLUMNS, ResultsStore
from tabscope.bench.suite import load_suite

__all__ = ["main", "measure"]


def measure(suite_name: str = "quick", n_workers: int = 2, dask: bool = True) -> list[dict]:
    """Run the suite once per configuration; return one dict per configuration."""
    suite = load_suite(suite_name)
    configurations = [("local", 1), ("processes", n_workers)]
    try:
        import distributed  # noqa: F401
    except ImportError:
        dask = False
    if dask:
        configurations.append(("dask", n_workers))
    rows = []
    reference = None
    with tempfile.TemporaryDirectory() as folder:
        for executor, workers in configurations:
            out = Path(folder) / f"{executor}-{workers}"
            started = time.perf_counter()
            summary = run_suite(suite, out, executor=executor, n_jobs=workers)
            seconds = time.perf_counter() - started
            cells = ResultsStore(out).cells().set_index("cell_id").sort_index()
            metrics = cells[[m for m in METRIC_COLUMNS if m in cells]].to_numpy(dtype=float)
            if reference is None:
                reference = metrics
            rows.append({
                "executor": executor,
                "workers": workers,
                "cells": summary.n_cells,
                "failed": summary.n_failed,
                "seconds": seconds,
                "same_metrics": bool(np.array_equal(reference, metrics, equal_nan=True)),
            })
    base = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = base / row["seconds"]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", default="quick")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args(argv)
    rows = measure(args.suite, args.workers, dask=not args.no_dask)
    print(f"suite {args.suite!r} on {available_cores()} cores, one thread per cell")
    print(f"{'executor':12s} {'workers':>7s} {'cells':>6s} {'failed':>6s} {'seconds':>8s} "
          f"{'speed-up':>8s} {'same metrics':>12s}")
    for row in rows:
        print(f"{row['executor']:12s} {row['workers']:7d} {row['cells']:6d} {row['failed']:6d} "
              f"{row['seconds']:8.1f} {row['speedup']:7.2f}x {str(row['same_metrics']):>12s}")


if __name__ == "__main__":
    main()
