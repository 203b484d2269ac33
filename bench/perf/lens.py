"""Cost of the lens analyses at benchmark scale, as multiples of the model's own fit.

For a telescoping MLP (width 256, SGD, momentum and AdamW, ``--steps`` steps of 128) and
XGBoost (300 trees of depth 6), at each training size ``n`` with ``--eval`` evaluation
rows: the fit, the kappa analysis (:meth:`kernel_norms`, norms only, docs/design.md §1.5)
and the effective parameters (:meth:`effective_parameters`, dense up to ``--dense-max`` rows,
sketched above; §1.6; with momentum and AdamW both over the current batches only and over
the default attribution window, §1.8), each timed and reported as a ratio of the fit, with the process's
peak resident memory up to the end of each analysis. Then the contributions of the
``--shown`` rows a report displays (``kernel_view`` without norms): crediting the current
batch only (``attribution_window=1``) and the optimiser's memory over the default window
(§1.8), each with its time as a multiple of the fit and its coverage. Each (model, n) runs
in a forked process, so the peaks do not leak between measurements. An analysis whose
estimated cost exceeds ``--max-gflop`` is reported as skipped, with its estimate, as the
benchmark does. Costs are in §1.9.

Run with ``python -m tabscope.bench.perf.lens`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

__all__ = ["main", "measure"]

GIB = 1 << 30
MODELS = ("sgd", "momentum", "adamw", "xgboost")
MEMORY_MODELS = ("momentum", "adamw")


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def _model(name: str, steps: int, width: int):
    if name == "xgboost":
        from xgboost import XGBRegressor

        return XGBRegressor(n_estimators=300, max_depth=6, n_jobs=1, random_state=0)
    from tabscope.models import TelescopingMLPRegressor

    rate = 1e-3 if name == "adamw" else 1e-2
    return TelescopingMLPRegressor(
        hidden_layer_sizes=(width, width), optimizer=name, learning_rate=rate,
        max_steps=steps, batch_size=128, early_stopping=False, random_state=0,
    )


def measure(name: str, n: int, n_eval: int, steps: int, width: int, sketch_size: int,
            dense_max: int, max_gflop: float, n_shown: int = 40) -> dict:
    """Time fit, kappa and effective parameters of one model at one size (in this process)."""
    import torch

    from tabscope.errors import AnalysisTooCostlyError
    from tabscope.models import TreeLens

    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n + n_eval, 8)).astype(np.float32)
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(n + n_eval)
    X_train, y_train, X_eval = X[:n], y[:n], X[n:]
    model = _model(name, steps, width)
    started = time.perf_counter()
    model.fit(X_train, y_train)
    fit = time.perf_counter() - started
    row = {"model": name, "n": n, "fit_s": fit, "fit_peak_gib": _peak_gib()}
    lens = TreeLens.from_fitted(model, X_train, y_train) if name == "xgboost" else model
    started = time.perf_counter()
    norms = lens.kernel_norms(X_eval, train_sample_size=1000, random_state=0)
    row["kappa_s"] = time.perf_counter() - started
    row["kappa_peak_gib"] = _peak_gib()
    row["kappa_train_se"] = norms.train_mean_standard_error / norms.train_mean
    sketch = None if n <= dense_max else sketch_size
    # With the optimiser's memory, p over the current batches alone (partial, cheap) and
    # over the default window (complete, L times the kernel cost); without it they agree.
    windows = (("current", 1), ("window", "auto")) if name in MEMORY_MODELS else (("window", "auto"),)
    for label, window in windows:
        started = time.perf_counter()
        try:
            result = lens.effective_parameters(
                X_eval, sketch_size=sketch, max_flops=max_gflop * 1e9,
                random_state=0, **({} if name == "xgboost" else {"attribution_window": window}))
            row[f"p_{label}_s"] = time.perf_counter() - started
            row[f"p_{label}"] = f"{result.p_test:.1f}±{result.p_test_se:.1f} ({result.method})"
        except AnalysisTooCostlyError as exc:
            row[f"p_{label}_s"] = float("nan")
            row[f"p_{label}"] = "skipped: " + str(exc).split(": ", 1)[-1]
    row["p_peak_gib"] = _peak_gib()
    X_shown = X_eval[:n_shown]
    for label, window in (("current", 1), ("window", "auto")):
        started = time.perf_counter()
        if name == "xgboost":  # trees credit every update: there is no window to choose
            view = lens.kernel_view(X_shown)
        else:
            view = lens.kernel_view(X_shown, kernel_norms=False, smoother=False,
                                    attribution_window=window)
        row[f"view_{label}_s"] = time.perf_counter() - started
        row[f"coverage_{label}"] = view.coverage
        row["window"] = int(view.metadata.get("attribution_window", 1))
    row["view_peak_gib"] = _peak_gib()
    return row


def _ratio(seconds: float, fit: float) -> str:
    return "skipped" if np.isnan(seconds) else f"{seconds / fit:.1f}x"


def _format(row: dict) -> str:
    fit = row["fit_s"]
    p_ratio = _ratio(row["p_window_s"], fit)
    p_text = row["p_window"]
    if "p_current" in row:
        p_ratio = f"{_ratio(row['p_current_s'], fit)} / {p_ratio}"
        p_text = f"{row['p_current']} / {p_text}"
    peak = max(row["kappa_peak_gib"], row["p_peak_gib"], row["view_peak_gib"])
    return (f"| {row['model']} | {row['n']} | {fit:.2f} | {row['kappa_s'] / fit:.1f}x "
            f"(SE {100 * row['kappa_train_se']:.1f}%) | {p_ratio} | {peak:.2f} | {p_text} | "
            f"{row['view_current_s'] / fit:.1f}x / {row['view_window_s'] / fit:.1f}x "
            f"(L = {row['window']}) | {row['coverage_current']:.3f} / "
            f"{row['coverage_window']:.3f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tabscope.bench.perf.lens",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--eval", type=int, default=300, dest="n_eval")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--sketch-size", type=int, default=256)
    parser.add_argument("--dense-max", type=int, default=1500)
    parser.add_argument("--max-gflop", type=float, default=12000.0)
    parser.add_argument("--shown", type=int, default=40,
                        help="displayed rows whose contributions are timed (default 40)")
    args = parser.parse_args(argv)
    print("| model | n | fit s | kappa / fit (train-mean SE) | p / fit (L = 1 / window) "
          "| peak GiB | p_test (L = 1 / window) "
          "| shown contributions / fit (L = 1 / window) | coverage (L = 1 / window) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    context = multiprocessing.get_context("fork")  # the parent never imports torch
    for n in args.sizes:
        for name in args.models:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                row = pool.submit(measure, name, n, args.n_eval, args.steps, args.width,
                                  args.sketch_size, args.dense_max, args.max_gflop,
                                  args.shown).result()
            print(_format(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
