"""Feature transformers for the two model kinds (Grinsztajn et al., 2022).

:class:`NetworkFeatureTransformer` prepares inputs for neural networks: numerical features
are median-imputed and quantile-transformed to a Gaussian, categorical features are
imputed with their most frequent value and one-hot encoded (unknown categories give an
all-zero block). :class:`TreeFeatureTransformer` leaves numbers as they are (NaN kept, since
boosting libraries route missing values themselves) and ordinal-encodes categoricals,
with unknown categories and missing values as NaN.

Both learn everything in ``fit`` from the training rows only; ``transform`` never changes
the fitted state.

Categorical columns are found from a DataFrame's dtypes (``category``, ``object``,
``string``, ``bool``) or given by ``categorical_features``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

__all__ = ["NetworkFeatureTransformer", "TreeFeatureTransformer"]

_MISSING_CATEGORY = "__missing__"


class _MixedColumnsMixin:
    """Input handling shared by the two transformers: numeric block + categorical columns."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _categorical_mask(self, X, n_features: int, names: np.ndarray | None) -> np.ndarray:
        spec = self.categorical_features
        if isinstance(spec, str) and spec == "auto":
            if isinstance(X, pd.DataFrame):
                return np.array([_is_categorical_dtype(dtype) for dtype in X.dtypes], dtype=bool)
            return np.zeros(n_features, dtype=bool)
        if spec is None:
            return np.zeros(n_features, dtype=bool)
        if isinstance(spec, str) or not isinstance(spec, Sequence | np.ndarray):
            raise TypeError(
                "categorical_features must be 'auto', None, or a list of booleans, column "
                f"indices or column names, got {spec!r}"
            )
        values = list(spec)
        mask = np.zeros(n_features, dtype=bool)
        if values and all(isinstance(v, bool | np.bool_) for v in values):
            if len(values) != n_features:
                raise ValueError(
                    f"categorical_features has {len(values)} booleans for {n_features} features"
                )
            return np.asarray(values, dtype=bool)
        for value in values:
            if isinstance(value, str):
                if names is None or value not in list(names):
                    raise ValueError(
                        f"categorical_features names column {value!r}, which is not among the "
                        "input's columns"
                    )
                mask[list(names).index(value)] = True
            elif isinstance(value, numbers.Integral) and -n_features <= value < n_features:
                mask[int(value)] = True
            else:
                raise ValueError(
                    f"categorical_features entry {value!r} is not a column index in "
                    f"[0, {n_features}) or a column name"
                )
        return mask

    def _columns(self, X, *, reset: bool) -> tuple[np.ndarray, list[np.ndarray], list]:
        """Validate X; return (float64 numeric block, categorical columns, declared categories)."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, skip_check_array=True, reset=reset)
            frame = X
            if frame.shape[0] == 0:
                raise ValueError("X has 0 samples; at least one is required")
        else:
            frame = None
        if reset:
            names = getattr(self, "feature_names_in_", None)
            n_features = X.shape[1] if frame is not None else _n_columns(X)
            self.categorical_mask_ = self._categorical_mask(X, n_features, names)
        mask = self.categorical_mask_
        if frame is None:
            dtype = np.float64 if not mask.any() else None
            X = validate_data(
                self, X, dtype=dtype, ensure_all_finite="allow-nan" if dtype else False, reset=reset
            )
            numeric = _as_float(X[:, ~mask], "X")
            categorical = [X[:, j].astype(object) for j in np.flatnonzero(mask)]
            declared = [None] * len(categorical)
        else:
            numeric_columns = [frame.columns[j] for j in np.flatnonzero(~mask)]
            for column in numeric_columns:
                if not pd.api.types.is_numeric_dtype(frame[column].dtype):
                    raise ValueError(
                        f"column {column!r} has dtype {frame[column].dtype} but is not declared "
                        "categorical; make it numeric or list it in categorical_features"
                    )
            numeric = _as_float(frame[numeric_columns].to_numpy(dtype=np.float64), "X")
            categorical, declared = [], []
            for j in np.flatnonzero(mask):
                column = frame.iloc[:, j]
                is_cat = isinstance(column.dtype, pd.CategoricalDtype)
                declared.append(column.cat.categories if is_cat else None)
                categorical.append(np.asarray(column.astype(object).to_numpy(), dtype=object))
        return numeric, categorical, declared

    def _fit_categories(self, categorical: list[np.ndarray], declared: list) -> None:
        self.categories_ = [
            _learn_categories(values, categories)
            for values, categories in zip(categorical, declared)
        ]

    def _input_names(self) -> np.ndarray:
        return _check_feature_names_in(self, None)


class NetworkFeatureTransformer(_MixedColumnsMixin, TransformerMixin, BaseEstimator):
    """Quantile-transform numbers and one-hot encode categories, for neural networks.

    Output columns: the numerical features (in input order), then one block of indicator
    columns per categorical feature, one column per category seen in training.

    Parameters
    ----------
    categorical_features : "auto", None or list, default="auto"
        Which input columns are categorical: "auto" uses a DataFrame's dtypes (no
        categoricals for arrays); a list of booleans (one per column), of column indices,
        or of column names; None for none.
    n_quantiles : int, default=1000
        Quantiles of the quantile transform; capped at the number of training rows.
    random_state : int, RandomState or None, default=0
        Seeds the quantile transformer's subsampling (only used beyond 10**5 rows).

    Attributes
    ----------
    categorical_mask_ : ndarray of bool
        Which input columns were treated as categorical.
    median_imputer_ : SimpleImputer or None
        Median imputer of the numerical columns.
    quantile_transformer_ : QuantileTransformer or None
        Gaussian quantile transform of the (imputed) numerical columns.
    fill_values_ : list
        Most frequent training value of each categorical column (used for missing values).
    categories_ : list of ndarray
        Categories seen in training, per categorical column, in output order.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    """

    def __init__(self, categorical_features="auto", n_quantiles=1000, random_state=0):
        self.categorical_features = categorical_features
        self.n_quantiles = n_quantiles
        self.random_state = random_state

    def fit(self, X, y=None):
        """Learn imputation values, quantiles and categories from ``X`` (training rows).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        n_quantiles = self.n_quantiles
        if isinstance(n_quantiles, bool) or not isinstance(n_quantiles, numbers.Integral) or (
            n_quantiles < 1
        ):
            raise ValueError(f"n_quantiles must be an integer >= 1, got {self.n_quantiles!r}")
        numeric, categorical, declared = self._columns(X, reset=True)
        n_rows = numeric.shape[0]
        if numeric.shape[1]:
            self.median_imputer_ = SimpleImputer(strategy="median", keep_empty_features=True)
            imputed = self.median_imputer_.fit_transform(numeric)
            self.quantile_transformer_ = QuantileTransformer(
                n_quantiles=min(int(self.n_quantiles), n_rows),
                output_distribution="normal",
                subsample=100_000,
                random_state=self.random_state,
            ).fit(imputed)
        else:
            self.median_imputer_ = None
            self.quantile_transformer_ = None
        self.fill_values_ = [_most_frequent(values) for values in categorical]
        filled = [_fill(values, fill) for values, fill in zip(categorical, self.fill_values_)]
        self._fit_categories(filled, declared)
        return self

    def transform(self, X):
        """Map ``X`` with the fitted transforms.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        X_out : ndarray of float64, shape (n_samples, n_output_features)
        """
        check_is_fitted(self, "categories_")
        numeric, categorical, _ = self._columns(X, reset=False)
        blocks = []
        if self.quantile_transformer_ is not None:
            imputed = self.median_imputer_.transform(numeric)
            blocks.append(self.quantile_transformer_.transform(imputed))
        for values, fill, categories in zip(categorical, self.fill_values_, self.categories_):
            codes = _codes(_fill(values, fill), categories)
            one_hot = np.zeros((len(codes), len(categories)), dtype=np.float64)
            known = codes >= 0
            one_hot[np.flatnonzero(known), codes[known]] = 1.0
            blocks.append(one_hot)
        if not blocks:
            return np.zeros((numeric.shape[0], 0), dtype=np.float64)
        return np.hstack(blocks).astype(np.float64, copy=False)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: numerical names, then ``<column>_<category>``.

        Parameters
        ----------
        input_features : array-like of str, optional
            Input names; default ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "categories_")
        names = _check_feature_names_in(self, input_features)
        out = [str(name) for name in names[~self.categorical_mask_]]
        for name, categories in zip(names[self.categorical_mask_], self.categories_):
            out.extend(f"{name}_{category}" for category in categories)
        return np.asarray(out, dtype=object)


