"""One cell of a benchmark: fit one model on one split of one dataset, score it, and run the
cell-level lens analyses. Runs inside workers; it never touches the results store.

What a cell returns (:class:`CellOutcome`) is plain data: the row for the ``cells`` table,
Parquet-ready frames, rows for the ``analyses`` table and, per analysis row, the names of
the frames it refers to. The driver writes them through the store, which decides where the
frames live (:meth:`~tabscope.bench.store.ResultsStore.write_arrays`).

Everything a compared pair's analysis needs per example is computed here, once, in the
worker: predictions, kernel norms and (on the network side of a pair) the irregularity
scores of the evaluation rows in the preprocessed feature space (docs/design.md §1.5).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from tabscope.datasets import Dataset, PreparedData, Split, describe_inputs, prepare_data
from tabscope.errors import AnalysisTooCostlyError
from tabscope.vocabulary import Analysis, CellJob, Preprocessing, Task

from .cell_fitting import fit_target as _fit_target
from .cell_fitting import fit_model, impute_if_needed, predict, tune_model
from .metrics import classification_scores, regression_scores
from .store import CELL_INPUTS_ARRAY, analysis_id, cell_id
from .suite import AnalysisSettings, ModelEntry
from .tuning import TuningSettings

__all__ = ["CellOutcome", "CellTask", "cell_id", "evaluation_rows", "run_cell"]

logger = logging.getLogger(__name__)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def evaluation_rows(n_test: int, max_eval: int, seed: int) -> np.ndarray:
    """Positions in the test set used by the kernel analyses: the same for every model."""
    if n_test <= max_eval:
        return np.arange(n_test)
    rng = np.random.default_rng([seed, 1729])
    return np.sort(rng.choice(n_test, size=max_eval, replace=False))


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs to run one cell."""

    dataset: Dataset
    split: Split
    model: ModelEntry
    seed: int
    metrics: tuple[str, ...]
    analyses: tuple[str, ...] = ()
    analysis_settings: AnalysisSettings = AnalysisSettings()
    n_threads: int | None = None
    stores_irregularity_scores: bool = False
    """Whether this cell is the network side of a compared pair: its kernel-norms job then
    also stores the irregularity scores of the evaluation rows (docs/design.md §1.5)."""
    tuning: TuningSettings = TuningSettings()
    results_dir: str | None = None
    """Where the cell's tuning journal lives (bench/tuning.py); None keeps no journal."""

    @property
    def cell_id(self) -> str:
        return cell_id(self.dataset.source, self.model.name, self.seed)

    @property
    def config_hash(self) -> str:
        """Hash of everything that defines this cell's results: a rerun skips the cell
        only while it is unchanged (model, split, metrics and analyses)."""
        parts = [self.model.config_hash(), self.split.hash, self.metrics, self.analyses,
                 dataclasses.asdict(self.analysis_settings)]
        if self.stores_irregularity_scores:
            parts.append("irregularity_scores")
        if self.tuning.n_trials:
            parts.append([dataclasses.asdict(self.tuning), self.model.search])
        payload = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class CellOutcome:
    """A finished cell: its row, its frames, its analysis rows and, per analysis row (by
    its ``analysis`` name), the names of the frames that row refers to."""

    row: dict
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    analyses: list[dict] = field(default_factory=list)
    arrays: dict[str, tuple[str, ...]] = field(default_factory=dict)
    trials: list[dict] = field(default_factory=list)


def failed_outcome(task: CellTask, error: str) -> CellOutcome:
    """The outcome of a cell that could not run (recorded as failed, with the reason)."""
    return CellOutcome(row=_base_row(task) | {"status": "failed", "error": error, "finished_at": now()})


def _base_row(task: CellTask) -> dict:
    return {
        "cell_id": task.cell_id,
        "dataset": task.dataset.source,
        "dataset_name": task.dataset.name,
        "task": task.dataset.task,
        "model": task.model.name,
        "role": task.model.spec.role,
        "seed": task.seed,
        "split_hash": task.split.hash,
        "config_hash": task.config_hash,
    }


