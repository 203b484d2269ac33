"""The lens analyses run per benchmark cell, as pure functions (DESIGN.md 1.1, 1.5, 1.6).

Everything here takes :class:`~tabscope.models.KernelView` objects, fitted estimators or
plain arrays and returns numbers, arrays or tidy data frames; nothing trains a model or
touches a results store, so the runner can call these on whatever the lenses produce.

- :func:`irregularity_scores` -- how unlike the training data each evaluation example is,
  model-agnostically (k-NN distance, Mahalanobis distance, IsolationForest).
- :func:`normalized_kernel_norms` and :func:`kernel_norm_summary` -- the normalised kernel
  weight norm ``kappa_bar(x) = kappa(x) / mean_{i in train} kappa(x_i)``.
- :func:`irregularity_curve` -- the paper's figure 5: the network-vs-GBDT metric gap and
  each model's mean ``kappa_bar`` on test subsets with a growing share of irregular examples.
- :func:`effective_parameters` -- ``p_E = (n / |E|) sum_{x in E} ||s_T(x)||^2`` from a
  squared-loss view's smoother.
- :func:`fidelity_summary` -- the telescoping network's fidelity on an evaluation set.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from sklearn.covariance import LedoitWolf
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted

from tabscope.models.kernel_view import KernelView

__all__ = [
    "CLASSIFICATION_METRICS",
    "DEFAULT_PROPORTIONS",
    "IRREGULARITY_METHODS",
    "REGRESSION_METRICS",
    "effective_parameters",
    "fidelity_summary",
    "irregularity_curve",
    "irregularity_scores",
    "kernel_norm_summary",
    "normalized_kernel_norms",
    "spearman",
]

#: Irregularity scores :func:`irregularity_scores` can compute.
IRREGULARITY_METHODS = ("knn", "mahalanobis", "isolation_forest")

#: Loss-type metrics of :func:`irregularity_curve` (larger is worse), per task.
REGRESSION_METRICS = ("rmse", "mse", "mae")
CLASSIFICATION_METRICS = ("error_rate", "log_loss")

#: Shares of irregular examples at which :func:`irregularity_curve` evaluates by default.
DEFAULT_PROPORTIONS = np.linspace(0.0, 1.0, 11)
DEFAULT_PROPORTIONS.flags.writeable = False

#: Probability floor of the log loss, so that a confident mistake costs a large finite loss.
_LOG_LOSS_EPS = np.finfo(np.float64).eps
#: How far rows of a probability array may stray from summing to 1 before it is rejected.
_PROBA_SUM_TOL = 1e-3
#: Spread quantiles reported by :func:`irregularity_curve` next to the standard deviation.
_SPREAD_QUANTILES = (0.1, 0.9)


# --------------------------------------------------------------------------- validation


def _as_2d_finite(X: ArrayLike, name: str) -> np.ndarray:
    """``X`` as a finite float64 array of shape (n_samples, n_features), or a clear error."""
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(f"{name} must be a dense array, got a sparse matrix; call .toarray()")
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), "
            f"got an array with {array.ndim} dimension(s)"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got {array.shape}")
    try:
        array = array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}: {exc}") from exc
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite; it contains NaN or infinity")
    return array


def _as_1d_finite(values: ArrayLike, name: str, length: int | None = None) -> np.ndarray:
    """``values`` as a finite float64 vector (optionally of a given length)."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have {length} entries, got {array.shape[0]}")
    try:
        array = array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}: {exc}") from exc
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite; it contains NaN or infinity")
    return array