class TreeFeatureTransformer(_MixedColumnsMixin, TransformerMixin, BaseEstimator):
    """Keep numbers as they are and ordinal-encode categories, for boosted trees.

    Output columns follow the input order. Numerical values (and their NaN) are unchanged;
    a categorical value becomes the index of its category among those seen in training
    (in the DataFrame's declared category order, else sorted); unknown categories and
    missing values become NaN.

    Parameters
    ----------
    categorical_features : "auto", None or list, default="auto"
        Which input columns are categorical; see :class:`NetworkFeatureTransformer`.

    Attributes
    ----------
    categorical_mask_ : ndarray of bool
        Which input columns are categorical.
    categorical_indices_ : ndarray of int
        Their positions (the same in the output).
    categories_ : list of ndarray
        Categories seen in training, per categorical column; the code is the position.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    """

    def __init__(self, categorical_features="auto"):
        self.categorical_features = categorical_features

    def fit(self, X, y=None):
        """Learn the categories of the categorical columns from ``X`` (training rows).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        _, categorical, declared = self._columns(X, reset=True)
        self._fit_categories(categorical, declared)
        self.categorical_indices_ = np.flatnonzero(self.categorical_mask_).astype(np.int64)
        return self

    def transform(self, X):
        """Encode ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        X_out : ndarray of float64, shape (n_samples, n_features)
        """
        check_is_fitted(self, "categories_")
        numeric, categorical, _ = self._columns(X, reset=False)
        out = np.empty((numeric.shape[0], self.categorical_mask_.size), dtype=np.float64)
        out[:, ~self.categorical_mask_] = numeric
        for j, values, categories in zip(self.categorical_indices_, categorical, self.categories_):
            codes = _codes(values, categories).astype(np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns (the input names).

        Parameters
        ----------
        input_features : array-like of str, optional

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "categories_")
        names = _check_feature_names_in(self, input_features)
        return np.asarray([str(name) for name in names], dtype=object)


def _is_categorical_dtype(dtype) -> bool:
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _n_columns(X) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2:
        return int(shape[1])
    array = np.asarray(X, dtype=object)
    return int(array.shape[1]) if array.ndim == 2 else 0


def _as_float(block: np.ndarray, argument: str) -> np.ndarray:
    try:
        values = np.asarray(block, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argument}: numerical columns must hold numbers ({exc})") from None
    if np.isinf(values).any():
        raise ValueError(f"{argument} contains infinity; numerical features must be finite or NaN")
    return values


def _is_missing(values: np.ndarray) -> np.ndarray:
    return pd.isna(pd.Series(values, dtype=object)).to_numpy()


def _most_frequent(values: np.ndarray):
    """Most frequent non-missing value (ties: the smallest as text); a marker if all are missing."""
    present = pd.Series(values, dtype=object)[~_is_missing(values)]
    if present.empty:
        return _MISSING_CATEGORY
    counts = present.value_counts(sort=False)
    best = counts.max()
    return min(counts.index[counts == best], key=lambda v: (str(type(v)), str(v)))


def _fill(values: np.ndarray, fill) -> np.ndarray:
    out = np.asarray(values, dtype=object).copy()
    out[_is_missing(out)] = fill
    return out


def _learn_categories(values: np.ndarray, declared: pd.Index | None) -> np.ndarray:
    """Categories present in ``values``: in ``declared`` order when given, else sorted."""
    present = pd.unique(pd.Series(values, dtype=object)[~_is_missing(values)])
    if declared is not None:
        seen = set(present)
        ordered = [category for category in declared if category in seen]
        if len(ordered) == len(present):
            return np.asarray(ordered, dtype=object)
    try:
        return np.asarray(sorted(present), dtype=object)
    except TypeError:  # mixed types: order by type name, then text
        return np.asarray(sorted(present, key=lambda v: (str(type(v)), str(v))), dtype=object)


def _codes(values: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Position of each value in ``categories``; -1 for unknown or missing values."""
    lookup = {category: code for code, category in enumerate(categories)}
    series = pd.Series(values, dtype=object)
    codes = series.map(lookup).where(~_is_missing(values))
    return codes.fillna(-1).to_numpy(dtype=np.int64)
