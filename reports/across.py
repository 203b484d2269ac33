"""Statistics that read the scores across datasets: normalised scores, ranks with the
Friedman test and its Nemenyi post-hoc (a critical-difference diagram), pairwise win rates.

Every function takes the per-seed frame of :func:`per_seed_scores` (one row per ok cell:
dataset, seed, model and its primary metric), so the statistics see each (dataset, seed)
as one block. Nothing is recomputed from models.

Sources: the normalisation follows Grinsztajn, Oyallon & Varoquaux (2022, §3.3), the ranks,
Friedman test and critical difference Demšar (2006), the win rates TabArena (Erickson et al.
2025). The Friedman test is scipy's, the Nemenyi post-hoc scikit-posthocs'.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from tabscope.vocabulary import Metric, Task, TrialStatus, choices

__all__ = [
    "MIN_DATASETS",
    "TIE_TOLERANCE",
    "friedman_nemenyi",
    "normalised_scores",
    "normalised_summary",
    "normalised_trial_curves",
    "per_seed_scores",
    "rank_blocks",
    "selection_curve",
    "win_rates",
]

#: Fewest datasets for a Friedman test and critical-difference diagram. Demšar (2006, §3.2.2)
#: warns that the test's chi-square approximation needs "N > 10 and k > 5" to be exact and
#: loses its power below a handful of data sets; tabscope draws the diagram from 5 datasets
#: on and says that it is indicative below 10.
MIN_DATASETS = 5
#: Two scores tie when they differ by at most this share of the larger magnitude.
TIE_TOLERANCE = 0.005


def per_seed_scores(cells: pd.DataFrame) -> pd.DataFrame:
    """The primary metric of every ok cell, one row per (dataset, seed, model).

    Parameters
    ----------
    cells : pandas.DataFrame
        Cell rows as returned by ``ResultsStore.cells()``.

    Returns
    -------
    scores : pandas.DataFrame
        Columns ``dataset``, ``dataset_name``, ``task``, ``seed``, ``model``, ``role``,
        ``metric``, ``higher_is_better`` and ``value``; cells of an unknown task or without
        their primary metric are left out.
    """
    columns = ["dataset", "dataset_name", "task", "seed", "model", "role", "metric",
               "higher_is_better", "value"]
    rows = []
    ok = cells[cells["status"] == "ok"] if not cells.empty else cells
    for _, cell in ok.iterrows():
        if cell["task"] not in choices(Task):
            continue
        metric = Metric.primary(cell["task"])
        value = cell.get(metric.value, np.nan)
        if value is None or not np.isfinite(value):
            continue
        rows.append({"dataset": cell["dataset"], "dataset_name": cell["dataset_name"],
                     "task": cell["task"], "seed": int(cell["seed"]), "model": cell["model"],
                     "role": cell["role"], "metric": metric.value,
                     "higher_is_better": metric.greater_is_better, "value": float(value)})
    return pd.DataFrame(rows, columns=columns)


def normalised_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Each dataset's scores rescaled to [0, 1]: 1 = the best model, 0 = the reference low.

    On each dataset, with every score oriented so that larger is better, the best model's
    mean over seeds maps to 1 and the worst model's mean to 0 (Grinsztajn et al. 2022 take
    a low quantile of a large pool of random-search models as the low; with a handful of
    models the worst mean is that quantile). A seed can land above 1 or below 0; values
    below 0 are clipped to 0, as in Grinsztajn et al., so one failure of a model does not
    outweigh the rest of the benchmark. A dataset where all means are equal is left out.

    Parameters
    ----------
    scores : pandas.DataFrame
        The output of :func:`per_seed_scores`.

    Returns
    -------
    normalised : pandas.DataFrame
        ``scores`` with ``normalised`` added (datasets with a single model or equal means
        dropped).
    """
    frames = []
    for _, group in scores.groupby("dataset", sort=False):
        sign = 1.0 if bool(group["higher_is_better"].iloc[0]) else -1.0
        means = (sign * group["value"]).groupby(group["model"]).mean()
        best, low = means.max(), means.min()
        if len(means) < 2 or not best > low:
            continue
        frames.append(group.assign(
            normalised=np.clip((sign * group["value"] - low) / (best - low), 0.0, None)))
    if not frames:
        return scores.assign(normalised=pd.Series(dtype=float)).iloc[:0]
    return pd.concat(frames, ignore_index=True)


