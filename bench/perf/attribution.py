"""How much of a network's prediction its per-example contributions explain (coverage).

For each dataset and optimiser: a telescoping MLP (256-256, ``--steps`` steps of
``--batch-size``, no early stopping, the optimiser's default betas or momentum 0.9) is fitted
on the split's training rows (training cap ``--max-train``; the validation rows unused),
then viewed on ``--eval`` test rows twice: crediting the current batch only
(``attribution_window=1``) and the optimiser's memory over the default window
(docs/design.md §1.8). Prints, for each, the view's time as a
multiple of the fit, its coverage (``1 - mean |unattributed| / mean |prediction - offset|``)
and its identity error.

Run with ``python -m tabscope.bench.perf.attribution`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["main", "measure"]

OPTIMIZERS = {"momentum": 1e-2, "adamw": 1e-3}


def measure(source: str, optimizer: str, *, steps: int, batch_size: int, n_eval: int,
            max_train: int, seed: int = 0) -> dict:
    """Fit one MLP on ``source`` and view ``n_eval`` test rows with and without the window."""
    import torch

    from tabscope.datasets import load_dataset, make_split, prepare_data
    from tabscope.models import TelescopingMLPClassifier, TelescopingMLPRegressor
    from tabscope.vocabulary import Task

    torch.set_num_threads(max(1, torch.get_num_threads()))
    dataset = load_dataset(source)
    split = make_split(dataset, seed, test_size=0.2, valid_size=0.1, max_train=max_train)
    data = prepare_data(dataset, split, "network")
    cls = TelescopingMLPRegressor if dataset.task == Task.REGRESSION else TelescopingMLPClassifier
    model = cls((256, 256), optimizer=optimizer, learning_rate=OPTIMIZERS[optimizer],
                max_steps=steps, batch_size=batch_size, early_stopping=False,
                random_state=seed)
    started = time.perf_counter()
    model.fit(data.X_train, data.y_train)
    row = {"dataset": source.split(":", 1)[-1].split("?", 1)[0], "optimizer": optimizer,
           "n": len(data.X_train), "fit_s": time.perf_counter() - started}
    X_eval = data.X_test[:n_eval]
    for label, window in (("current", 1), ("window", "auto")):
        started = time.perf_counter()
        view = model.kernel_view(X_eval, kernel_norms=False, smoother=False,
                                 attribution_window=window)
        row[f"{label}_s"] = time.perf_counter() - started
        row[f"{label}_coverage"] = view.coverage
        row[f"{label}_identity"] = view.identity_error()
        row["window"] = view.metadata["attribution_window"]
    return row


def _format(row: dict) -> str:
    fit = row["fit_s"]
    return (f"| {row['dataset']} | {row['optimizer']} | {row['n']:,} | {fit:.1f} s | "
            f"{row['current_s'] / fit:.1f}x / {row['window_s'] / fit:.1f}x (L = {row['window']}) | "
            f"{row['current_coverage']:.3f} / {row['window_coverage']:.3f} | "
            f"{max(row['current_identity'], row['window_identity']):.1e} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tabscope.bench.perf.attribution",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["sklearn:diabetes"],
                        help="dataset sources (default: sklearn:diabetes)")
    parser.add_argument("--optimizers", nargs="+", choices=sorted(OPTIMIZERS),
                        default=sorted(OPTIMIZERS))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval", type=int, default=100, dest="n_eval")
    parser.add_argument("--max-train", type=int, default=10000)
    args = parser.parse_args(argv)
    print("| dataset | optimizer | n | fit | view / fit (L = 1 / window) | "
          "coverage (L = 1 / window) | identity error |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for source in args.datasets:
        for optimizer in args.optimizers:
            row = measure(source, optimizer, steps=args.steps, batch_size=args.batch_size,
                          n_eval=args.n_eval, max_train=args.max_train)
            print(_format(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