def _limit_threads(n_threads: int | None):
    """Keep one cell from oversubscribing the cores shared with other workers."""
    from threadpoolctl import threadpool_limits

    if n_threads is None:
        return threadpool_limits(limits=None)
    import torch

    torch.set_num_threads(n_threads)
    return threadpool_limits(limits=n_threads)


def run_cell(task: CellTask) -> CellOutcome:
    """Fit, predict, score and analyse one cell; failures become a failed outcome."""
    try:
        with _limit_threads(task.n_threads):
            return _run_cell(task)
    except Exception as exc:  # a failing model must not stop the benchmark
        logger.debug("cell %s failed", task.cell_id, exc_info=True)
        message = f"{type(exc).__name__}: {exc}"
        return failed_outcome(task, message)


def _run_cell(task: CellTask) -> CellOutcome:
    dataset, split, entry = task.dataset, task.split, task.model
    data = prepare_data(dataset, split, entry.spec.preprocessing)
    data = impute_if_needed(entry.spec.build(dataset.task, entry.params), data)

    started = time.perf_counter()
    trials: list[dict] = []
    if task.tuning.n_trials:
        estimator, trials = tune_model(task, data)
    else:
        estimator = fit_model(task, data, entry.params)
    fit_seconds = time.perf_counter() - started

    started = time.perf_counter()
    predictions, proba = predict(estimator, data)
    predict_seconds = time.perf_counter() - started

    if dataset.task == Task.REGRESSION:
        scores = regression_scores(data.y_test, predictions)
        frame = pd.DataFrame({"row": split.test, "y_true": data.y_test, "y_pred": predictions})
    else:
        n_classes = len(data.classes)
        scores = classification_scores(data.y_test, predictions, proba, n_classes)
        frame = pd.DataFrame({"row": split.test, "y_true": data.y_test, "y_pred": predictions})
        if proba is not None:
            for k in range(n_classes):
                frame[f"proba_{k}"] = proba[:, k]
    scores = {name: value for name, value in scores.items() if name in task.metrics}

    outcome = CellOutcome(
        row=_base_row(task)
        | scores
        | {
            "status": "ok",
            "fit_seconds": fit_seconds,
            "predict_seconds": predict_seconds,
            "stopping_step": entry.spec.stopping_step(estimator),
            "n_train": len(split.train),
            "n_test": len(split.test),
            "finished_at": now(),
        },
        # What this model family received (input width, categorical features), read off
        # the fitted preprocessing, so the report can say what happened to the data.
        frames={"predictions": frame,
                CELL_INPUTS_ARRAY: pd.DataFrame({"inputs": [json.dumps(describe_inputs(dataset, data))]})},
    )
    outcome.trials = trials
    if task.analyses:
        _run_cell_analyses(task, estimator, data, outcome)
    return outcome


# -- cell-level lens analyses ------------------------------------------------------------------


def lens_for(estimator, data: PreparedData, y_fit: np.ndarray):
    """The kernel lens of a fitted estimator, or None when it has none.

    Decided by capability: telescoping networks (and any estimator with a kernel view) are
    their own lens; a booster whose class TreeLens supports is wrapped in a TreeLens over
    the data it was fitted on, unless one of its settings breaks the kernel identity.
    """
    from tabscope.models import TreeLens
    from tabscope.models.networks import is_telescoping_network
    from tabscope.models.tree_lens import UnsupportedBoosterError

    if is_telescoping_network(estimator) or hasattr(estimator, "kernel_view"):
        return estimator
    if not TreeLens.supports(estimator):
        return None
    try:
        return TreeLens.from_fitted(estimator, data.X_train, y_fit)
    except UnsupportedBoosterError:
        return None


#: Evaluation rows whose most influential training examples a cell stores.
N_DISPLAYED = 3


