"""Analyses of a compared (network, tree) pair, computed by the driver from stored arrays.

The irregularity analysis (docs/design.md §1.5) needs both models' test predictions and
normalised kernel norms on the same evaluation rows, plus each row's irregularity score. All
of them were computed once, in the workers of the two cells (the network's cell scores the
rows), and stored; the driver only reads them, so it never preprocesses data. The curve is
then a pure function of stored arrays, so :func:`recompute_irregularity` reproduces it from
the results directory alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import numpy as np
import pandas as pd

from tabscope.datasets import Dataset, Split
from tabscope.vocabulary import Analysis, CellJob, Task

from . import analyses as lens_analyses
from .cells import now
from .store import ResultsStore, analysis_id, cell_id
from .suite import AnalysisSettings, Suite

__all__ = ["PairScheduler", "irregularity_arrays", "irregularity_from_arrays",
           "recompute_irregularity", "run_pair_analysis"]

logger = logging.getLogger(__name__)


def _require_ok(store: ResultsStore, dataset: str, seed: int, model: str) -> tuple[dict, dict]:
    """The stored cell of ``model`` and its kernel-norms analysis, both finished ok."""
    key = cell_id(dataset, model, seed)
    row = store.cell(key)
    if row is None:
        raise ValueError(f"cell {key} has not run")
    if row["status"] != "ok":
        raise ValueError(f"cell {key} failed: {row['error']}")
    norms = store.analysis(analysis_id(CellJob.KERNEL_NORMS, dataset, seed, [model]))
    if norms is None:
        raise ValueError(f"model {model!r} has no kernel view (it is not a lens)")
    if norms["status"] != "ok":
        raise ValueError(f"kernel norms of {key} failed: {norms['error']}")
    return row, norms


def irregularity_arrays(
    store: ResultsStore, dataset: str, seed: int, network: str, tree: str,
) -> pd.DataFrame:
    """Gather the stored per-example arrays of one pair: truth, predictions, kappa-bar and
    the irregularity score the network's cell computed for each evaluation row."""
    frames, scores = {}, None
    for model in (network, tree):
        row, norms = _require_ok(store, dataset, seed, model)
        predictions = store.read_frame(row["predictions_path"])
        kernel = store.read_array(norms, "kernel_norms")
        frames[model] = predictions.merge(kernel[["row", "kappa_bar"]], on="row", how="inner")
        if model == network:
            if "irregularity_scores" not in store.array_paths(norms):
                raise ValueError(
                    f"cell {cell_id(dataset, model, seed)} stored no irregularity scores; it "
                    "was run before it was the network of a compared pair: rerun it"
                )
            scores = store.read_array(norms, "irregularity_scores")
    rows = frames[network]["row"].to_numpy()
    if not np.array_equal(np.sort(rows), np.sort(frames[tree]["row"].to_numpy())):
        raise ValueError(f"{network!r} and {tree!r} were analysed on different evaluation rows")
    out = pd.DataFrame({"row": rows, "y_true": frames[network]["y_true"].to_numpy(),
                        "score": scores.set_index("row").loc[rows, "score"].to_numpy()})
    for role, model in (("network", network), ("tree", tree)):
        frame = frames[model].set_index("row").loc[rows]
        out[f"{role}_kappa_bar"] = frame["kappa_bar"].to_numpy()
        for column in frame.columns:
            if column == "y_pred" or column.startswith("proba_"):
                out[f"{role}_{column}"] = frame[column].to_numpy()
    return out


def irregularity_from_arrays(
    arrays: pd.DataFrame, task: str, network: str, tree: str, settings: AnalysisSettings,
    seed: int,
) -> tuple[pd.DataFrame, dict]:
    """The irregularity curve and its summary, from the stored per-example arrays alone."""
    predictions, kappa_bar = {}, {}
    for role, model in (("network", network), ("tree", tree)):
        if task == Task.CLASSIFICATION:
            columns = sorted((c for c in arrays.columns if c.startswith(f"{role}_proba_")),
                             key=lambda c: int(c.rsplit("_", 1)[1]))
            predictions[model] = (arrays[columns].to_numpy() if columns
                                  else arrays[f"{role}_y_pred"].to_numpy())
        else:
            predictions[model] = arrays[f"{role}_y_pred"].to_numpy()
        kappa_bar[model] = arrays[f"{role}_kappa_bar"].to_numpy()
    y_true = arrays["y_true"].to_numpy()
    scores = arrays["score"].to_numpy()
    curve = lens_analyses.irregularity_curve(
        y_true, predictions, kappa_bar, scores, network=network, tree=tree, task=task,
        quantile=settings.quantile, n_redraws=settings.n_redraws, random_state=seed,
    )
    summary = {"method": settings.irregularity_method, "n_eval": int(len(arrays))}
    for role, model in (("network", network), ("tree", tree)):
        rho, pvalue = lens_analyses.spearman(scores, kappa_bar[model])
        summary[f"{role}_spearman_score_kappa"] = rho
        summary[f"{role}_spearman_pvalue"] = pvalue
        at = curve[(curve["model"] == model)]
        summary[f"{role}_kappa_bar_p0"] = float(at[at["p"] == at["p"].min()]["kappa_bar_mean"].iloc[0])
        summary[f"{role}_kappa_bar_p1"] = float(at[at["p"] == at["p"].max()]["kappa_bar_mean"].iloc[0])
    ends = curve[curve["model"] == network].sort_values("p")
    summary["gap_p0"] = float(ends["gap_mean"].iloc[0])
    summary["gap_p1"] = float(ends["gap_mean"].iloc[-1])
    summary["relative_increase_p1"] = float(ends["relative_increase_mean"].iloc[-1])
    summary["relative_increase_p1_std"] = float(ends["relative_increase_std"].iloc[-1])
    summary["metric"] = str(ends["metric"].iloc[0])
    return curve, summary