def normalised_summary(normalised: pd.DataFrame) -> pd.DataFrame:
    """Per model: the normalised score averaged over datasets, its spread over seeds.

    For each seed, a model's normalised scores are averaged over the datasets; the table
    gives the mean and standard deviation of that average over seeds, and the per-dataset
    mean.

    Returns
    -------
    summary : pandas.DataFrame
        Columns ``model``, ``role``, ``mean``, ``std`` (over seeds; NaN for one seed),
        ``n_datasets`` and ``n_seeds``, best first.
    """
    columns = ["model", "role", "mean", "std", "n_datasets", "n_seeds"]
    if normalised.empty:
        return pd.DataFrame(columns=columns)
    per_seed = normalised.groupby(["model", "role", "seed"], sort=False)["normalised"].mean()
    grouped = per_seed.groupby(level=["model", "role"], sort=False)
    summary = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1),
                            "n_seeds": grouped.size()}).reset_index()
    counts = normalised.groupby("model")["dataset"].nunique()
    summary["n_datasets"] = summary["model"].map(counts).astype(int)
    return summary.sort_values("mean", ascending=False, kind="stable")[columns].reset_index(drop=True)


def rank_blocks(scores: pd.DataFrame) -> pd.DataFrame:
    """Ranks of the models in every (dataset, seed) block where all of them have a score.

    Rank 1 is the best score of the block (direction from the metric); equal scores share
    the average of their ranks, as in Demšar (2006).

    Returns
    -------
    ranks : pandas.DataFrame
        Index (dataset, seed), one column per model; blocks missing a model are dropped.
    """
    if scores.empty:
        return pd.DataFrame()
    oriented = scores.assign(oriented=np.where(scores["higher_is_better"], -1.0, 1.0)
                             * scores["value"])
    wide = oriented.pivot_table(index=["dataset", "seed"], columns="model", values="oriented",
                                aggfunc="first").dropna()
    models = [m for m in dict.fromkeys(scores["model"]) if m in wide.columns]
    return wide[models].rank(axis=1, method="average")


def friedman_nemenyi(scores: pd.DataFrame, alpha: float = 0.05) -> dict:
    """Friedman test over (dataset, seed) blocks, then the Nemenyi post-hoc test.

    Parameters
    ----------
    scores : pandas.DataFrame
        The output of :func:`per_seed_scores`.
    alpha : float, default=0.05
        Significance level of the post-hoc test and critical difference.

    Returns
    -------
    result : dict
        ``ranks`` (the blocks' ranks), ``mean_ranks`` (Series, best first), ``n_blocks``,
        ``n_datasets``, ``n_models``, ``statistic`` and ``pvalue`` of
        :func:`scipy.stats.friedmanchisquare` (NaN with fewer than three models or two
        blocks), ``critical_difference`` (Nemenyi, Demšar's eq. for q_alpha from the
        studentised range), ``nemenyi`` (a model × model frame of p-values from
        :func:`scikit_posthocs.posthoc_nemenyi_friedman`, or None) and ``enough`` (whether
        there are at least :data:`MIN_DATASETS` datasets and three models), ``alpha``.
    """
    ranks = rank_blocks(scores)
    n_blocks, n_models = ranks.shape if not ranks.empty else (0, 0)
    n_datasets = ranks.index.get_level_values("dataset").nunique() if n_blocks else 0
    result = {"ranks": ranks, "mean_ranks": ranks.mean().sort_values() if n_blocks else pd.Series(dtype=float),
              "n_blocks": int(n_blocks), "n_datasets": int(n_datasets),
              "n_models": int(n_models), "statistic": np.nan, "pvalue": np.nan,
              "critical_difference": np.nan, "nemenyi": None, "alpha": alpha,
              "enough": bool(n_datasets >= MIN_DATASETS and n_models >= 3)}
    if n_models < 3 or n_blocks < 2:
        return result
    statistic, pvalue = stats.friedmanchisquare(*(ranks[m].to_numpy() for m in ranks.columns))
    q_alpha = stats.studentized_range.ppf(1 - alpha, n_models, np.inf) / np.sqrt(2)
    result.update(statistic=float(statistic), pvalue=float(pvalue),
                  critical_difference=float(q_alpha * np.sqrt(
                      n_models * (n_models + 1) / (6.0 * n_blocks))))
    import scikit_posthocs

    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(ranks.to_numpy())
    nemenyi.index = nemenyi.columns = list(ranks.columns)
    result["nemenyi"] = nemenyi
    return result


