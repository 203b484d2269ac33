"""Cost of the tree lens: building a full KernelView against the booster's own fit.

Fits a booster (by default XGBoost, 300 trees of depth 6) on ``n`` training rows, then
times :meth:`TreeLens.from_fitted` (the replay of every round on the training set) and
:meth:`TreeLens.kernel_view` on ``m`` evaluation rows (the full ``m x n`` contribution
matrix, kernel norms of every round for evaluation and training rows), and reports both as
ratios of the library's fit time, in wall-clock and in CPU time (the steadier measure on a
shared machine). Memory: the peak of Python-tracked allocations while the view is built
(``tracemalloc``; NumPy reports its buffers to it) in a second, untimed pass, and the
process's peak resident set size.

Run with ``python -m tabscope.bench.perf.trees`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import make_friedman1

from tabscope.models import TreeLens

__all__ = ["TreeLensTiming", "main", "make_booster", "measure"]

GIB = 1 << 30
MEMORY_BUDGET = 2 * GIB


@dataclass(frozen=True)
class TreeLensTiming:
    """Seconds and bytes of one measurement."""

    library: str
    task: str
    n_train: int
    n_eval: int
    n_estimators: int
    max_depth: int
    n_jobs: int
    fit_seconds: float
    replay_seconds: float
    view_seconds: float
    fit_cpu_seconds: float
    lens_cpu_seconds: float
    traced_peak_bytes: int
    peak_rss_bytes: int
    identity_error: float

    @property
    def lens_seconds(self) -> float:
        """Replay plus view: everything the lens adds to a fitted booster."""
        return self.replay_seconds + self.view_seconds

    @property
    def ratio(self) -> float:
        """Lens time over the library's fit time (wall clock)."""
        return self.lens_seconds / self.fit_seconds

    @property
    def cpu_ratio(self) -> float:
        """Lens CPU time over the fit's CPU time: steadier on a shared machine."""
        return self.lens_cpu_seconds / self.fit_cpu_seconds


def make_booster(library: str, task: str, n_estimators: int, max_depth: int, seed: int):
    """A booster with the given size; library defaults otherwise."""
    classifier = task != "regression"
    if library == "xgboost":
        import xgboost

        cls = xgboost.XGBClassifier if classifier else xgboost.XGBRegressor
        return cls(n_estimators=n_estimators, max_depth=max_depth, random_state=seed)
    if library == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMClassifier if classifier else lightgbm.LGBMRegressor
        return cls(
            n_estimators=n_estimators,
            max_depth=max_depth,
            num_leaves=2**max_depth,
            random_state=seed,
            verbose=-1,
        )
    if library == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classifier else HistGradientBoostingRegressor
        return cls(
            max_iter=n_estimators, max_depth=max_depth, early_stopping=False, random_state=seed
        )
    if library == "gradient_boosting":
        from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

        cls = GradientBoostingClassifier if classifier else GradientBoostingRegressor
        return cls(n_estimators=n_estimators, max_depth=max_depth, random_state=seed)
    raise ValueError(
        "library must be one of 'xgboost', 'lightgbm', 'hist_gradient_boosting', "
        f"'gradient_boosting', got {library!r}"
    )


def _data(task: str, n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_friedman1(n_samples=n_rows, n_features=10, noise=1.0, random_state=seed)
    if task == "binary":
        y = (y > np.median(y)).astype(int)
    elif task == "multiclass":
        y = np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75]))
    elif task != "regression":
        raise ValueError(f"task must be 'regression', 'binary' or 'multiclass', got {task!r}")
    return X, y


