"""Irregularity scores: how unlike the training data each evaluation example is.

The scores are model-agnostic (docs/design.md §1.5); the alternatives are the members of
:class:`tabscope.vocabulary.IrregularityMethod`, each computed by one function of the
dispatch table below.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.covariance import LedoitWolf
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors

from tabscope.validation import one_of, validate_parameters
from tabscope.vocabulary import IrregularityMethod, choices

from ._inputs import COUNT, as_2d_finite

__all__ = ["IRREGULARITY_METHODS", "irregularity_scores"]

#: Irregularity scores :func:`irregularity_scores` can compute (plain strings).
IRREGULARITY_METHODS = choices(IrregularityMethod)

_CONSTRAINTS = {
    "method": [one_of(IrregularityMethod)],
    "n_neighbors": COUNT,
}


def irregularity_scores(
    X_train: ArrayLike,
    X_eval: ArrayLike,
    method: str = IrregularityMethod.KNN,
    random_state: int | np.random.RandomState | None = None,
    n_neighbors: int = 5,
) -> np.ndarray:
    """Score how unlike the training data each evaluation example is (larger = more irregular).

    The score is model-agnostic and computed in the feature space it is given, which should
    be the preprocessed one the models see (docs/design.md §1.5); no further scaling is
    applied.

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
        numbers of features, if ``method`` is unknown, if ``n_neighbors`` is below 1 or
        exceeds the number of training examples, or if the Mahalanobis distance is asked of
        training data with no variance.
    TypeError
        If an array is sparse or not numeric, or ``n_neighbors`` is not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> X_train = np.arange(10.0).reshape(-1, 1)
    >>> irregularity_scores(X_train, [[4.5], [20.0]], n_neighbors=2)
    array([ 0.5, 11.5])
    """
    validate_parameters(
        _CONSTRAINTS,
        {"method": method, "n_neighbors": n_neighbors},
        caller="irregularity_scores",
    )
    train = as_2d_finite(X_train, "X_train")
    evaluation = as_2d_finite(X_eval, "X_eval")
    if evaluation.shape[1] != train.shape[1]:
        raise ValueError(
            f"X_eval must have the {train.shape[1]} features of X_train, "
            f"got {evaluation.shape[1]}"
        )
    score = _SCORES[IrregularityMethod(method)]
    return score(train, evaluation, n_neighbors=n_neighbors, random_state=random_state)


def _knn(train: np.ndarray, evaluation: np.ndarray, *, n_neighbors: int, **_) -> np.ndarray:
    """Mean distance to the ``n_neighbors`` nearest training examples."""
    if n_neighbors > train.shape[0]:
        raise ValueError(
            f"n_neighbors must be at most the number of training examples "
            f"({train.shape[0]}), got {n_neighbors}"
        )
    neighbours = NearestNeighbors(n_neighbors=int(n_neighbors)).fit(train)
    distances, _ = neighbours.kneighbors(evaluation)
    return distances.mean(axis=1)


def _mahalanobis(train: np.ndarray, evaluation: np.ndarray, **_) -> np.ndarray:
    """Mahalanobis distance to the training mean under the Ledoit-Wolf covariance."""
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


def _isolation_forest(train: np.ndarray, evaluation: np.ndarray, *, random_state, **_):
    """Negated IsolationForest score, fitted on the training set."""
    forest = IsolationForest(random_state=random_state).fit(train)
    return -forest.score_samples(evaluation)


#: One function per :class:`IrregularityMethod`.
_SCORES = {
    IrregularityMethod.KNN: _knn,
    IrregularityMethod.MAHALANOBIS: _mahalanobis,
    IrregularityMethod.ISOLATION_FOREST: _isolation_forest,
}