def _outcome_counts(a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
    """+1 (a better), 0 (tie), −1 (b better) for oriented scores (larger is better)."""
    scale = np.maximum(np.abs(a), np.abs(b))
    difference = a - b
    return np.where(np.abs(difference) <= tolerance * scale, 0, np.sign(difference)).astype(int)


def win_rates(scores: pd.DataFrame, tolerance: float = TIE_TOLERANCE, n_boot: int = 1000,
              confidence: float = 0.95, random_state: int = 0) -> pd.DataFrame:
    """Pairwise win rates over (dataset, seed) blocks with bootstrap confidence intervals.

    In a block, model A beats B when its score is better by more than ``tolerance`` times
    the larger of the two magnitudes; otherwise they tie. The win rate counts a tie as half
    a win: (wins + ties / 2) / blocks. The interval is a percentile bootstrap that resamples
    datasets (with their seeds), since seeds of one dataset share its data.

    Parameters
    ----------
    scores : pandas.DataFrame
        The output of :func:`per_seed_scores`.
    tolerance : float, default=TIE_TOLERANCE
        Relative tie tolerance.
    n_boot : int, default=1000
        Bootstrap resamples.
    confidence : float, default=0.95
        Coverage of the interval.
    random_state : int, default=0
        Seed of the bootstrap.

    Returns
    -------
    rates : pandas.DataFrame
        One row per pair, a network first where there is one, else in suite order: ``model_a``, ``model_b``,
        ``role_a``, ``role_b``, ``wins``, ``ties``, ``losses``, ``n_blocks``,
        ``n_datasets``, ``win_rate``, ``low``, ``high``.
    """
    columns = ["model_a", "model_b", "role_a", "role_b", "wins", "ties", "losses",
               "n_blocks", "n_datasets", "win_rate", "low", "high"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    oriented = scores.assign(oriented=np.where(scores["higher_is_better"], 1.0, -1.0)
                             * scores["value"])
    wide = oriented.pivot_table(index=["dataset", "seed"], columns="model", values="oriented",
                                aggfunc="first")
    roles = dict(zip(scores["model"], scores["role"]))
    # Networks first, so every network-versus-GBDT pair reads from the network's side.
    models = sorted(dict.fromkeys(scores["model"]), key=lambda m: roles.get(m) != "network")
    rng = np.random.default_rng(random_state)
    rows = []
    for a, b in itertools.combinations(models, 2):
        both = wide[[a, b]].dropna()
        if both.empty:
            continue
        outcome = _outcome_counts(both[a].to_numpy(), both[b].to_numpy(), tolerance)
        datasets = both.index.get_level_values("dataset").to_numpy()
        names = np.unique(datasets)
        per_dataset = [(np.sum(outcome[datasets == d] == 1) + 0.5 * np.sum(outcome[datasets == d] == 0),
                        np.sum(datasets == d)) for d in names]
        points, counts = np.array(per_dataset, dtype=float).T
        draws = rng.integers(0, len(names), size=(n_boot, len(names)))
        boot = points[draws].sum(axis=1) / counts[draws].sum(axis=1)
        tail = (1 - confidence) / 2
        rows.append({"model_a": a, "model_b": b, "role_a": roles.get(a), "role_b": roles.get(b),
                     "wins": int(np.sum(outcome == 1)), "ties": int(np.sum(outcome == 0)),
                     "losses": int(np.sum(outcome == -1)), "n_blocks": len(outcome),
                     "n_datasets": len(names), "win_rate": float(points.sum() / counts.sum()),
                     "low": float(np.quantile(boot, tail)),
                     "high": float(np.quantile(boot, 1 - tail))})
    return pd.DataFrame(rows, columns=columns)


#: Random orderings of each cell's trials behind the curves against the number of trials.
N_ORDERINGS = 200


def selection_curve(trials: pd.DataFrame, maximize: bool, n_orderings: int = N_ORDERINGS,
                    seed: int = 0) -> np.ndarray:
    """Test scores of the validation-selected trial among the first k, per ordering.

    The curve of Grinsztajn et al. (2022, figures 1-3): had the study run only k trials,
    in a random order, the configuration with the best validation score among them would
    have been selected; its test score is the curve's value at k.

    Parameters
    ----------
    trials : DataFrame
        One cell's trials, with ``status``, ``validation_score`` and ``test_score``.
    maximize : bool
        Whether a higher validation score is better.

    Returns
    -------
    ndarray of shape (n_orderings, n_trials)
        NaN where none of the first k trials completed.
    """
    complete = (trials["status"] == TrialStatus.COMPLETE).to_numpy()
    validation = trials["validation_score"].to_numpy(dtype=np.float64)
    test = trials["test_score"].to_numpy(dtype=np.float64)
    key = np.where(complete, validation if maximize else -validation, -np.inf)
    rng = np.random.default_rng(seed)
    out = np.full((n_orderings, len(trials)), np.nan)
    for row in range(n_orderings):
        order = rng.permutation(len(trials))
        best = -np.inf
        chosen = np.nan
        for k, index in enumerate(order):
            if key[index] > best:
                best, chosen = key[index], test[index]
            out[row, k] = chosen
    return out


def normalised_trial_curves(trials: pd.DataFrame) -> pd.DataFrame:
    """Normalised test score of the validation-selected configuration against the number
    of trials, averaged over datasets (Grinsztajn et al. 2022, figure 1).

    For each cell, the median over random orderings of :func:`selection_curve`. On each
    dataset, with scores oriented so that larger is better, every model's curve (mean over
    seeds) is rescaled so that the best value any model reaches at any budget is 1 and the
    lowest is 0, as :func:`normalised_scores` does for single scores. For each seed the
    normalised curves are averaged over the datasets; the frame gives their mean and spread
    over seeds. Budgets beyond a cell's number of trials are left out.

    Parameters
    ----------
    trials : pandas.DataFrame
        Trial rows joined with their cells: ``cell_id``, ``dataset``, ``task``, ``model``,
        ``seed``, ``status``, ``validation_score`` and ``test_score``.

    Returns
    -------
    curves : pandas.DataFrame
        Columns ``model``, ``n_trials``, ``mean``, ``std`` (over seeds) and ``n_datasets``.
    """
    columns = ["model", "n_trials", "mean", "std", "n_datasets"]
    rows = []
    for (dataset, model, seed), cell in trials.groupby(["dataset", "model", "seed"], sort=False):
        metric = Metric.primary(cell["task"].iloc[0])
        with np.errstate(all="ignore"):
            curve = np.nanmedian(selection_curve(cell, metric.greater_is_better), axis=0)
        sign = 1.0 if metric.greater_is_better else -1.0
        rows += [{"dataset": dataset, "model": model, "seed": seed, "n_trials": k + 1,
                  "value": sign * value} for k, value in enumerate(curve) if np.isfinite(value)]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    normalised = []
    for _, group in frame.groupby("dataset", sort=False):
        means = group.groupby(["model", "n_trials"])["value"].mean()
        best, low = means.max(), means.min()
        if not best > low:
            continue
        normalised.append(group.assign(
            normalised=np.clip((group["value"] - low) / (best - low), 0.0, None)))
    if not normalised:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(normalised, ignore_index=True)
    per_seed = frame.groupby(["model", "seed", "n_trials"]).agg(
        normalised=("normalised", "mean"), n_datasets=("dataset", "nunique")).reset_index()
    summary = per_seed.groupby(["model", "n_trials"]).agg(
        mean=("normalised", "mean"), std=("normalised", "std"),
        n_datasets=("n_datasets", "min")).reset_index()
    return summary[columns]
