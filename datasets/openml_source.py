"""OpenML datasets, tasks and suites through the ``openml`` package, with a verified cache.

Configuration and network handling live in :mod:`.openml_session`, cache integrity in
:mod:`.openml_cache`; this module asks openml for the data and turns it into a
:class:`~tabscope.datasets.base.Dataset`.

The openml package's cache is not safe for several processes writing the same entry:
fill the cache once (e.g. ``tabscope datasets show``) before running parallel workers.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import xml.parsers.expat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import CLASSIFICATION, REGRESSION, Dataset, DatasetError, OpenMLUnavailableError
from .openml_cache import (
    DATASET_METADATA_FILES,
    TASK_FILES,
    CacheRepair,
    Unreadable,
    data_file_names,
    inspect_dataset_cache,
    inspect_task_cache,
    record_manifest,
)
from .openml_session import (
    OpenMLSession,
    environment_variable,
    openml_errors,
    openml_session,
    unavailable_error,
    unreachable_reason,
)
from .tabular import build_dataset, check_task

__all__ = ["expand_openml_suite", "load_openml_dataset", "load_openml_task"]

logger = logging.getLogger(__name__)


def _data_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning a cached data or split file could not be parsed."""
    import arff

    return (
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        EOFError,
        UnicodeDecodeError,
        arff.ArffException,
        pickle.UnpicklingError,
    )


# Narrower than _data_errors(): while fetching metadata openml raises ValueError for
# reasons that have nothing to do with the cache's contents.
_METADATA_ERRORS = (
    KeyError,
    TypeError,
    UnicodeDecodeError,
    xml.parsers.expat.ExpatError,
    pickle.UnpicklingError,
)


@dataclass(frozen=True)
class _RawOpenMLData:
    dataset_id: int
    name: str
    version: int | None
    default_target: str | None
    frame: pd.DataFrame  # every column, the target included
    categorical: list[bool]
    feature_types: dict[str, str]  # column -> OpenML type: nominal, numeric, string, ...


def _fetch_dataset(session: OpenMLSession, dataset_id: int) -> _RawOpenMLData:
    """Load one OpenML dataset's table, checking, repairing and recording its cache files."""
    import openml

    repair = CacheRepair(f"OpenML dataset {dataset_id}", session.dataset_dir(dataset_id))
    for attempt in (1, 2):
        state = inspect_dataset_cache(repair.directory, dataset_id)
        repair.discard(state.damage)
        complete = state.complete and not state.damage
        skip_parquet = None
        if state.arff_fallback and unreachable_reason(session) is not None:
            # The advertised Parquet file is not cached but the ARFF, with the same data, is.
            skip_parquet, complete = "true", True
        repair.require(session, complete)
        try:
            with environment_variable("OPENML_SKIP_PARQUET", skip_parquet), openml_errors(
                repair.what, session, repair.directory
            ):
                try:
                    dataset = openml.datasets.get_dataset(
                        dataset_id,
                        download_data=True,
                        download_qualities=False,
                        download_features_meta_data=True,
                    )
                except _METADATA_ERRORS as exc:
                    raise Unreadable(DATASET_METADATA_FILES, exc) from None
                try:
                    features = dataset.features
                except _METADATA_ERRORS as exc:
                    raise Unreadable(("features.xml",), exc) from None
                try:
                    frame, _, categorical, _ = dataset.get_data(dataset_format="dataframe")
                except _data_errors() as exc:
                    raise Unreadable(data_file_names(dataset_id), exc) from None
        except Unreadable as signal:
            repair.unreadable(signal, last_attempt=attempt == 2)
            continue
        except OpenMLUnavailableError as exc:
            raise repair.refetch_failed(exc) from None
        break
    if not isinstance(frame, pd.DataFrame):
        raise DatasetError(f"{repair.what} is sparse; tabscope handles dense tables only")
    record_manifest(
        repair.directory, (*DATASET_METADATA_FILES, *data_file_names(dataset_id)), repair.what
    )
    return _RawOpenMLData(
        dataset_id=dataset_id,
        name=str(dataset.name),
        version=int(dataset.version) if dataset.version is not None else None,
        default_target=dataset.default_target_attribute,
        frame=frame,
        categorical=list(categorical),
        feature_types={feature.name: feature.data_type for feature in features.values()},
    )


def _assemble(
    raw: _RawOpenMLData,
    target_name: str,
    task: str,
    source: str,
    session: OpenMLSession,
    *,
    extra: dict[str, Any],
    official_splits: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None,
) -> Dataset:
    # Free text and dates are neither numbers nor categories a tabular model can use.
    unusable = [
        str(column)
        for column in raw.frame.columns
        if column != target_name and raw.feature_types.get(column) not in ("numeric", "nominal")
    ]
    if unusable:
        logger.warning(
            "%s: dropping %d feature(s) that are neither numeric nor nominal: %s",
            source, len(unusable), unusable,
        )
    keep = [
        (column, flag)
        for column, flag in zip(raw.frame.columns, raw.categorical)
        if column != target_name and str(column) not in unusable
    ]
    return build_dataset(
        source=source,
        name=raw.name,
        features=raw.frame[[column for column, _ in keep]],
        target=raw.frame[target_name],
        target_name=target_name,
        task=task,
        categorical=[flag for _, flag in keep],
        official_splits=official_splits,
        metadata={
            "origin": "openml",
            "openml_server": session.server,
            "openml_dataset_id": raw.dataset_id,
            "openml_dataset_version": raw.version,
            "dropped_features": unusable,
            **extra,
        },
    )