def _check_int(value: object, name: str, minimum: int) -> int:
    """An integer ``>= minimum`` (bools rejected), or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# --------------------------------------------------------------------- irregularity scores


def irregularity_scores(
    X_train: ArrayLike,
    X_eval: ArrayLike,
    method: str = "knn",
    random_state: int | np.random.RandomState | None = None,
    n_neighbors: int = 5,
) -> np.ndarray:
    """Score how unlike the training data each evaluation example is (larger = more irregular).

    The score is model-agnostic and computed in the feature space it is given, which should
    be the preprocessed one the models see (DESIGN.md 1.5); no further scaling is applied.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
        The training examples that define "regular".
    X_eval : array-like of shape (m, n_features)
        The examples to score, normally held out. A point of ``X_eval`` that is also in
        ``X_train`` counts its own zero distance under ``method="knn"``.
    method : {"knn", "mahalanobis", "isolation_forest"}, default="knn"
        - ``"knn"``: the *mean* Euclidean distance to the ``n_neighbors`` nearest training
          points. The mean rather than the k-th distance, because it varies smoothly and is
          less sensitive to a single neighbour's position.
        - ``"mahalanobis"``: ``sqrt((x - mu)^T Sigma^+ (x - mu))`` with ``mu`` the training
          mean and ``Sigma`` the Ledoit-Wolf shrunk covariance of the training data, whose
          inverse is taken as a pseudo-inverse. Shrinkage towards a scaled identity keeps
          ``Sigma`` invertible when features are collinear or constant, or when there are
          more features than training examples.
        - ``"isolation_forest"``: the IsolationForest anomaly score
          ``2^(-E[h(x)] / c(n))`` (``-score_samples``), in (0, 1].
    random_state : int, RandomState instance or None, default=None
        Seed of the IsolationForest; ignored by the other methods, which are deterministic.
    n_neighbors : int, default=5
        ``k`` of the k-NN score; at most ``n_train``. Ignored by the other methods.

    Returns
    -------
    scores : ndarray of shape (m,)
        Irregularity of each evaluation example.

    Raises
    ------
    ValueError
        If an array is not 2-D, is empty or not finite, if the two arrays have different
        numbers of features, if ``method`` is unknown, if ``n_neighbors`` exceeds the number
        of training examples, or if the Mahalanobis distance is asked of training data with
        no variance.
    TypeError
        If an array is sparse or not numeric, or ``n_neighbors`` is not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> X_train = np.arange(10.0).reshape(-1, 1)
    >>> irregularity_scores(X_train, [[4.5], [20.0]], n_neighbors=2)
    array([ 0.5, 11.5])
    """
    if method not in IRREGULARITY_METHODS:
        raise ValueError(f"method must be one of {IRREGULARITY_METHODS}, got {method!r}")
    train = _as_2d_finite(X_train, "X_train")
    evaluation = _as_2d_finite(X_eval, "X_eval")
    if evaluation.shape[1] != train.shape[1]:
        raise ValueError(
            f"X_eval must have the {train.shape[1]} features of X_train, "
            f"got {evaluation.shape[1]}"
        )

    if method == "knn":
        k = _check_int(n_neighbors, "n_neighbors", 1)
        if k > train.shape[0]:
            raise ValueError(
                f"n_neighbors must be at most the number of training examples "
                f"({train.shape[0]}), got {k}"
            )
        distances, _ = NearestNeighbors(n_neighbors=k).fit(train).kneighbors(evaluation)
        return distances.mean(axis=1)

    if method == "mahalanobis":
        if train.shape[0] < 2:
            raise ValueError("X_train must have at least 2 rows for the Mahalanobis distance")
        if not np.any(np.ptp(train, axis=0) > 0):
            raise ValueError(
                "X_train has no variance in any feature: the Mahalanobis distance is undefined"
            )
        covariance = LedoitWolf().fit(train)
        # LedoitWolf stores a pinvh precision; mahalanobis returns squared distances.
        squared = covariance.mahalanobis(evaluation)
        return np.sqrt(np.maximum(squared, 0.0))

    forest = IsolationForest(random_state=random_state).fit(train)
    return -forest.score_samples(evaluation)


# ------------------------------------------------------------------------- kernel norms


def _max_kernel_norms(source: KernelView | ArrayLike, name: str) -> np.ndarray:
    """``kappa = max over checkpoints`` from a view or an array of norms (1-D already maxed)."""
    if isinstance(source, KernelView):
        norms = np.asarray(source.kernel_norms, dtype=np.float64)
        if norms.shape[1] == 0:
            raise ValueError(f"{name} has no checkpoints, so no kernel norms")
        kappa = norms.max(axis=1)
    else:
        array = np.asarray(source)
        if array.ndim == 2:
            if array.shape[1] == 0:
                raise ValueError(f"{name} has no checkpoint columns")
            array = array.max(axis=1)
        kappa = _as_1d_finite(array, name)
    if kappa.shape[0] == 0:
        raise ValueError(f"{name} holds no examples")
    if not np.all(np.isfinite(kappa)):
        raise ValueError(f"{name} has kernel norms that are NaN or infinite")
    if np.any(kappa < 0):
        raise ValueError(f"{name} has negative kernel norms; norms are non-negative")
    return kappa


def _train_kappa(view_eval: KernelView | ArrayLike, view_train) -> np.ndarray:
    """Training-set ``kappa(x_i)``, from ``view_train`` or, if None, from ``view_eval``."""
    if view_train is None:
        if not isinstance(view_eval, KernelView):
            raise TypeError(
                "view_train may be None only when view_eval is a KernelView (whose "
                "train_kernel_norms are then used)"
            )
        return _max_kernel_norms(view_eval.train_kernel_norms, "view_eval.train_kernel_norms")
    if isinstance(view_eval, KernelView) and isinstance(view_train, KernelView):
        # kappa_bar is a ratio of norms: both sides must measure the same thing.
        if view_train.n_train != view_eval.n_train:
            raise ValueError(
                f"view_train sums over {view_train.n_train} training examples but view_eval "
                f"over {view_eval.n_train}: they are not views of the same model"
            )
        if view_train.norm != view_eval.norm:
            raise ValueError(
                f"view_train uses the {view_train.norm!r} norm but view_eval the "
                f"{view_eval.norm!r} norm"
            )
        if not np.array_equal(
            np.asarray(view_train.checkpoints), np.asarray(view_eval.checkpoints)
        ):
            raise ValueError("view_train and view_eval must have the same checkpoints")
    return _max_kernel_norms(view_train, "view_train")


def normalized_kernel_norms(
    view_eval: KernelView | ArrayLike,
    view_train: KernelView | ArrayLike | None = None,
) -> np.ndarray:
    """Normalised kernel weight norm ``kappa_bar(x) = kappa(x) / mean_{i in train} kappa(x_i)``.

    ``kappa(x) = max_t kappa_t(x)`` is the largest kernel weight norm of ``x`` over the
    checkpoints (DESIGN.md 1.5). The result is never clipped: a network can give a point far
    outside the training data a ``kappa_bar`` far above anything seen in training, and that
    is exactly what the analysis looks for.

    Parameters
    ----------
    view_eval : KernelView or array-like of shape (m,) or (m, c)
        The view of the evaluation set, or its kernel norms (per checkpoint, or already
        maximised over checkpoints when 1-D).
    view_train : KernelView, array-like of shape (n,) or (n, c), or None, default=None
        The view of the training set (its evaluation points are the training examples), or
        the training examples' kernel norms. ``None`` uses ``view_eval.train_kernel_norms``.
        Two views must share training-set size, norm and checkpoints.

    Returns
    -------
    kappa_bar : ndarray of shape (m,)
        Non-negative; the training set's ``kappa_bar`` averages to 1 by construction.

    Raises
    ------
    ValueError
        If the norms are negative or not finite, the two views disagree, or every training
        norm is zero (nothing to normalise by).
    TypeError
        If ``view_train`` is None and ``view_eval`` is not a KernelView.
    """
    kappa = _max_kernel_norms(view_eval, "view_eval")
    train_kappa = _train_kappa(view_eval, view_train)
    scale = float(train_kappa.mean())
    if not scale > 0:
        raise ValueError(
            "view_train has zero kernel norms on every training example: kappa_bar is undefined"
        )
    return kappa / scale


def spearman(scores: np.ndarray, kappa_bar: np.ndarray) -> tuple[float, float]:
    """Spearman rho and two-sided p-value; NaN for a constant input (no ranks to correlate)."""
    if scores.shape[0] < 3 or np.ptp(scores) == 0 or np.ptp(kappa_bar) == 0:
        return float("nan"), float("nan")
    result = stats.spearmanr(scores, kappa_bar)
    return float(result.statistic), float(result.pvalue)


def kernel_norm_summary(
    view_eval: KernelView | ArrayLike,
    view_train: KernelView | ArrayLike | None = None,
    scores: ArrayLike | None = None,
) -> dict:
    """Per-example ``kappa_bar`` with the summary statistics the benchmark stores.

    Parameters
    ----------
    view_eval, view_train
        As in :func:`normalized_kernel_norms`.
    scores : array-like of shape (m,), default=None
        Irregularity scores of the evaluation examples (:func:`irregularity_scores`); when
        given, their Spearman rank correlation with ``kappa_bar`` is reported.

    Returns
    -------
    summary : dict
        ``"kappa_bar"`` (ndarray (m,)), ``"kappa_bar_train"`` (ndarray (n,)),
        ``"train_mean"`` (1 up to rounding), ``"train_max"``, ``"eval_mean"``, ``"eval_max"``,
        ``"eval_fraction_above_train_max"`` (share of evaluation examples whose
        ``kappa_bar`` exceeds every training example's) and, as floats that are NaN without
        ``scores`` or when either input is constant (rank correlation undefined),
        ``"spearman_rho"`` and ``"spearman_pvalue"``.
    """
    kappa_bar = normalized_kernel_norms(view_eval, view_train)
    train_kappa = _train_kappa(view_eval, view_train)
    kappa_bar_train = train_kappa / train_kappa.mean()
    train_max = float(kappa_bar_train.max())
    rho, pvalue = float("nan"), float("nan")
    if scores is not None:
        score_values = _as_1d_finite(scores, "scores", length=kappa_bar.shape[0])
        rho, pvalue = spearman(score_values, kappa_bar)
    return {
        "kappa_bar": kappa_bar,
        "kappa_bar_train": kappa_bar_train,
        "train_mean": float(kappa_bar_train.mean()),
        "train_max": train_max,
        "eval_mean": float(kappa_bar.mean()),
        "eval_max": float(kappa_bar.max()),
        "eval_fraction_above_train_max": float(np.mean(kappa_bar > train_max)),
        "spearman_rho": rho,
        "spearman_pvalue": pvalue,
    }


# ----------------------------------------------------------------- the irregularity curve


def _class_indices(y_true: np.ndarray, n_classes: int, classes: ArrayLike | None) -> np.ndarray:
    """Column index of each label in a probability array with ``n_classes`` columns."""
    if classes is None:
        if y_true.dtype.kind not in "biu":
            raise ValueError(
                "y_true must hold integer class codes 0..C-1 to index probability columns, "
                f"got dtype {y_true.dtype}; pass classes= (the estimator's classes_) instead"
            )
        codes = y_true.astype(np.int64)
        if codes.min() < 0 or codes.max() >= n_classes:
            raise ValueError(
                f"y_true codes must lie in [0, {n_classes}) to index the {n_classes} "
                "probability columns; pass classes= (the estimator's classes_) otherwise"
            )
        return codes
    labels = np.asarray(classes)
    if labels.ndim != 1 or labels.shape[0] != n_classes:
        raise ValueError(
            f"classes must be a 1-D array with one label per probability column "
            f"({n_classes}), got shape {labels.shape}"
        )
    position = {label: column for column, label in enumerate(labels.tolist())}
    if len(position) != n_classes:
        raise ValueError("classes must not repeat a label")
    try:
        return np.array([position[label] for label in y_true.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(
            f"y_true contains the label {exc.args[0]!r}, which is not in classes"
        ) from exc


def _per_example_losses(
    y_true: np.ndarray,
    prediction: ArrayLike,
    name: str,
    task: str,
    metric: str,
    classes: ArrayLike | None,
) -> np.ndarray:
    """Each evaluation example's loss under ``metric``; the subset metric aggregates these."""
    m = y_true.shape[0]
    if task == "regression":
        values = _as_1d_finite(prediction, name, length=m)
        residual = values - y_true
        return np.abs(residual) if metric == "mae" else residual**2

    array = np.asarray(prediction)
    if array.ndim == 1:
        if array.shape[0] != m:
            raise ValueError(f"{name} must have {m} entries, got {array.shape[0]}")
        if metric == "log_loss":
            raise ValueError(
                f"{name} holds predicted labels (1-D) but metric='log_loss' needs class "
                "probabilities of shape (m, n_classes)"
            )
        return (array != y_true).astype(np.float64)
    if array.ndim != 2 or array.shape[0] != m or array.shape[1] < 2:
        raise ValueError(
            f"{name} must be predicted labels of shape ({m},) or class probabilities of "
            f"shape ({m}, n_classes >= 2), got shape {array.shape}"
        )
    proba = _as_2d_finite(array, name)
    if np.any(proba < 0) or np.any(proba > 1):
        raise ValueError(f"{name} must hold probabilities in [0, 1]")
    row_sums = proba.sum(axis=1)
    if np.any(np.abs(row_sums - 1) > _PROBA_SUM_TOL):
        raise ValueError(f"{name} rows must sum to 1 (class probabilities)")
    columns = _class_indices(y_true, proba.shape[1], classes)
    if metric == "error_rate":
        return (np.argmax(proba, axis=1) != columns).astype(np.float64)
    # Renormalise away float32 rounding, then floor so a confident mistake stays finite.
    truth = proba[np.arange(m), columns] / row_sums
    return -np.log(np.clip(truth, _LOG_LOSS_EPS, 1.0))


def _aggregate(mean_losses: np.ndarray, metric: str) -> np.ndarray:
    """Metric from the mean per-example loss of a subset."""
    return np.sqrt(mean_losses) if metric == "rmse" else mean_losses


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
    """Map each model name to its role, checking the names of both dicts."""
    if not isinstance(predictions, Mapping):
        raise TypeError(
            f"predictions must be a dict keyed by model name, got {type(predictions).__name__}"
        )
    if kappa_bar is not None and not isinstance(kappa_bar, Mapping):
        raise TypeError(
            f"kappa_bar must be a dict keyed by model name or None, got {type(kappa_bar).__name__}"
        )
    for argument, name in (("network", network), ("tree", tree)):
        if not isinstance(name, str):
            raise TypeError(f"{argument} must be a model name (str), got {type(name).__name__}")
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

    The paper's figure 5 (DESIGN.md 1.5). The evaluation examples are split by their
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
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    roles = _check_models(predictions, kappa_bar, network, tree)
    n_redraws = _check_int(n_redraws, "n_redraws", 1)
    min_pool_size = _check_int(min_pool_size, "min_pool_size", 1)
    proportion_values = _check_proportions(proportions)
    if isinstance(quantile, bool) or not isinstance(quantile, numbers.Real):
        raise TypeError(f"quantile must be a number, got {type(quantile).__name__}")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")

    if task == "regression":
        truth = _as_1d_finite(y_true, "y_true")
        allowed = REGRESSION_METRICS
        default_metric = "rmse"
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
    score_values = _as_1d_finite(scores, "scores", length=m)

    losses = {
        name: _per_example_losses(truth, predictions[name], f"predictions[{name!r}]", task,
                                  metric, classes)
        for name in roles
    }
    kappas = {
        name: _as_1d_finite(values, f"kappa_bar[{name!r}]", length=m)
        for name, values in (kappa_bar or {}).items()
    }

    threshold = float(np.quantile(score_values, quantile))
    is_irregular = score_values > threshold
    irregular = np.flatnonzero(is_irregular)
    regular = np.flatnonzero(~is_irregular)
    for pool, count in (("irregular", irregular.size), ("regular", regular.size)):
        if count < min_pool_size:
            raise ValueError(
                f"too few {pool} examples: {count} with scores "
                f"{'above' if pool == 'irregular' else 'at or below'} the quantile={quantile} "
                f"threshold {threshold:.6g}, fewer than min_pool_size={min_pool_size}; use more "
                "evaluation examples or another quantile"
            )
    size = min(irregular.size, regular.size)

    rng = np.random.default_rng(random_state)
    shuffled_irregular = np.stack([rng.permutation(irregular) for _ in range(n_redraws)])
    shuffled_regular = np.stack([rng.permutation(regular) for _ in range(n_redraws)])

    def draw(n_from_irregular: int) -> np.ndarray:
        return np.concatenate(
            [
                shuffled_irregular[:, :n_from_irregular],
                shuffled_regular[:, : size - n_from_irregular],
            ],
            axis=1,
        )

    def metrics_on(subsets: np.ndarray) -> dict[str, np.ndarray]:
        return {
            name: _aggregate(loss[subsets].mean(axis=1), metric) for name, loss in losses.items()
        }

    reference = metrics_on(draw(0))
    reference_gap = reference[network] - reference[tree]
    reference_scale = abs(float(reference_gap.mean()))
    note = None
    if reference_scale == 0:
        note = (
            "the mean gap at p = 0 is exactly 0, so the relative increase has no scale and "
            "is NaN"
        )
        warnings.warn(f"irregularity_curve: {note}", RuntimeWarning, stacklevel=2)

    rows = []
    for p in proportion_values.tolist():
        n_from_irregular = int(np.floor(p * size + 0.5))
        subsets = draw(n_from_irregular)
        model_metrics = metrics_on(subsets)
        gap = model_metrics[network] - model_metrics[tree]
        if note is None:
            relative = (gap - reference_gap) / reference_scale
        else:
            relative = np.full(n_redraws, np.nan)
        shared = {**_spread(gap, "gap"), **_spread(relative, "relative_increase")}
        for name, role in roles.items():
            if name in kappas:
                kappa_stats = _spread(kappas[name][subsets].mean(axis=1), "kappa_bar")
            else:
                kappa_stats = _spread(np.full(n_redraws, np.nan), "kappa_bar")
            rows.append(
                {
                    "p": float(p),
                    "model": name,
                    "role": role,
                    "metric": metric,
                    **_spread(model_metrics[name], "metric"),
                    **shared,
                    **kappa_stats,
                    "n_subset": size,
                    "n_irregular": n_from_irregular,
                    "n_redraws": n_redraws,
                }
            )

    frame = pd.DataFrame(rows)
    frame.attrs.update(
        {
            "task": task,
            "metric": metric,
            "network": network,
            "tree": tree,
            "quantile": float(quantile),
            "threshold": threshold,
            "n_irregular_pool": int(irregular.size),
            "n_regular_pool": int(regular.size),
            "subset_size": int(size),
            "gap_at_zero_mean": float(reference_gap.mean()),
            "random_state": random_state if isinstance(random_state, (int, type(None))) else None,
            "relative_increase_note": note,
        }
    )
    return frame


# ------------------------------------------------------------------ effective parameters


def effective_parameters(view: KernelView | ArrayLike, n_train: int | None = None) -> float:
    """Effective number of parameters ``p_E = (n / |E|) sum_{x in E} ||s_T(x)||^2``.

    From the linear-smoother weights ``s_T(x)`` of a squared-loss lens (DESIGN.md 1.6;
    Curth, Jeffares & van der Schaar 2023), on the view's evaluation set ``E``. Evaluated on
    the training set, a single regression tree gives its number of leaves and ordinary
    least squares its number of coefficients; the gap between ``p_train`` and ``p_test``
    measures how differently the model treats unseen points.

    Parameters
    ----------
    view : KernelView or array-like of shape (m, n)
        A squared-loss view whose ``smoother`` is set, or the smoother rows themselves (e.g.
        the training or the test rows of one view computed over both).
    n_train : int, default=None
        Number of training examples ``n`` the smoother spans; must equal its number of
        columns (a guard against pairing a smoother with the wrong training set). None
        takes it from the smoother.

    Returns
    -------
    p_E : float

    Raises
    ------
    TypeError
        If ``n_train`` is not an integer or the smoother is not numeric.
    ValueError
        If the view has no smoother (it is not a squared-loss view), its loss is not
        squared error, the smoother is not 2-D, empty or not finite, or ``n_train``
        disagrees with it.
    """
    if isinstance(view, KernelView):
        if view.smoother is None:
            raise ValueError(
                "view has no smoother: effective parameters need a squared-loss view built "
                f"with its smoother (view.loss is {view.loss!r})"
            )
        if view.loss != "squared_error":
            raise ValueError(
                f"view.loss must be 'squared_error' for effective parameters, got {view.loss!r}"
            )
        smoother = _as_2d_finite(view.smoother, "view.smoother")
    else:
        smoother = _as_2d_finite(view, "view")
    n = smoother.shape[1] if n_train is None else _check_int(n_train, "n_train", 1)
    if n != smoother.shape[1]:
        raise ValueError(
            f"n_train={n} does not match the {smoother.shape[1]} training examples the "
            "smoother spans"
        )
    return float(n * np.einsum("ij,ij->", smoother, smoother) / smoother.shape[0])


# ------------------------------------------------------------------------------- fidelity


def fidelity_summary(estimator: object, X: ArrayLike) -> dict[str, float]:
    """Relative errors of the telescoping approximations of a fitted network on ``X``.

    A thin wrapper over the estimator's ``telescoping_fidelity(X)`` (DESIGN.md 1.1):
    ``mean |f_approx(x) - f_T(x)| / mean |f_T(x) - f_0(x)|`` for the first-order and
    trapezoid telescoping models and the model linearised at initialisation.

    Parameters
    ----------
    estimator : telescoping network estimator
        A fitted estimator with a ``telescoping_fidelity`` method (the ``Telescoping*``
        estimators of :mod:`tabscope.models`).
    X : array-like of shape (m, n_features)
        The evaluation set.

    Returns
    -------
    fidelity : dict of str to float
        Keyed as the estimator keys them (``"first_order"``, ``"trapezoid"``,
        ``"linearized"``), values as Python floats.

    Raises
    ------
    TypeError
        If ``estimator`` is not a telescoping network (has no callable
        ``telescoping_fidelity``), or its result is not a mapping of numbers.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    """
    method = getattr(estimator, "telescoping_fidelity", None)
    if isinstance(estimator, type) or not callable(method):
        raise TypeError(
            "estimator must be a fitted telescoping network (an estimator with a "
            f"telescoping_fidelity method), got {type(estimator).__name__}"
        )
    check_is_fitted(estimator)
    result = method(X)
    if not isinstance(result, Mapping):
        raise TypeError(
            f"{type(estimator).__name__}.telescoping_fidelity must return a dict, "
            f"got {type(result).__name__}"
        )
    summary = {}
    for key, value in result.items():
        is_number = isinstance(value, (numbers.Real, np.ndarray)) and np.ndim(value) == 0
        if isinstance(value, bool) or not is_number:
            raise TypeError(
                f"{type(estimator).__name__}.telescoping_fidelity()[{key!r}] must be a number, "
                f"got {type(value).__name__}"
            )
        summary[str(key)] = float(value)
    return summary
