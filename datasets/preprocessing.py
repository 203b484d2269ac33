"""Turn a dataset and a split into model-ready arrays, fitted on the training rows only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tabscope.vocabulary import Preprocessing

from .base import CLASSIFICATION, Dataset
from .roles import TextColumnEncoder, text_columns
from .splits import Split
from .transformers import NetworkFeatureTransformer, TreeFeatureTransformer

__all__ = [
    "KINDS",
    "PreparedData",
    "describe_dataset",
    "describe_inputs",
    "describe_preprocessing",
    "prepare_data",
]

#: Preprocessing kinds: what the model family expects.
KINDS = ("network", "tree")


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Model-ready arrays of one split.

    Attributes
    ----------
    X_train, X_valid, X_test : ndarray of float64
        Transformed features (see :class:`NetworkFeatureTransformer` and
        :class:`TreeFeatureTransformer`).
    y_train, y_valid, y_test : ndarray
        Regression: float64 in the original units. Classification: int64 codes
        ``0..C-1`` indexing ``classes``.
    classes : ndarray or None
        The original labels of the codes: every label of the whole dataset, sorted, so
        codes agree across splits even when a class is missing from one part.
    feature_names : list of str
        Names of the columns of ``X_*``.
    categorical_features : list of int
        Columns of ``X_*`` holding ordinal category codes (tree kind; empty for networks,
        whose categories are one-hot encoded).
    target_mean, target_scale : float or None
        Regression: mean and standard deviation of ``y_train`` (scale 1 when constant).
        Networks train on ``(y - target_mean) / target_scale`` and map predictions back
        with :meth:`unscale_target`. None for classification.
    kind : {"network", "tree"}
    transformer : NetworkFeatureTransformer or TreeFeatureTransformer
        The feature transformer, fitted on the training rows.
    text_encoder : TextColumnEncoder or None
        Encoder of the dataset's high-cardinality text columns (applied before
        ``transformer``), fitted on the training rows; None when there are none.
    """

    X_train: np.ndarray
    X_valid: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_valid: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray | None
    feature_names: list[str]
    categorical_features: list[int]
    target_mean: float | None
    target_scale: float | None
    kind: str
    transformer: NetworkFeatureTransformer | TreeFeatureTransformer | None = None
    text_encoder: TextColumnEncoder | None = None

    def scale_target(self, y: np.ndarray) -> np.ndarray:
        """Standardise regression targets with the training mean and scale."""
        self._require_regression()
        return (np.asarray(y, dtype=np.float64) - self.target_mean) / self.target_scale

    def unscale_target(self, y_scaled: np.ndarray) -> np.ndarray:
        """Map standardised predictions back to the original units."""
        self._require_regression()
        return np.asarray(y_scaled, dtype=np.float64) * self.target_scale + self.target_mean

    def _require_regression(self) -> None:
        if self.target_mean is None:
            raise ValueError(
                "target scaling applies to regression data only; this is classification"
            )