def load_openml_dataset(
    dataset_id: int,
    *,
    target: str | None = None,
    task: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    openml_server: str | None = None,
    offline: bool | None = None,
    source: str | None = None,
) -> Dataset:
    """Load OpenML dataset ``dataset_id`` with its default (or the given) target.

    Parameters
    ----------
    dataset_id : int
        OpenML dataset id.
    target : str, optional
        Target column; defaults to the dataset's default target attribute.
    task : {"regression", "classification"}, optional
        Defaults to classification for a nominal (or string) target and regression for a
        numeric one.
    cache_dir, openml_server, offline
        See :func:`tabscope.datasets.openml_session.openml_session`.
    source : str, optional
        Canonical source string to record (default ``"openml:<id>"``).

    Returns
    -------
    dataset : Dataset
    """
    check_task(task)
    source = source or f"openml:{dataset_id}"
    with openml_session(cache_dir, openml_server, offline=offline) as session:
        raw = _fetch_dataset(session, dataset_id)
    columns = [str(column) for column in raw.frame.columns]
    target_name = target if target is not None else raw.default_target
    if not target_name or (target is None and "," in target_name):
        raise DatasetError(
            f"{source}: the dataset has no single default target ({raw.default_target!r}); "
            f"pass target= one of {columns}"
        )
    if target_name not in raw.frame.columns:
        raise DatasetError(
            f"{source}: target column {target_name!r} is not in the dataset; available "
            f"columns: {columns}"
        )
    if task is None:
        kind = raw.feature_types.get(target_name)
        task = {"numeric": REGRESSION, "nominal": CLASSIFICATION, "string": CLASSIFICATION}.get(
            kind
        )
        if task is None:
            raise DatasetError(
                f"{source}: cannot infer the task from target {target_name!r} of OpenML type "
                f"{kind!r}; pass task='regression' or task='classification'"
            )
    return _assemble(raw, target_name, task, source, session, extra={})


def _split_problem(
    splits: list[tuple[np.ndarray, np.ndarray]],
    n_repeats: int,
    n_folds: int,
    n_rows: int,
    cross_validation: bool,
) -> str | None:
    """Return what is wrong with a task's official splits, or None if they are consistent."""
    for number, (train, test) in enumerate(splits):
        for part, indices in (("train", train), ("test", test)):
            if indices.size == 0:
                return f"split {number} has an empty {part} part"
            if indices.min() < 0 or indices.max() >= n_rows:
                return f"split {number} ({part}) has row ids outside 0..{n_rows - 1}"
            if np.unique(indices).size != indices.size:
                return f"split {number} ({part}) repeats row ids"
        if np.intersect1d(train, test).size:
            return f"split {number} has rows in both train and test"
    if cross_validation:
        for repeat in range(n_repeats):
            covered = np.unique(
                np.concatenate([splits[repeat * n_folds + fold][1] for fold in range(n_folds)])
            )
            if covered.size != n_rows:
                return (
                    f"the test folds of repeat {repeat} cover {covered.size} of {n_rows} rows "
                    "(cross-validation folds must partition the data)"
                )
    return None


def _official_splits(oml_task, n_rows: int) -> tuple[list, dict[str, Any]]:
    """Read every (repeat, fold) split of a task, repeat-major, and check them."""
    try:
        n_repeats, n_folds, _ = oml_task.get_split_dimensions()
        splits = [
            tuple(
                np.asarray(part, dtype=np.int64)
                for part in oml_task.get_train_test_split_indices(
                    fold=fold, repeat=repeat, sample=0
                )
            )
            for repeat in range(n_repeats)
            for fold in range(n_folds)
        ]
    except _data_errors() as exc:
        raise Unreadable(("datasplits.arff",), exc) from None
    procedure = str(oml_task.estimation_procedure.get("type", ""))
    problem = _split_problem(splits, n_repeats, n_folds, n_rows, procedure == "crossvalidation")
    if problem is not None:
        raise Unreadable(("datasplits.arff",), ValueError(problem))
    info = {"estimation_procedure": procedure, "n_repeats": int(n_repeats), "n_folds": int(n_folds)}
    return splits, info