def measure(
    library: str = "xgboost",
    task: str = "regression",
    n_train: int = 10_000,
    n_eval: int = 2_000,
    n_estimators: int = 300,
    max_depth: int = 6,
    seed: int = 0,
    n_jobs: int = -1,
) -> TreeLensTiming:
    """Time the booster's fit and the lens built on it.

    The booster fits with its library's default threading (all cores for XGBoost and
    LightGBM); the contribution matrix is formed with ``n_jobs`` threads.

    Returns
    -------
    TreeLensTiming
    """
    X, y = _data(task, n_train + n_eval, seed)
    X_train, y_train, X_eval = X[:n_train], y[:n_train], X[n_train:]
    model = make_booster(library, task, n_estimators, max_depth, seed)

    started, cpu_started = time.perf_counter(), time.process_time()
    model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    fit_cpu_seconds = time.process_time() - cpu_started

    started, cpu_started = time.perf_counter(), time.process_time()
    lens = TreeLens.from_fitted(model, X_train, y_train)
    replay_seconds = time.perf_counter() - started

    started = time.perf_counter()
    view = lens.kernel_view(X_eval, n_jobs=n_jobs)
    view_seconds = time.perf_counter() - started
    lens_cpu_seconds = time.process_time() - cpu_started
    identity_error = view.identity_error()
    del view, lens
    gc.collect()

    # Memory in a second pass: tracing slows allocation-heavy code down.
    tracemalloc.start()
    lens = TreeLens.from_fitted(model, X_train, y_train)
    view = lens.kernel_view(X_eval, n_jobs=n_jobs)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del view, lens

    # ru_maxrss is in KiB on Linux, bytes on macOS.
    rss_unit = 1 if sys.platform == "darwin" else 1024
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * rss_unit
    return TreeLensTiming(
        library=library,
        task=task,
        n_train=n_train,
        n_eval=n_eval,
        n_estimators=n_estimators,
        max_depth=max_depth,
        n_jobs=n_jobs,
        fit_seconds=fit_seconds,
        replay_seconds=replay_seconds,
        view_seconds=view_seconds,
        fit_cpu_seconds=fit_cpu_seconds,
        lens_cpu_seconds=lens_cpu_seconds,
        traced_peak_bytes=traced_peak,
        peak_rss_bytes=peak_rss,
        identity_error=identity_error,
    )


def _report(timing: TreeLensTiming) -> str:
    peak = max(timing.traced_peak_bytes, timing.peak_rss_bytes)
    budget = "within" if peak <= MEMORY_BUDGET else "OVER"
    rows = [
        ("booster", f"{timing.library} {timing.task}, {timing.n_estimators} trees of depth "
                    f"{timing.max_depth}"),
        ("n_train x n_eval", f"{timing.n_train} x {timing.n_eval}"),
        ("library fit", f"{timing.fit_seconds:8.2f} s"),
        ("lens replay (from_fitted)", f"{timing.replay_seconds:8.2f} s   "
                                      f"{timing.replay_seconds / timing.fit_seconds:6.2f} x fit"),
        (f"full kernel_view (n_jobs={timing.n_jobs})", f"{timing.view_seconds:8.2f} s   "
                             f"{timing.view_seconds / timing.fit_seconds:6.2f} x fit"),
        ("lens total", f"{timing.lens_seconds:8.2f} s   {timing.ratio:6.2f} x fit"),
        ("CPU time: fit, lens", f"{timing.fit_cpu_seconds:8.2f} s, "
                                f"{timing.lens_cpu_seconds:.2f} s   {timing.cpu_ratio:6.2f} x fit"),
        ("tracemalloc peak (lens)", f"{timing.traced_peak_bytes / GIB:8.3f} GiB"),
        ("peak RSS (process)", f"{timing.peak_rss_bytes / GIB:8.3f} GiB   "
                               f"{budget} the {MEMORY_BUDGET / GIB:g} GiB budget"),
        ("identity error", f"{timing.identity_error:.2e} (relative)"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--library",
        default="xgboost",
        choices=["xgboost", "lightgbm", "hist_gradient_boosting", "gradient_boosting"],
    )
    parser.add_argument(
        "--task", default="regression", choices=["regression", "binary", "multiclass"]
    )
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-eval", type=int, default=2_000)
    parser.add_argument("--n-estimators", type=int, default=300)
    parser.add_argument("--max-depth", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--n-jobs", type=int, default=-1, help="threads for the contribution matrix"
    )
    args = parser.parse_args(argv)
    timing = measure(
        library=args.library,
        task=args.task,
        n_train=args.n_train,
        n_eval=args.n_eval,
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        seed=args.seed,
        n_jobs=args.n_jobs,
    )
    print(_report(timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