def prepare_data(dataset: Dataset, split: Split, kind: str) -> PreparedData:
    """Fit the preprocessing of ``kind`` on ``split.train`` and apply it to all three parts.

    Parameters
    ----------
    dataset : Dataset
        The dataset.
    split : Split
        Row indices, e.g. from :func:`tabscope.datasets.make_split`.
    kind : {"network", "tree"}
        ``"network"``: quantile-transformed numbers, one-hot categories, imputed missing
        values. ``"tree"``: raw numbers with NaN, ordinal-coded categories. For both, the
        dataset's high-cardinality text columns (``metadata["column_roles"]["text"]``) are
        first replaced by their StringEncoder numbers (docs/design.md §3.5, "Column roles").

    Returns
    -------
    data : PreparedData
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a tabscope Dataset, got {type(dataset).__name__}")
    if not isinstance(split, Split):
        raise TypeError(f"split must be a tabscope Split, got {type(split).__name__}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    parts = {"train": split.train, "valid": split.valid, "test": split.test}
    for name, rows in parts.items():
        rows = np.asarray(rows)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"split.{name} must be a 1-d array of integer row indices")
        if rows.size and (rows.min() < 0 or rows.max() >= dataset.n_samples):
            raise ValueError(
                f"split.{name} has row indices outside 0..{dataset.n_samples - 1}; "
                "was the split made for another dataset?"
            )
    if len(split.train) == 0:
        raise ValueError("split.train is empty; the preprocessing must be fitted on training rows")

    frames = {name: dataset.X.iloc[rows] for name, rows in parts.items()}
    text = text_columns(dataset)
    text_encoder = None
    if text:
        text_encoder = TextColumnEncoder(columns=text).fit(frames["train"])
        frames = {name: text_encoder.transform(frame) for name, frame in frames.items()}
    transformer = NetworkFeatureTransformer() if kind == "network" else TreeFeatureTransformer()
    transformer.fit(frames["train"])
    X = {name: transformer.transform(frame) for name, frame in frames.items()}

    classes = None
    target_mean = target_scale = None
    if dataset.task == CLASSIFICATION:
        classes, codes = np.unique(dataset.y, return_inverse=True)
        y = {name: codes[rows].astype(np.int64) for name, rows in parts.items()}
    else:
        y = {name: dataset.y[rows].astype(np.float64) for name, rows in parts.items()}
        target_mean = float(np.mean(y["train"]))
        scale = float(np.std(y["train"]))
        target_scale = scale if scale > 0 else 1.0

    categorical = (
        [int(i) for i in transformer.categorical_indices_] if kind == "tree" else []
    )
    return PreparedData(
        X_train=X["train"],
        X_valid=X["valid"],
        X_test=X["test"],
        y_train=y["train"],
        y_valid=y["valid"],
        y_test=y["test"],
        classes=classes,
        feature_names=[str(name) for name in transformer.get_feature_names_out()],
        categorical_features=categorical,
        target_mean=target_mean,
        target_scale=target_scale,
        kind=kind,
        transformer=transformer,
        text_encoder=text_encoder,
    )


def describe_inputs(dataset: Dataset, data: PreparedData) -> dict[str, Any]:
    """Say, as plain JSON-able data, what one model family receives after preprocessing.

    Reads the transformers already fitted in ``data`` (no refitting), so a benchmark cell
    can describe its own inputs at no cost.

    Parameters
    ----------
    dataset : Dataset
    data : PreparedData
        The output of :func:`prepare_data` for ``dataset``.

    Returns
    -------
    description : dict
        For networks, ``input_width`` and ``width_by_column`` (input columns per feature
        column: one per number, one per category level seen in training, the text
        encoder's outputs per text column); for boosters, ``n_features`` and
        ``categorical_features`` (column -> number of levels seen in training).
    """
    if data.kind == Preprocessing.NETWORK:
        transformer = data.transformer
        widths: dict[str, int] = {}
        text = set(text_columns(dataset))
        names = ([str(n) for n in transformer.feature_names_in_]
                 if hasattr(transformer, "feature_names_in_") else [])
        categories = iter(transformer.categories_)
        for name, is_categorical in zip(names, transformer.categorical_mask_):
            owner = next((t for t in text if name.startswith(f"{t}_")
                          and name[len(t) + 1:].isdigit()), None)
            key = owner if owner is not None else name
            widths[key] = widths.get(key, 0) + (len(next(categories)) if is_categorical else 1)
        return {"input_width": int(data.X_train.shape[1]), "width_by_column": widths}
    categorical = {
        data.feature_names[index]: int(len(levels))
        for index, levels in zip(data.categorical_features, data.transformer.categories_)
    }
    return {"n_features": int(data.X_train.shape[1]), "categorical_features": categorical}


def describe_dataset(dataset: Dataset) -> dict[str, Any]:
    """What the column roles did to a dataset, before any split (JSON-able).

    Returns
    -------
    description : dict
        ``dataset``, ``rows`` (``total``, ``dropped_missing_target``), ``columns_before``
        (raw feature columns, target excluded), ``columns_after`` (feature columns after the
        roles), ``dropped`` (column -> reason) and ``columns`` (the role entries of
        ``metadata["column_roles"]["columns"]``, each with ``role`` and ``encoding``).
    """
    roles = dataset.metadata.get("column_roles") or {}
    return {
        "dataset": dataset.source,
        "rows": {
            "total": dataset.n_samples,
            "dropped_missing_target": int(dataset.metadata.get("dropped_missing_target", 0)),
        },
        "columns_before": int(roles.get("columns_before", dataset.n_features)),
        "columns_after": dataset.n_features,
        "dropped": dict(roles.get("dropped", {})),
        "columns": [dict(entry) for entry in roles.get("columns", [])],
    }


def describe_preprocessing(dataset: Dataset, split: Split) -> dict[str, Any]:
    """Say, as plain JSON-able data, what each model family receives for one split.

    Fits both preprocessings on ``split.train`` (as :func:`prepare_data` does for a cell)
    and combines :func:`describe_dataset` with :func:`describe_inputs` of each family.

    Parameters
    ----------
    dataset : Dataset
    split : Split

    Returns
    -------
    description : dict
        :func:`describe_dataset`'s keys, with ``rows`` completed by ``train``, ``valid``
        and ``test``, plus ``network`` and ``tree``, each :func:`describe_inputs`.
    """
    description = describe_dataset(dataset)
    description["rows"] |= {"train": int(len(split.train)), "valid": int(len(split.valid)),
                            "test": int(len(split.test))}
    for kind in ("network", "tree"):
        description[kind] = describe_inputs(dataset, prepare_data(dataset, split, kind))
    return description