def load_openml_task(
    task_id: int,
    *,
    target: str | None = None,
    task: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    openml_server: str | None = None,
    offline: bool | None = None,
) -> Dataset:
    """Load OpenML task ``task_id``: its dataset, target and official splits.

    Parameters
    ----------
    task_id : int
        OpenML task id (supervised classification or regression).
    target, task : str, optional
        Must match the task's own when given (the task fixes both).
    cache_dir, openml_server, offline
        See :func:`tabscope.datasets.openml_session.openml_session`.

    Returns
    -------
    dataset : Dataset
        ``official_splits`` holds every (repeat, fold) pair in repeat-major order;
        ``metadata`` the task id, estimation procedure, repeats and folds.
    """
    import openml
    from openml.tasks import TaskType

    check_task(task)
    source = f"openml-task:{task_id}"
    supported = {
        TaskType.SUPERVISED_CLASSIFICATION: CLASSIFICATION,
        TaskType.SUPERVISED_REGRESSION: REGRESSION,
    }
    with openml_session(cache_dir, openml_server, offline=offline) as session:
        repair = CacheRepair(f"OpenML task {task_id}", session.task_dir(task_id))
        for attempt in (1, 2):
            damage, dataset_id = inspect_task_cache(repair.directory)
            repair.discard(damage)
            # The dataset first: it has its own checks, and openml.tasks.get_task deletes
            # the task's cache folder when fetching the dataset fails.
            raw = _fetch_dataset(session, dataset_id) if dataset_id is not None else None
            repair.require(
                session, dataset_id is not None and (repair.directory / "datasplits.arff").is_file()
            )
            try:
                with openml_errors(repair.what, session, repair.directory):
                    oml_task = openml.tasks.get_task(
                        task_id,
                        download_splits=False,
                        download_data=False,
                        download_qualities=False,
                        download_features_meta_data=True,
                    )
                    if oml_task.task_type_id not in supported:
                        raise DatasetError(
                            f"{source}: task type {oml_task.task_type!r} is not supported; "
                            "tabscope runs supervised classification and regression tasks"
                        )
                    if raw is None:
                        raw = _fetch_dataset(session, oml_task.dataset_id)
                    splits, info = _official_splits(oml_task, len(raw.frame))
            except Unreadable as signal:
                repair.unreadable(signal, last_attempt=attempt == 2)
                continue
            except OpenMLUnavailableError as exc:
                raise repair.refetch_failed(exc) from None
            break
        record_manifest(repair.directory, TASK_FILES, repair.what)

    kind = supported[oml_task.task_type_id]
    if task is not None and task != kind:
        raise DatasetError(f"{source} is a {kind} task; task={task!r} does not apply")
    if target is not None and target != oml_task.target_name:
        raise DatasetError(
            f"{source} fixes the target {oml_task.target_name!r}; target={target!r} does not apply"
        )
    if oml_task.target_name not in raw.frame.columns:
        raise DatasetError(
            f"{source}: the task's target {oml_task.target_name!r} is not a column of dataset "
            f"{raw.dataset_id}"
        )
    return _assemble(
        raw,
        oml_task.target_name,
        kind,
        source,
        session,
        official_splits=tuple(splits),
        extra={"openml_task_id": task_id, **info},
    )


def expand_openml_suite(
    suite_id: int,
    *,
    cache_dir: str | os.PathLike | None = None,
    openml_server: str | None = None,
    offline: bool | None = None,
) -> list[int]:
    """Return the task ids of OpenML benchmark suite ``suite_id``.

    openml does not cache suites, so tabscope keeps the task list it fetched in
    ``<server cache>/tabscope-suites/<id>.json`` and uses that file from then on: a
    benchmark re-run sees the same tasks even if the suite changes on the server (delete
    the file to refresh it), and works offline.

    Parameters
    ----------
    suite_id : int
        OpenML suite (study) id, e.g. 336.
    cache_dir, openml_server, offline
        See :func:`tabscope.datasets.openml_session.openml_session`.

    Returns
    -------
    task_ids : list of int
    """
    import openml

    what = f"OpenML suite {suite_id}"
    with openml_session(cache_dir, openml_server, offline=offline) as session:
        path = session.suite_file(suite_id)
        cached = _read_suite_file(path)
        if cached is not None:
            return cached
        reason = unreachable_reason(session)
        if reason is not None:
            raise unavailable_error(what, session, path, reason)
        with openml_errors(what, session, path):
            suite = openml.study.get_suite(suite_id)
        task_ids = [int(task_id) for task_id in (suite.tasks or [])]
        if not task_ids:
            raise DatasetError(f"{what} on {session.server} lists no tasks")
        write_suite_file(path, suite_id, task_ids, name=str(suite.name))
        return task_ids


def write_suite_file(path: Path, suite_id: int, task_ids: list[int], *, name: str = "") -> None:
    """Record a suite's task list (atomically: written aside, then moved into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    content = {"suite_id": suite_id, "name": name, "tasks": [int(t) for t in task_ids]}
    temporary.write_text(json.dumps(content, indent=2), encoding="utf8")
    os.replace(temporary, path)


def _read_suite_file(path: Path) -> list[int] | None:
    try:
        content = json.loads(path.read_text(encoding="utf8"))
        tasks = [int(task_id) for task_id in content["tasks"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return tasks or None
