"""The :class:`Dataset` every source produces, and the errors of the dataset layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabscope.errors import UserError

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "TASKS",
    "CorruptCacheError",
    "Dataset",
    "DatasetError",
    "OpenMLUnavailableError",
]

REGRESSION = "regression"
CLASSIFICATION = "classification"
#: The supervised tasks tabscope benchmarks.
TASKS = (REGRESSION, CLASSIFICATION)


class DatasetError(UserError, ValueError):
    """Base class of every problem with a dataset source, its cache or its contents."""


class OpenMLUnavailableError(DatasetError):
    """OpenML could not be reached and what was asked for is not in the local cache."""


class CorruptCacheError(DatasetError):
    """A cached file is damaged (checksum mismatch or unreadable) and could not be refetched."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A supervised tabular dataset in tabscope's canonical form.

    Instances are built by :func:`tabscope.datasets.load_dataset`; the fields follow one
    convention whatever the source, so that the rest of tabscope never looks at where the
    data came from.

    Attributes
    ----------
    source : str
        Canonical source string, e.g. ``"sklearn:diabetes"`` or ``"openml-task:1882"``.
    name : str
        Human-readable name, e.g. ``"diabetes"`` or ``"anneal"``.
    X : pandas.DataFrame of shape (n_samples, n_features)
        Raw features. Categorical columns have dtype ``"category"``, all others ``float64``;
        missing values are NaN.
    y : ndarray of shape (n_samples,)
        Target. ``float64`` for regression, the original labels for classification.
    task : {"regression", "classification"}
        The supervised task.
    target : str
        Name of the target column.
    official_splits : tuple of (ndarray, ndarray) pairs or None
        For OpenML tasks, the official ``(train_idx, test_idx)`` pairs in repeat-major order
        (repeat 0 folds 0..F-1, then repeat 1, ...); None for every other source.
    metadata : dict
        Source-specific facts (OpenML ids, file path, dropped rows, ...).
    """

    source: str
    name: str
    X: pd.DataFrame
    y: np.ndarray
    task: str
    target: str
    official_splits: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def categorical(self) -> tuple[bool, ...]:
        """Whether each column of ``X`` is categorical, in column order."""
        return tuple(isinstance(dtype, pd.CategoricalDtype) for dtype in self.X.dtypes)

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.X.shape[1])

    @property
    def classes(self) -> np.ndarray | None:
        """Sorted labels that occur in ``y``; None for regression."""
        if self.task != CLASSIFICATION:
            return None
        return np.unique(self.y)

    @property
    def n_classes(self) -> int | None:
        """Number of distinct labels in ``y``; None for regression."""
        classes = self.classes
        return None if classes is None else int(len(classes))

    def summary(self) -> dict[str, Any]:
        """Describe the dataset with plain Python values (for ``tabscope datasets show``).

        Returns
        -------
        summary : dict
            Keys ``source``, ``name``, ``task``, ``target``, ``rows``, ``features``,
            ``categorical`` (number of categorical features), ``missing_fraction`` (share of
            missing feature cells), ``classes`` (number of classes, None for regression),
            ``class_counts`` (label -> count, None for regression) and ``official_splits``
            (number of official splits, None when there are none).
        """
        cells = self.n_samples * self.n_features
        missing = float(self.X.isna().to_numpy().sum() / cells) if cells else 0.0
        class_counts = None
        if self.task == CLASSIFICATION:
            labels, counts = np.unique(self.y, return_counts=True)
            class_counts = {_plain(label): int(count) for label, count in zip(labels, counts)}
        return {
            "source": self.source,
            "name": self.name,
            "task": self.task,
            "target": self.target,
            "rows": self.n_samples,
            "features": self.n_features,
            "categorical": int(sum(self.categorical)),
            "missing_fraction": missing,
            "classes": self.n_classes,
            "class_counts": class_counts,
            "official_splits": None if self.official_splits is None else len(self.official_splits),
        }


def _plain(value: Any) -> Any:
    """Turn a numpy scalar into the equivalent Python value."""
    return value.item() if isinstance(value, np.generic) else value
