"""Datasets that ship inside scikit-learn: usable on a machine with no network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import datasets as sk_datasets
from sklearn.utils import Bunch

from .base import CLASSIFICATION, REGRESSION, Dataset, DatasetError
from .tabular import build_dataset, check_task

__all__ = ["BUNDLED", "load_bundled"]


@dataclass(frozen=True)
class _Bundled:
    loader: Callable[..., Bunch]
    task: str
    description: str


#: scikit-learn datasets that need no download, by the name used in ``sklearn:NAME``.
BUNDLED: dict[str, _Bundled] = {
    "diabetes": _Bundled(
        sk_datasets.load_diabetes, REGRESSION,
        "diabetes progression after one year: 442 rows, 10 numerical features (regression)",
    ),
    "breast_cancer": _Bundled(
        sk_datasets.load_breast_cancer, CLASSIFICATION,
        "Wisconsin breast cancer: 569 rows, 30 numerical features, 2 classes",
    ),
    "wine": _Bundled(
        sk_datasets.load_wine, CLASSIFICATION,
        "wine cultivars: 178 rows, 13 numerical features, 3 classes",
    ),
    "digits": _Bundled(
        sk_datasets.load_digits, CLASSIFICATION,
        "8x8 handwritten digits: 1797 rows, 64 pixel features, 10 classes",
    ),
    "iris": _Bundled(
        sk_datasets.load_iris, CLASSIFICATION,
        "iris flowers: 150 rows, 4 numerical features, 3 classes",
    ),
}


def load_bundled(name: str, *, target: str | None = None, task: str | None = None) -> Dataset:
    """Load the scikit-learn dataset ``name`` (a key of :data:`BUNDLED`).

    Parameters
    ----------
    name : str
        Dataset name, e.g. ``"diabetes"``.
    target : str, optional
        Must be None or ``"target"``: bundled datasets have one target.
    task : {"regression", "classification"}, optional
        Must match the dataset's task when given.

    Returns
    -------
    dataset : Dataset
        Labels stay scikit-learn's integer codes; their names are in
        ``metadata["target_names"]`` for classification.
    """
    source = f"sklearn:{name}"
    if name not in BUNDLED:
        raise DatasetError(
            f"unknown scikit-learn dataset {name!r} in source {source!r}; "
            f"expected one of {sorted(BUNDLED)}"
        )
    entry = BUNDLED[name]
    if target is not None and target != "target":
        raise DatasetError(f"{source}: target must be 'target' (or None), got {target!r}")
    if check_task(task) not in (None, entry.task):
        raise DatasetError(f"{source} is a {entry.task} dataset; task={task!r} does not apply")
    bunch = entry.loader(as_frame=True)
    frame: pd.DataFrame = bunch.data
    metadata: dict = {"origin": "scikit-learn", "loader": entry.loader.__name__}
    if entry.task == CLASSIFICATION:
        metadata["target_names"] = [str(label) for label in np.asarray(bunch.target_names)]
    return build_dataset(
        source=source,
        name=name,
        features=frame,
        target=pd.Series(np.asarray(bunch.target), name="target"),
        target_name="target",
        task=entry.task,
        metadata=metadata,
    )
