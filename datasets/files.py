"""Local CSV / Parquet files as datasets (``file:PATH?target=COLUMN``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .base import Dataset, DatasetError
from .tabular import build_dataset, check_task, infer_task

__all__ = ["FILE_FORMATS", "load_file"]

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


def load_file(path: str, *, target: str, task: str | None, source: str) -> Dataset:
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

    Returns
    -------
    dataset : Dataset
        ``metadata`` holds the resolved ``path`` and the ``format``.
    """
    check_task(task)
    file = Path(path).expanduser()
    file_format = _format_of(file, source)
    if not file.is_file():
        raise DatasetError(f"{source}: no such file {str(file)!r}")
    frame = _read(file, file_format, source)
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
        },
    )


def _format_of(file: Path, source: str) -> str:
    name = file.name.lower()
    for ending in sorted(FILE_FORMATS, key=len, reverse=True):
        if name.endswith(ending):
            return FILE_FORMATS[ending]
    raise DatasetError(
        f"{source}: cannot tell the format of {str(file)!r}; expected a name ending in one of "
        f"{sorted(FILE_FORMATS)}"
    )


def _read(file: Path, file_format: str, source: str) -> pd.DataFrame:
    try:
        if file_format == "parquet":
            return pd.read_parquet(file)
        separator = "\t" if file_format == "tsv" else ","
        # pandas renames a repeated header to "name.1" silently; a user should hear of it.
        header = pd.read_csv(file, sep=separator, header=None, nrows=1).iloc[0].astype(str)
        repeated = sorted(set(header[header.duplicated()]))
        if repeated:
            raise DatasetError(
                f"{source}: column name(s) {repeated} appear more than once in the header "
                f"of {str(file)!r}; rename them"
            )
        return pd.read_csv(file, sep=separator)
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
