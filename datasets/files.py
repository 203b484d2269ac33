"""Local CSV / Parquet files as datasets (``file:PATH?target=COLUMN``).

Files are read the way they come: the field separator of a CSV file is detected (comma,
semicolon, tab or bar; ``?sep=`` overrides it), ``?decimal=,`` reads decimal commas, and the
columns then get their roles (:mod:`tabscope.datasets.roles`; ``?drop=``, ``?categorical=``,
``?keep=``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .base import Dataset, DatasetError
from .tabular import build_dataset, check_task, infer_task

__all__ = ["FILE_FORMATS", "SEPARATORS", "detect_separator", "load_file"]

#: Field separators detected in CSV files, in order of preference on a tie.
SEPARATORS = (",", ";", "\t", "|")
_SAMPLE_LINES = 200

#: File name endings tabscope reads, and the reader used for each.
FILE_FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".csv.bz2": "csv",
    ".csv.zip": "csv",
    ".csv.xz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def load_file(
    path: str,
    *,
    target: str,
    task: str | None,
    source: str,
    sep: str | None = None,
    decimal: str = ".",
    drop: Sequence[str] = (),
    categorical: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> Dataset:
    """Read a CSV or Parquet file into a :class:`Dataset`.

    Parameters
    ----------
    path : str
        File path; the format follows the ending (see :data:`FILE_FORMATS`).
    target : str
        Name of the target column; every other column is a feature.
    task : {"regression", "classification"} or None
        None infers the task with :func:`tabscope.datasets.tabular.infer_task`.
    source : str
        Canonical source string, kept on the dataset and used in messages.
    sep : str, optional
        CSV field separator; default: detected (:func:`detect_separator`).
    decimal : {".", ","}, default="."
        Decimal mark of numbers in a CSV file.
    drop, categorical, keep : sequence of str
        Column roles the user sets (:func:`tabscope.datasets.roles.assign_column_roles`).

    Returns
    -------
    dataset : Dataset
        ``metadata`` holds the resolved ``path``, the ``format``, the ``separator`` and
        ``decimal`` mark of a CSV file, and the ``column_roles``.
    """
    check_task(task)
    if decimal not in (".", ","):
        raise DatasetError(f"{source}: decimal must be '.' or ',', got {decimal!r}")
    if sep is not None and (len(sep) != 1 or sep == decimal or sep in "\"\n\r"):
        raise DatasetError(
            f"{source}: sep must be one character other than the decimal mark, got {sep!r}"
        )
    file = Path(path).expanduser()
    file_format = _format_of(file, source)
    if not file.is_file():
        raise DatasetError(f"{source}: no such file {str(file)!r}")
    csv_options: dict = {}
    if file_format != "parquet":
        if sep is None:
            sep = "\t" if file_format == "tsv" else detect_separator(file, source)
        csv_options = {"separator": sep, "decimal": decimal}
    frame = _read(file, file_format, source, sep=sep, decimal=decimal)
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DatasetError(f"{source}: the file {str(file)!r} holds no data rows")
    if target not in frame.columns:
        raise DatasetError(
            f"{source}: target column {target!r} is not in {str(file)!r}; "
            f"available columns: {[str(c) for c in frame.columns]}"
        )
    target_column = frame[target]
    inferred = infer_task(target_column) if task is None else task
    return build_dataset(
        source=source,
        name=_stem(file),
        features=frame.drop(columns=[target]),
        target=target_column,
        target_name=target,
        task=inferred,
        metadata={
            "origin": "file",
            "path": str(file.resolve()),
            "format": file_format,
            "task_inferred": task is None,
            **csv_options,
        },
        drop=drop,
        categorical_columns=categorical,
        keep=keep,
    )


def detect_separator(file: Path, source: str = "") -> str:
    """Guess the field separator of a CSV file from its first lines.

    Each candidate of :data:`SEPARATORS` splits the sampled lines (quotes respected); the
    separator is the one giving the same number of fields, at least two, on every line,
    with the most fields (ties: the earlier candidate). A file that no candidate splits
    consistently is read with commas.

    Parameters
    ----------
    file : Path
        The CSV file (compressed files are read through pandas' decompression).
    source : str
        For messages.

    Returns
    -------
    separator : str
    """
    try:
        lines = _head_lines(file)
    except (OSError, UnicodeDecodeError, EOFError):
        return ","
    best, best_fields = ",", 1
    for candidate in SEPARATORS:
        counts = {len(row) for row in csv.reader(io.StringIO("\n".join(lines)),
                                                 delimiter=candidate) if row}
        if len(counts) == 1:
            fields = counts.pop()
            if fields > best_fields:
                best, best_fields = candidate, fields
    return best


def _head_lines(file: Path) -> list[str]:
    """The first lines of a (possibly compressed) text file, the last partial line cut."""
    name = file.name.lower()
    if name.endswith((".gz", ".bz2", ".xz", ".zip")):
        chunk = pd.read_csv(file, sep="\x1f", header=None, nrows=_SAMPLE_LINES,
                            dtype=str, quoting=csv.QUOTE_NONE, engine="python")
        return [str(v) for v in chunk.iloc[:, 0]]
    with open(file, encoding="utf-8-sig", newline="") as handle:
        text = handle.read(256 * 1024)
    lines = text.splitlines()
    if len(text) == 256 * 1024 and len(lines) > 1:
        lines = lines[:-1]
    return [line for line in lines[:_SAMPLE_LINES] if line.strip()]


def _format_of(file: Path, source: str) -> str:
    name = file.name.lower()
    for ending in sorted(FILE_FORMATS, key=len, reverse=True):
        if name.endswith(ending):
            return FILE_FORMATS[ending]
    raise DatasetError(
        f"{source}: cannot tell the format of {str(file)!r}; expected a name ending in one of "
        f"{sorted(FILE_FORMATS)}"
    )


def _read(file: Path, file_format: str, source: str, *, sep: str | None,
          decimal: str) -> pd.DataFrame:
    try:
        if file_format == "parquet":
            return pd.read_parquet(file)
        # pandas renames a repeated header to "name.1" silently; a user should hear of it.
        header = pd.read_csv(file, sep=sep, header=None, nrows=1).iloc[0].astype(str)
        repeated = sorted(set(header[header.duplicated()]))
        if repeated:
            raise DatasetError(
                f"{source}: column name(s) {repeated} appear more than once in the header "
                f"of {str(file)!r}; rename them"
            )
        return pd.read_csv(file, sep=sep, decimal=decimal)
    except DatasetError:
        raise
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{source}: the file {str(file)!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DatasetError(
            f"{source}: cannot read {str(file)!r} as {file_format}: {exc}"
        ) from None


def _stem(file: Path) -> str:
    name = file.name
    for ending in sorted(FILE_FORMATS, key=len, reverse=True):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return file.stem
