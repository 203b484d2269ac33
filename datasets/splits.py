"""Seeded train / validation / test splits shared by every model of a benchmark cell."""

from __future__ import annotations

import hashlib
import logging
import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from .base import CLASSIFICATION, Dataset, DatasetError

__all__ = ["Split", "make_split", "split_hash"]

logger = logging.getLogger(__name__)

_MAX_SEED = 2**32 - 1


@dataclass(frozen=True, eq=False)
class Split:
    """Row indices of one train / validation / test split of a dataset.

    Attributes
    ----------
    train, valid, test : ndarray of int64
        Sorted, disjoint row indices into ``dataset.X``.
    seed : int
        The seed the split was drawn with.
    hash : str
        Hex sha256 of the three index arrays (:func:`split_hash`): equal hashes mean
        identical splits.
    stratified : bool
        Whether every draw was stratified by class (False for regression).
    official_split : int or None
        For OpenML tasks, the number of the official split used (repeat-major).
    note : str or None
        Why stratification was dropped, when it was.
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    seed: int
    hash: str
    stratified: bool = False
    official_split: int | None = None
    note: str | None = None


def split_hash(train: np.ndarray, valid: np.ndarray, test: np.ndarray) -> str:
    """Return the hex sha256 of three index arrays (as little-endian int64, with lengths)."""
    digest = hashlib.sha256()
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        values = np.ascontiguousarray(part, dtype="<i8")
        digest.update(name.encode())
        digest.update(np.int64(values.size).astype("<i8").tobytes())
        digest.update(values.tobytes())
    return digest.hexdigest()


def make_split(
    dataset: Dataset,
    seed: int,
    *,
    test_size: float | int = 0.2,
    valid_size: float | int = 0.1,
    max_train: int | None = 10_000,
) -> Split:
    """Draw the split of ``dataset`` for ``seed``.

    For classification every draw is stratified by class, unless a class is too small to
    be divided (then that draw is uniform and ``Split.note`` says why). For an OpenML task
    (``dataset.official_splits`` set) the official split number ``seed % n_splits`` is used
    as-is: its test fold is the test part, and the validation part is carved out of its
    training part.

    Parameters
    ----------
    dataset : Dataset
        The dataset to split.
    seed : int
        Non-negative seed; the same seed gives the same split.
    test_size : float or int, default=0.2
        Test share of all rows (float in (0, 1)) or row count (int); ignored for OpenML
        tasks, whose test fold is fixed.
    valid_size : float or int, default=0.1
        Validation share of all rows or row count.
    max_train : int or None, default=10_000
        Cap on the training part; a larger one is subsampled (stratified). None: no cap.

    Returns
    -------
    split : Split
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a tabscope Dataset, got {type(dataset).__name__}")
    if not _is_int(seed) or not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
    if max_train is not None and (not _is_int(max_train) or max_train < 2):
        raise ValueError(f"max_train must be an integer >= 2 or None, got {max_train!r}")
    seed = int(seed)
    n_rows = dataset.n_samples
    labels = _class_codes(dataset)
    rng = np.random.RandomState(seed)
    notes: list[str] = []
    stratified = labels is not None
    official = None

    if dataset.official_splits:
        official = seed % len(dataset.official_splits)
        pool, test = (np.asarray(p, dtype=np.int64) for p in dataset.official_splits[official])
    else:
        n_test = _row_count(test_size, n_rows, "test_size")
        rows = np.arange(n_rows, dtype=np.int64)
        test, pool, ok = _draw(rows, n_test, labels, rng, "test", notes)
        stratified &= ok
    n_valid = _row_count(valid_size, n_rows, "valid_size")
    if len(pool) - n_valid < 2:
        raise DatasetError(
            f"{dataset.source}: {len(pool)} rows remain after the test part, too few for "
            f"valid_size={valid_size!r} and a training part of at least 2 rows"
        )
    valid, train, ok = _draw(pool, n_valid, labels, rng, "validation", notes)
    stratified &= ok
    if max_train is not None and len(train) > max_train:
        kept, _, ok = _draw(train, int(max_train), labels, rng, "training subsample", notes)
        train = kept
        stratified &= ok

    train, valid, test = np.sort(train), np.sort(valid), np.sort(test)
    note = "; ".join(notes) if notes else None
    if note:
        logger.warning("%s, seed %d: %s", dataset.source, seed, note)
    return Split(
        train=train,
        valid=valid,
        test=test,
        seed=seed,
        hash=split_hash(train, valid, test),
        stratified=bool(stratified),
        official_split=official,
        note=note,
    )


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _class_codes(dataset: Dataset) -> np.ndarray | None:
    if dataset.task != CLASSIFICATION:
        return None
    return np.unique(dataset.y, return_inverse=True)[1].astype(np.int64)


def _row_count(size: float | int, n_rows: int, argument: str) -> int:
    """Turn a share (float in (0, 1)) or count (int >= 1) into a number of rows."""
    if isinstance(size, bool) or not isinstance(size, numbers.Real):
        raise TypeError(f"{argument} must be a float in (0, 1) or an int >= 1, got {size!r}")
    if isinstance(size, numbers.Integral):
        if not 1 <= size < n_rows:
            raise ValueError(f"{argument} must be between 1 and {n_rows - 1} rows, got {size}")
        return int(size)
    if not 0.0 < size < 1.0:
        raise ValueError(f"{argument} must be a float in (0, 1) or an int >= 1, got {size!r}")
    return max(1, int(round(size * n_rows)))


def _draw(
    pool: np.ndarray,
    count: int,
    labels: np.ndarray | None,
    rng: np.random.RandomState,
    part: str,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Choose ``count`` rows of ``pool``; return (chosen, rest, whether stratified)."""
    reason = None if labels is None else _stratification_problem(labels[pool], count)
    if labels is None or reason is not None:
        if reason is not None:
            notes.append(f"{part} part drawn without stratification: {reason}")
        order = rng.permutation(len(pool))
        return pool[order[:count]], pool[order[count:]], False
    rest, chosen = train_test_split(pool, test_size=count, stratify=labels[pool], random_state=rng)
    return chosen, rest, True


def _stratification_problem(pool_labels: np.ndarray, count: int) -> str | None:
    """Say why a stratified draw of ``count`` rows from these labels is impossible, if it is."""
    classes, counts = np.unique(pool_labels, return_counts=True)
    if counts.min() < 2:
        return (
            f"{int((counts < 2).sum())} class(es) have a single row here, and a stratified "
            "draw needs at least 2 per class"
        )
    if count < len(classes) or len(pool_labels) - count < len(classes):
        return (
            f"{count} of {len(pool_labels)} rows cannot hold all {len(classes)} classes on "
            "both sides"
        )
    return None