def recompute_irregularity(store: ResultsStore, analysis: pd.Series | dict) -> pd.DataFrame:
    """Recompute a stored irregularity curve from the stored arrays (no hidden state)."""
    arrays = store.read_array(analysis, "arrays")
    network, tree = analysis["models"]
    summary = analysis["summary"]
    # Results stored before a setting was retired still name it: keep the current ones.
    known = set(AnalysisSettings.__dataclass_fields__)
    settings = AnalysisSettings(**{k: v for k, v in summary["settings"].items() if k in known})
    curve, _ = irregularity_from_arrays(arrays, summary["task"], network, tree, settings,
                                        int(analysis["seed"]))
    return curve


def run_pair_analysis(
    suite: Suite, store: ResultsStore, dataset: Dataset, split: Split, network: str, tree: str
) -> bool:
    """Compute and store the irregularity analysis of one pair on one split; True if ok."""
    settings = suite.analysis
    key = analysis_id(Analysis.IRREGULARITY, dataset.source, split.seed, [network, tree])
    row = {"analysis_id": key, "analysis": Analysis.IRREGULARITY.value, "dataset": dataset.source,
           "seed": split.seed, "models": json.dumps([network, tree])}
    try:
        arrays = irregularity_arrays(store, dataset.source, split.seed, network, tree)
        curve, summary = irregularity_from_arrays(arrays, dataset.task, network, tree,
                                                  settings, split.seed)
        summary["task"] = dataset.task
        summary["settings"] = asdict(settings)
        paths = store.write_arrays(key, {"arrays": arrays, "curve": curve})
        row |= {"status": "ok", "summary": json.dumps(summary), "arrays_path": paths}
    except Exception as exc:
        logger.debug("irregularity analysis %s failed", key, exc_info=True)
        row |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    row["finished_at"] = now()
    store.record(analyses=[row])
    return row["status"] == "ok"


class PairScheduler:
    """Runs each compared pair's analysis as soon as both of its cells are stored.

    The driver does this work between cells, while workers keep running other cells.
    A pair whose cells were all finished by an earlier run, and whose analysis is stored,
    is not recomputed.
    """

    def __init__(self, suite: Suite, store: ResultsStore,
                 splits: dict[tuple[str, int], tuple[Dataset, Split]], rerun_cells: set[str]):
        self.suite, self.store, self.splits = suite, store, splits
        self.n_failed = 0
        self._pending: dict[tuple[str, int], list[tuple[str, str]]] = {}
        self._waiting_for = set(rerun_cells)
        if Analysis.IRREGULARITY not in suite.analyses:
            return
        stored = store.analysis_states()
        for (source, seed) in splits:
            for network, tree in suite.compare:
                cells = {cell_id(source, model, seed) for model in (network, tree)}
                key = analysis_id(Analysis.IRREGULARITY, source, seed, [network, tree])
                if cells & rerun_cells or stored.get(key) != "ok":
                    self._pending.setdefault((source, seed), []).append((network, tree))

    def cell_stored(self, cell: str, source: str, seed: int) -> None:
        """Note that ``cell`` is stored; run the pairs of its split that became ready."""
        self._waiting_for.discard(cell)
        self._run_ready((source, seed))

    def finish(self) -> int:
        """Run every pair still pending (their cells may have failed); return failures."""
        self._waiting_for.clear()
        for split_key in list(self._pending):
            self._run_ready(split_key)
        return self.n_failed

    def _run_ready(self, split_key: tuple[str, int]) -> None:
        source, seed = split_key
        dataset, split = self.splits[split_key]
        still = []
        for network, tree in self._pending.get(split_key, []):
            if {cell_id(source, network, seed), cell_id(source, tree, seed)} & self._waiting_for:
                still.append((network, tree))
            elif not run_pair_analysis(self.suite, self.store, dataset, split, network, tree):
                self.n_failed += 1
        if still:
            self._pending[split_key] = still
        else:
            self._pending.pop(split_key, None)