def top_contributions(
    view, offset: int, eval_dataset_rows: np.ndarray, train_dataset_rows: np.ndarray,
    n_examples: int = 3, top_k: int = 5,
) -> pd.DataFrame:
    """The training examples that contribute most to the first few evaluation examples.

    For several outputs, the contribution to the output the model predicts (its largest
    logit) is ranked. Rows are dataset row indices, so two models' frames line up.
    """
    records = []
    for position in range(min(n_examples, view.n_eval - offset)):
        contributions = np.asarray(view.contributions[offset + position], dtype=np.float64)
        prediction = np.asarray(view.prediction[offset + position])
        output = 0
        if contributions.ndim == 2:
            output = int(np.argmax(prediction))
            contributions = contributions[:, output]
        order = np.argsort(-np.abs(contributions), kind="stable")[:top_k]
        for rank, index in enumerate(order, start=1):
            records.append({
                "eval_row": int(eval_dataset_rows[position]), "output": output,
                "prediction": float(np.ravel(prediction)[output]),
                "offset": float(np.ravel(view.offset[offset + position])[output]),
                "rank": rank, "train_row": int(train_dataset_rows[index]),
                "contribution": float(contributions[index]),
                "total_contribution": float(contributions.sum()),
            })
    return pd.DataFrame.from_records(records)


#: Evaluation rows whose full influence vector over the training set is stored.
INFLUENCE_ROWS = 40


def influence_frame(view, offset: int, eval_dataset_rows: np.ndarray,
                    train_dataset_rows: np.ndarray, n_rows: int = INFLUENCE_ROWS) -> pd.DataFrame:
    """|C(x, i)| of the first ``n_rows`` evaluation rows on every training example.

    The influence of training example i on the prediction at x is the magnitude of its
    total contribution (docs/design.md §1.3), summed over outputs by its Frobenius norm.
    Rows are dataset row indices, so a network's and a GBDT's frames line up.
    """
    count = min(n_rows, view.n_eval - offset)
    contributions = np.asarray(view.contributions[offset:offset + count], dtype=np.float64)
    if contributions.ndim == 3:
        weights = np.sqrt(np.sum(contributions ** 2, axis=2))
    else:
        weights = np.abs(contributions)
    n_train = weights.shape[1]
    return pd.DataFrame({
        "eval_row": np.repeat(eval_dataset_rows[:count], n_train).astype(np.int64),
        "train_row": np.tile(np.asarray(train_dataset_rows), count).astype(np.int64),
        "influence": weights.ravel().astype(np.float32),
    })


def assembly_frame(view, eval_dataset_rows: np.ndarray) -> pd.DataFrame:
    """How each evaluation row's prediction was assembled over training (§1.10).

    For each tenth of the training steps (boosting rounds for trees), the share of the
    prediction's total movement made in it: ``|f_j(x) - f_{j-1}(x)| / sum_j |...|`` with
    ``f_0`` the offset (Frobenius norm over outputs). Absolute changes, so the shares sum to
    1 even when later steps undo earlier ones.
    """
    path = np.asarray(view.prediction_path, dtype=np.float64)
    offset = np.asarray(view.offset, dtype=np.float64)[:, None]
    steps = np.diff(np.concatenate([offset, path], axis=1), axis=1)
    moves = np.sqrt(np.sum(steps ** 2, axis=2)) if steps.ndim == 3 else np.abs(steps)
    total = moves.sum(axis=1, keepdims=True)
    share = np.divide(moves, total, out=np.zeros_like(moves), where=total > 0)
    parts = np.arange(1, share.shape[1] + 1)
    return pd.DataFrame({
        "eval_row": np.repeat(eval_dataset_rows[:share.shape[0]], len(parts)).astype(np.int64),
        "part": np.tile(parts, share.shape[0]),
        "fraction": np.tile(np.asarray(view.path_steps, dtype=np.float64)
                            / float(np.max(view.path_steps)), share.shape[0]),
        "share": share.ravel(),
    })


def kappa_path_frame(view, offset: int) -> pd.DataFrame:
    """Mean kappa_t over evaluation and over training rows at each checkpoint (§1.5)."""
    checkpoints = np.asarray(view.checkpoints, dtype=np.float64)
    return pd.DataFrame({
        "checkpoint": checkpoints,
        "fraction": checkpoints / checkpoints.max(),
        "eval_mean_kappa": np.asarray(view.kernel_norms)[offset:].mean(axis=0),
        "train_mean_kappa": np.asarray(view.train_kernel_norms).mean(axis=0),
    })


