"""The irregularity curve (the paper's figure 5): the network-vs-GBDT metric gap and each
model's mean ``kappa_bar`` on test subsets with a growing share of irregular examples.

:func:`irregularity_curve` runs named steps: check the settings, read the per-example arrays
and losses, split the examples into an irregular and a regular pool, draw the subsets with
common random numbers, measure the gap at ``p = 0`` that scales the relative increase, and
write one row per proportion and model (docs/design.md §1.5).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from tabscope.validation import Interval, StrOptions, one_of, validate_parameters
from tabscope.vocabulary import Task

from ._inputs import COUNT, as_1d_finite
from ._losses import CLASSIFICATION_METRICS, REGRESSION_METRICS, aggregate, per_example_losses

__all__ = ["DEFAULT_PROPORTIONS", "irregularity_curve"]

#: Shares of irregular examples at which :func:`irregularity_curve` evaluates by default.
DEFAULT_PROPORTIONS = np.linspace(0.0, 1.0, 11)
DEFAULT_PROPORTIONS.flags.writeable = False

#: Spread quantiles reported by :func:`irregularity_curve` next to the standard deviation.
_SPREAD_QUANTILES = (0.1, 0.9)

_CONSTRAINTS = {
    "task": [one_of(Task)],
    "metric": [StrOptions({*REGRESSION_METRICS, *CLASSIFICATION_METRICS}), None],
    "quantile": [Interval(Real, 0, 1, closed="neither")],
    "n_redraws": COUNT,
    "min_pool_size": COUNT,
    "predictions": [Mapping],
    "kappa_bar": [Mapping, None],
    "network": [str],
    "tree": [str],
}


def irregularity_curve(
    y_true: ArrayLike,
    predictions: Mapping[str, ArrayLike],
    kappa_bar: Mapping[str, ArrayLike] | None,
    scores: ArrayLike,
    *,
    network: str,
    tree: str,
    task: str,
    metric: str | None = None,
    proportions: ArrayLike = DEFAULT_PROPORTIONS,
    quantile: float = 0.9,
    n_redraws: int = 20,
    random_state: int | np.random.Generator | None = 0,
    classes: ArrayLike | None = None,
    min_pool_size: int = 5,
) -> pd.DataFrame:
    """Metric gap and ``kappa_bar`` on test subsets with a growing share of irregular examples.

    The paper's figure 5 (docs/design.md §1.5). The evaluation examples are split by their
    irregularity ``scores`` into an irregular pool ``I`` (score strictly above the
    ``quantile`` quantile of ``scores``) and a regular pool ``R`` (the rest). For each
    proportion ``p``, subsets of ``size = min(|I|, |R|)`` examples are drawn, ``round(p *
    size)`` (half up) of them from ``I`` and the rest from ``R``, without replacement within
    a pool. On each subset each model's loss-type metric is computed, the gap
    ``Delta(p) = metric_network - metric_tree`` (positive: the network is worse), its
    relative increase and each model's mean ``kappa_bar``.

    Redraws use common random numbers: redraw ``r`` shuffles each pool once and its subset
    at every ``p`` takes the first examples of the two shuffles. Each subset is still a
    uniform draw for its ``p``, while the curves of one redraw vary smoothly in ``p``, so
    differences between proportions are measured with little noise. When ``size`` equals a
    pool's size, that pool's share is the same at every redraw (for the default
    ``quantile=0.9``, the whole of ``I`` at ``p = 1``): the metrics, gap and ``kappa_bar``
    there have no spread (0 up to rounding); the relative increase still varies through its
    ``Delta_r(0)``.

    The relative increase of redraw ``r`` is ``(Delta_r(p) - Delta_r(0)) / |mean_r
    Delta_r(0)|``: a paired difference (same redraw, so the shared regular examples cancel)
    over the mean gap at ``p = 0`` (one stable denominator; a per-redraw ``Delta_r(0)`` near
    zero would give a heavy-tailed ratio). Its mean is therefore ``(mean Delta(p) - mean
    Delta(0)) / |mean Delta(0)|``. ``Delta(0)`` is always computed on the ``p = 0`` subsets,
    whether or not 0 is in ``proportions``. If the mean gap at ``p = 0`` is exactly 0 (the
    two models make identical errors on the regular subsets), the relative increase has no
    scale: it is NaN, with a RuntimeWarning, and ``frame.attrs["relative_increase_note"]``
    says why.

    Parameters
    ----------
    y_true : array-like of shape (m,)
        Targets of the evaluation examples (class labels for classification).
    predictions : dict of str to array-like
        Exactly the two models ``network`` and ``tree``. Regression: predicted values of
        shape (m,). Classification: either class probabilities of shape (m, C) (as from
        ``predict_proba``; columns ordered as ``classes``, or by integer code when
        ``classes`` is None) or predicted labels of shape (m,). A 1-D array is always read
        as labels, a 2-D one as probabilities.
    kappa_bar : dict of str to array-like of shape (m,), or None
        Each model's ``kappa_bar`` on the evaluation examples
        (:func:`normalized_kernel_norms`). A model left out (e.g. a network without a lens)
        gets NaN in the ``kappa_bar_*`` columns.
    scores : array-like of shape (m,)
        Irregularity scores of the evaluation examples (:func:`irregularity_scores`).
    network, tree : str
        Names, in ``predictions``, of the neural network and the GBDT.
    task : {"regression", "classification"}
        The kind of target.
    metric : str, default=None
        A loss-type metric (larger is worse): regression ``"rmse"`` (default), ``"mse"``,
        ``"mae"``; classification ``"log_loss"`` (default when both models give
        probabilities; natural log, probabilities floored at machine epsilon) or
        ``"error_rate"`` (default when either gives labels; probabilities are turned into
        their argmax class).
    proportions : array-like of float in [0, 1], default=np.linspace(0, 1, 11)
        The shares ``p`` of irregular examples, without repeats; rows follow this order.
    quantile : float in (0, 1), default=0.9
        Scores strictly above this quantile of ``scores`` make the irregular pool.
    n_redraws : int, default=20
        Number of seeded redraws per proportion; at least 1.
    random_state : int, numpy Generator or None, default=0
        Seed of the redraws (``numpy.random.default_rng``); the same int gives the same frame.
    classes : array-like of shape (C,), default=None
        Labels of the probability columns (the estimator's ``classes_``); needed when
        ``y_true`` does not hold integer codes ``0..C-1``. Classification only.
    min_pool_size : int, default=5
        Fewest examples each pool must have; with fewer the curve is mostly noise.

    Returns
    -------
    curve : pandas.DataFrame
        One row per (p, model), with columns ``p``, ``model``, ``role`` ("network" or
        "tree"), ``metric`` (its name), ``metric_mean``, ``metric_std``, ``metric_q10``,
        ``metric_q90`` (the model's metric over the redraws), ``gap_*`` and
        ``relative_increase_*`` (the pair's gap, repeated on both models' rows),
        ``kappa_bar_*`` (the model's mean ``kappa_bar`` on the subset), ``n_subset``,
        ``n_irregular`` (examples drawn from ``I``) and ``n_redraws``. ``*_std`` is the
        population standard deviation over the redraws and ``*_q10`` / ``*_q90`` their 10%
        and 90% quantiles. ``frame.attrs`` records the threshold, pool sizes, the mean gap
        at ``p = 0`` and the settings.

    Raises
    ------
    ValueError
        For arrays of mismatched lengths or non-finite values, model names that are not
        ``network`` / ``tree``, an unknown ``task`` or ``metric``, proportions outside
        [0, 1], ``quantile`` outside (0, 1), ``n_redraws < 1`` or a pool smaller than
        ``min_pool_size``.
    TypeError
        If ``predictions`` / ``kappa_bar`` are not dicts or a count is not an integer.
    """
    validate_parameters(
        _CONSTRAINTS,
        {"task": task, "metric": metric, "quantile": quantile, "n_redraws": n_redraws,
         "min_pool_size": min_pool_size, "predictions": predictions, "kappa_bar": kappa_bar,
         "network": network, "tree": tree},
        caller="irregularity_curve",
    )
    roles = _check_models(predictions, kappa_bar, network, tree)
    proportion_values = _check_proportions(proportions)
    inputs = _read_inputs(y_true, predictions, kappa_bar, scores, roles, task, metric, classes)
    pools = _split_pools(inputs.scores, quantile, min_pool_size)
    draws = _CommonRandomDraws(pools, n_redraws, random_state)
    reference = _reference_gap(inputs, draws, network, tree)

    rows = []
    for p in proportion_values.tolist():
        rows += _rows_at(float(p), inputs, draws, reference, roles, network, tree)
    frame = pd.DataFrame(rows)
    frame.attrs.update({
        "task": task,
        "metric": inputs.metric,
        "network": network,
        "tree": tree,
        "quantile": float(quantile),
        "threshold": pools.threshold,
        "n_irregular_pool": int(pools.irregular.size),
        "n_regular_pool": int(pools.regular.size),
        "subset_size": int(pools.size),
        "gap_at_zero_mean": float(reference.gap.mean()),
        "random_state": random_state if isinstance(random_state, (int, type(None))) else None,
        "relative_increase_note": reference.note,
    })
    return frame


# -------------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class _Inputs:
    """The checked per-example arrays: the metric, every example's loss per model, each
    model's ``kappa_bar`` (models without one left out) and the irregularity scores."""

    metric: str
    losses: dict[str, np.ndarray]
    kappas: dict[str, np.ndarray]
    scores: np.ndarray

    def metrics_on(self, subsets: np.ndarray) -> dict[str, np.ndarray]:
        """Each model's metric on each subset (one row of example positions per redraw)."""
        return {name: aggregate(loss[subsets].mean(axis=1), self.metric)
                for name, loss in self.losses.items()}


def _read_inputs(y_true, predictions, kappa_bar, scores, roles, task, metric, classes) -> _Inputs:
    """Check the arrays against each other, choose the metric and compute the losses."""
    if task == Task.REGRESSION:
        truth = as_1d_finite(y_true, "y_true")
        allowed, default_metric = REGRESSION_METRICS, REGRESSION_METRICS[0]
        if classes is not None:
            raise ValueError("classes applies to classification only; got task='regression'")
    else:
        truth = np.asarray(y_true)
        if truth.ndim != 1:
            raise ValueError(f"y_true must be a 1-D array of labels, got shape {truth.shape}")
        allowed = CLASSIFICATION_METRICS
        all_proba = all(np.ndim(predictions[name]) == 2 for name in roles)
        default_metric = "log_loss" if all_proba else "error_rate"
    metric = default_metric if metric is None else metric
    if metric not in allowed:
        raise ValueError(f"metric for task={task!r} must be one of {allowed}, got {metric!r}")
    m = truth.shape[0]
    if m == 0:
        raise ValueError("y_true must hold at least one example")
    score_values = as_1d_finite(scores, "scores", length=m)
    losses = {
        name: per_example_losses(truth, predictions[name], f"predictions[{name!r}]", task,
                                 metric, classes)
        for name in roles
    }
    kappas = {
        name: as_1d_finite(values, f"kappa_bar[{name!r}]", length=m)
        for name, values in (kappa_bar or {}).items()
    }
    return _Inputs(metric=metric, losses=losses, kappas=kappas, scores=score_values)


@dataclass(frozen=True)
class _Pools:
    """Positions of the irregular (score above the threshold) and regular examples."""

    threshold: float
    irregular: np.ndarray
    regular: np.ndarray

    @property
    def size(self) -> int:
        """Examples per subset: as many as the smaller pool holds."""
        return min(self.irregular.size, self.regular.size)


def _split_pools(scores: np.ndarray, quantile: float, min_pool_size: int) -> _Pools:
    """Split the examples at the ``quantile`` quantile of their scores."""
    threshold = float(np.quantile(scores, quantile))
    is_irregular = scores > threshold
    pools = _Pools(threshold, np.flatnonzero(is_irregular), np.flatnonzero(~is_irregular))
    for pool, count in (("irregular", pools.irregular.size), ("regular", pools.regular.size)):
        if count < min_pool_size:
            raise ValueError(
                f"too few {pool} examples: {count} with scores "
                f"{'above' if pool == 'irregular' else 'at or below'} the quantile={quantile} "
                f"threshold {threshold:.6g}, fewer than min_pool_size={min_pool_size}; use more "
                "evaluation examples or another quantile"
            )
    return pools


class _CommonRandomDraws:
    """Redraw ``r`` shuffles each pool once; its subset at every ``p`` takes the first
    examples of the two shuffles."""

    def __init__(self, pools: _Pools, n_redraws: int, random_state):
        rng = np.random.default_rng(random_state)
        self.n_redraws = n_redraws
        self.size = pools.size
        self._irregular = np.stack([rng.permutation(pools.irregular) for _ in range(n_redraws)])
        self._regular = np.stack([rng.permutation(pools.regular) for _ in range(n_redraws)])

    def n_from_irregular(self, p: float) -> int:
        """``round(p * size)``, half up."""
        return int(np.floor(p * self.size + 0.5))

    def subsets(self, n_from_irregular: int) -> np.ndarray:
        """Example positions, one row per redraw."""
        return np.concatenate(
            [self._irregular[:, :n_from_irregular],
             self._regular[:, : self.size - n_from_irregular]],
            axis=1,
        )


@dataclass(frozen=True)
class _Reference:
    """The gap on the ``p = 0`` subsets, per redraw, and the scale of the relative increase
    (NaN, with ``note`` saying why, when the mean gap there is exactly 0)."""

    gap: np.ndarray
    scale: float
    note: str | None


def _reference_gap(inputs: _Inputs, draws: _CommonRandomDraws, network: str,
                   tree: str) -> _Reference:
    reference = inputs.metrics_on(draws.subsets(0))
    gap = reference[network] - reference[tree]
    scale = abs(float(gap.mean()))
    note = None
    if scale == 0:
        note = (
            "the mean gap at p = 0 is exactly 0, so the relative increase has no scale and "
            "is NaN"
        )
        warnings.warn(f"irregularity_curve: {note}", RuntimeWarning, stacklevel=3)
    return _Reference(gap, scale, note)


def _rows_at(p: float, inputs: _Inputs, draws: _CommonRandomDraws, reference: _Reference,
             roles: dict[str, str], network: str, tree: str) -> list[dict]:
    """The curve's rows at one proportion, one per model."""
    n_from_irregular = draws.n_from_irregular(p)
    subsets = draws.subsets(n_from_irregular)
    model_metrics = inputs.metrics_on(subsets)
    gap = model_metrics[network] - model_metrics[tree]
    if reference.note is None:
        relative = (gap - reference.gap) / reference.scale
    else:
        relative = np.full(draws.n_redraws, np.nan)
    shared = {**_spread(gap, "gap"), **_spread(relative, "relative_increase")}
    rows = []
    for name, role in roles.items():
        if name in inputs.kappas:
            kappa_means = inputs.kappas[name][subsets].mean(axis=1)
        else:
            kappa_means = np.full(draws.n_redraws, np.nan)
        rows.append({
            "p": p,
            "model": name,
            "role": role,
            "metric": inputs.metric,
            **_spread(model_metrics[name], "metric"),
            **shared,
            **_spread(kappa_means, "kappa_bar"),
            "n_subset": draws.size,
            "n_irregular": n_from_irregular,
            "n_redraws": draws.n_redraws,
        })
    return rows


def _check_proportions(proportions: ArrayLike) -> np.ndarray:
    try:
        values = np.asarray(proportions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"proportions must be a sequence of numbers: {exc}") from exc
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError("proportions must be a non-empty 1-D sequence of numbers in [0, 1]")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values > 1):
        raise ValueError(f"proportions must lie in [0, 1], got {values.tolist()}")
    if np.unique(values).shape[0] != values.shape[0]:
        raise ValueError("proportions must not repeat a value")
    return values


def _check_models(
    predictions: Mapping,
    kappa_bar: Mapping | None,
    network: str,
    tree: str,
) -> dict[str, str]:
    """Map each model name to its role, checking the keys of both dicts (their types are
    checked by the constraint table)."""
    for argument, name in (("network", network), ("tree", tree)):
        if name not in predictions:
            raise ValueError(
                f"{argument}={name!r} is not a key of predictions {sorted(map(str, predictions))}"
            )
    if network == tree:
        raise ValueError(f"network and tree must name different models, both are {network!r}")
    roles = {network: "network", tree: "tree"}
    for argument, mapping in (("predictions", predictions), ("kappa_bar", kappa_bar or {})):
        unknown = [key for key in mapping if key not in roles]
        if unknown:
            raise ValueError(
                f"{argument} has unknown model name(s) {unknown}; expected only "
                f"network={network!r} and tree={tree!r}"
            )
    return roles


def _spread(values: np.ndarray, prefix: str) -> dict[str, float]:
    """Mean, population std and spread quantiles of one quantity over the redraws."""
    low, high = np.quantile(values, _SPREAD_QUANTILES)
    return {
        f"{prefix}_mean": float(values.mean()),
        f"{prefix}_std": float(values.std()),
        f"{prefix}_q10": float(low),
        f"{prefix}_q90": float(high),
    }