def _analysis_row(task: CellTask, job: CellJob, status: str, **extra) -> dict:
    return {
        "analysis_id": analysis_id(job, task.dataset.source, task.seed, [task.model.name]),
        "analysis": job.value,
        "dataset": task.dataset.source,
        "seed": task.seed,
        "models": json.dumps([task.model.name]),
        "status": status,
        "finished_at": now(),
    } | extra


def _cell_jobs(task: CellTask, estimator) -> list[CellJob]:
    """The per-cell jobs of the suite's analyses that apply to this cell."""
    jobs = []
    for analysis in map(Analysis, task.analyses):
        job = analysis.cell_job
        if job is CellJob.EFFECTIVE_PARAMETERS and task.dataset.task != Task.REGRESSION:
            continue  # defined for squared loss only (docs/design.md §1.6)
        if job is CellJob.FIDELITY and not hasattr(estimator, "telescoping_fidelity"):
            continue
        jobs.append(job)
    return jobs


def _run_cell_analyses(task: CellTask, estimator, data: PreparedData, outcome: CellOutcome) -> None:
    """Kernel norms (for irregularity), effective parameters and fidelity of one cell.

    Each analysis fails on its own: its row says why, the cell's scores stay.
    """
    from . import analyses as lens_analyses

    settings = task.analysis_settings
    jobs = _cell_jobs(task, estimator)
    if not jobs:
        return
    eval_rows = evaluation_rows(len(data.X_test), settings.max_eval, task.seed)
    X_eval = data.X_test[eval_rows]

    def fail(job: CellJob, exc: Exception) -> None:
        logger.debug("analysis %s of %s failed", job, task.cell_id, exc_info=True)
        outcome.analyses.append(_analysis_row(task, job, "failed", error=f"{type(exc).__name__}: {exc}"))

    def skip(job: CellJob, exc: Exception) -> None:
        outcome.analyses.append(_analysis_row(task, job, "skipped", error=f"skipped: {exc}"))

    def succeed(job: CellJob, summary: dict, started: float, frames: dict | None = None) -> None:
        summary["seconds"] = time.perf_counter() - started
        outcome.analyses.append(_analysis_row(task, job, "ok", summary=json.dumps(summary)))
        if frames:
            outcome.frames.update(frames)
            outcome.arrays[job.value] = tuple(frames)

    try:
        lens = lens_for(estimator, data, _fit_target(data))
    except Exception as exc:
        for job in jobs:
            fail(job, exc)
        return
    if lens is None:
        return  # a plain estimator takes part in the scores only

    n_train = len(data.X_train)
    if CellJob.EFFECTIVE_PARAMETERS in jobs:
        started = time.perf_counter()
        try:
            # Dense smoother while n x n is small, a seeded sketch above (design §1.6, §1.9).
            sketch = None if n_train <= settings.max_smoother_train else settings.sketch_size
            window = ({"attribution_window": settings.attribution_window}
                      if hasattr(lens, "telescoping_fidelity") else {})
            result = lens.effective_parameters(
                X_eval, sketch_size=sketch, max_flops=settings.max_lens_gflop * 1e9,
                random_state=task.seed, **window,
            )
            succeed(CellJob.EFFECTIVE_PARAMETERS, result.as_dict(), started)
        except AnalysisTooCostlyError as exc:
            skip(CellJob.EFFECTIVE_PARAMETERS, exc)
        except Exception as exc:
            fail(CellJob.EFFECTIVE_PARAMETERS, exc)

    if CellJob.KERNEL_NORMS in jobs:
        started = time.perf_counter()
        try:
            # Norms only (design §1.5, §1.9); contributions for the displayed rows alone.
            norms = lens.kernel_norms(
                X_eval, norm=settings.norm,
                train_sample_size=settings.norm_train_sample_size, random_state=task.seed,
            )
            kappa, train_kappa = norms.max_kernel_norms, norms.max_train_kernel_norms
            kappa_bar = norms.kappa_bar
            train_kappa_bar = train_kappa / norms.train_mean
            train_rows = task.split.train if norms.train_rows is None else (
                task.split.train[norms.train_rows])
            eval_dataset_rows = task.split.test[eval_rows]
            shown = min(N_DISPLAYED, len(X_eval))
            # One view of contributions for the few rows the report shows and the rows whose
            # influence the boosting-parallels section compares across models.
            explained = min(max(shown, INFLUENCE_ROWS), len(X_eval))
            view = _displayed_view(lens, X_eval[:explained], settings)
            frames = {
                "kernel_norms": pd.DataFrame(
                    {"row": eval_dataset_rows, "kappa": kappa, "kappa_bar": kappa_bar}),
                "train_kernel_norms": pd.DataFrame(
                    {"row": train_rows, "kappa": train_kappa, "kappa_bar": train_kappa_bar}),
                "top_contributions": top_contributions(
                    view, 0, eval_dataset_rows[:explained], task.split.train, n_examples=shown),
                "influence": influence_frame(view, 0, eval_dataset_rows, task.split.train),
                # KernelNorms carries the checkpoints and per-checkpoint norms a view does.
                "kappa_path": kappa_path_frame(norms, 0),
            }
            if view.prediction_path is not None:
                frames["assembly"] = assembly_frame(view, eval_dataset_rows)
            if task.stores_irregularity_scores:
                frames["irregularity_scores"] = pd.DataFrame(
                    {"row": eval_dataset_rows, "score": _irregularity_scores(task, data, eval_rows)})
            summary = {
                "mean_kappa_bar_test": float(np.mean(kappa_bar)),
                "max_kappa_bar_test": float(np.max(kappa_bar)),
                "max_kappa_bar_train": float(np.max(train_kappa_bar)),
                "train_mean_relative_se": norms.train_mean_standard_error / norms.train_mean,
                "n_train_rows": len(train_rows),
                "n_eval": len(eval_rows),
                "norm": settings.norm,
                # how much of the displayed rows' prediction change the contributions explain
                "attribution_coverage": view.coverage,
                "attribution_window": int(view.metadata.get("attribution_window", 1)),
            }
            succeed(CellJob.KERNEL_NORMS, summary, started, frames)
        except AnalysisTooCostlyError as exc:
            skip(CellJob.KERNEL_NORMS, exc)
        except Exception as exc:
            fail(CellJob.KERNEL_NORMS, exc)

    if CellJob.FIDELITY in jobs:
        started = time.perf_counter()
        try:
            fidelity = lens_analyses.fidelity_summary(estimator, X_eval)
            succeed(CellJob.FIDELITY, {key: float(value) for key, value in fidelity.items()},
                    started)
        except Exception as exc:
            fail(CellJob.FIDELITY, exc)


def _displayed_view(lens, X_shown: np.ndarray, settings):
    """The kernel view of the few displayed evaluation rows: their contributions only.

    A network's view skips the kernel norms (no checkpoints), so it costs a replay plus the
    kernel between the displayed rows and each batch, and the optimiser's memory credited
    over the suite's attribution window (docs/design.md §1.8, §1.9).
    """
    if hasattr(lens, "telescoping_fidelity"):
        return lens.kernel_view(X_shown, norm=settings.norm, smoother=False, kernel_norms=False,
                                attribution_window=settings.attribution_window)
    return lens.kernel_view(X_shown, norm=settings.norm)


def _irregularity_scores(task: CellTask, data: PreparedData, eval_rows: np.ndarray) -> np.ndarray:
    """Irregularity of the evaluation rows, in the networks' preprocessed feature space
    (docs/design.md §1.5), whatever this cell's own preprocessing."""
    from .analyses import irregularity_scores

    if data.kind != Preprocessing.NETWORK:
        data = prepare_data(task.dataset, task.split, Preprocessing.NETWORK)
    return irregularity_scores(
        data.X_train, data.X_test[eval_rows], method=task.analysis_settings.irregularity_method,
        random_state=task.seed,
    )
