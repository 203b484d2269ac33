"""The results store: one SQLite database (WAL) per results directory, arrays beside it.

Layout of a results directory::

    DIR/tabscope.sqlite                   cells, analyses, tuning trials and run metadata
    DIR/journals/<cell key>.jsonl         a running tuning study's finished trials (bench/tuning.py)
    DIR/arrays/cells/<cell key>/*.parquet  a cell's predictions and per-cell analysis arrays
    DIR/arrays/pairs/<analysis key>/*.parquet   a compared pair's analysis arrays

The store owns the names: the keys of cells and analyses (:func:`cell_id`,
:func:`analysis_id`), where their array files live (:meth:`ResultsStore.array_path`) and how
an analysis row refers to them (its ``arrays_path`` column, a JSON object from array name
to path, read back by :meth:`ResultsStore.read_array`). Everyone else calls these.

Every row is written in one transaction after the array files it points to have been
written atomically (temporary file, then rename), so an interrupted run, even by ``kill -9``,
leaves either a complete cell or no trace of it in the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import pandas as pd

from tabscope.errors import UserError
from tabscope.vocabulary import Metric, choices

__all__ = [
    "CELL_COLUMNS",
    "CELL_INPUTS_ARRAY",
    "DB_NAME",
    "METRIC_COLUMNS",
    "SCHEMA_VERSION",
    "ResultsStore",
    "StoreError",
    "analysis_id",
    "cell_id",
    "storage_key",
]

DB_NAME = "tabscope.sqlite"
ARRAYS_DIR = "arrays"
#: The array every ok cell stores beside its predictions: one row, column ``inputs``, the
#: JSON of :func:`tabscope.datasets.describe_inputs` (what the model family received).
CELL_INPUTS_ARRAY = "inputs"
#: Version 2: the trials table, cells.stopping_step (tuning and early stopping) and analyses
#: that may be "skipped" (estimated too costly) rather than failed.
SCHEMA_VERSION = 2

#: One column per :class:`~tabscope.vocabulary.Metric`, in table order.
METRIC_COLUMNS = choices(Metric)
CELL_COLUMNS = (
    "cell_id", "dataset", "dataset_name", "task", "model", "role", "seed", "status", "error",
    "fit_seconds", "predict_seconds", "stopping_step", *METRIC_COLUMNS, "n_train", "n_test", "split_hash",
    "config_hash", "predictions_path", "finished_at",
)
ANALYSIS_COLUMNS = (
    "analysis_id", "analysis", "dataset", "seed", "models", "status", "error", "summary",
    "arrays_path", "finished_at",
)
#: One row per trial of a cell's tuning study (bench/tuning.py).
TRIAL_COLUMNS = (
    "cell_id", "trial", "params", "status", "validation_score", "test_score", "steps",
    "seconds", "selected", "error",
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL, dataset_name TEXT, task TEXT, model TEXT NOT NULL, role TEXT,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    fit_seconds REAL, predict_seconds REAL, stopping_step INTEGER,
    {", ".join(f"{m} REAL" for m in METRIC_COLUMNS)},
    n_train INTEGER, n_test INTEGER, split_hash TEXT, config_hash TEXT,
    predictions_path TEXT, finished_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS analyses (
    analysis_id TEXT PRIMARY KEY,
    analysis TEXT NOT NULL, dataset TEXT NOT NULL, seed INTEGER NOT NULL, models TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
    error TEXT, summary TEXT, arrays_path TEXT, finished_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    cell_id TEXT NOT NULL, trial INTEGER NOT NULL, params TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('complete', 'pruned', 'failed')),
    validation_score REAL, test_score REAL, steps INTEGER, seconds REAL,
    selected INTEGER NOT NULL, error TEXT,
    PRIMARY KEY (cell_id, trial)
);
"""


class StoreError(UserError, ValueError):
    """A results directory cannot be used (unwritable, incompatible, corrupted)."""


#: Separates the parts of a cell or analysis key.
_KEY_SEPARATOR = "::"
#: Folders under ``arrays/`` of a cell's arrays and of a pair analysis's arrays.
_CELL_ARRAYS, _PAIR_ARRAYS = "cells", "pairs"


def cell_id(dataset: str, model: str, seed: int) -> str:
    """The key of a cell: ``dataset::model::seed``."""
    return _KEY_SEPARATOR.join([str(dataset), str(model), str(seed)])


def analysis_id(analysis: str, dataset: str, seed: int, models: list[str]) -> str:
    """The key of an analysis row: ``analysis::dataset::seed::model[+model]``."""
    return _KEY_SEPARATOR.join([str(analysis), str(dataset), str(seed), "+".join(models)])


def storage_key(key: str) -> str:
    """A file-system-safe folder name for a cell or analysis key."""
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:80]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


class ResultsStore:
    """Read and write the results of benchmark runs in ``directory``.

    Parameters
    ----------
    directory : str or Path
        The results directory.
    create : bool, default=True
        Create the directory and database when missing; with False a missing store is an error.
    """

    def __init__(self, directory: str | os.PathLike, *, create: bool = True):
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a path, got {type(directory).__name__}")
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        if not self.path.exists():
            if not create:
                raise StoreError(f"no tabscope results in {str(self.directory)!r} (no {DB_NAME})")
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create results directory {str(self.directory)!r}: {exc.strerror}"
                ) from None
        if create:
            self._check_writable()
        self._initialise(create)

    def _check_writable(self) -> None:
        # os.access says yes to root even where writes fail (read-only mounts, immutable
        # directories): try it.
        try:
            handle, probe = tempfile.mkstemp(dir=self.directory, prefix=".write-probe-")
        except OSError as exc:
            raise StoreError(
                f"results directory {str(self.directory)!r} is not writable: {exc.strerror}"
            ) from None
        os.close(handle)
        os.unlink(probe)

    # -- connection -------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open results database {str(self.path)!r}: {exc}") from None
        with closing(connection):
            connection.execute("PRAGMA busy_timeout = 30000")
            yield connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _initialise(self, create: bool) -> None:
        try:
            with self._connect() as connection:
                if create:
                    connection.execute("PRAGMA journal_mode = WAL")
                tables = {
                    row[0]
                    for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                if "meta" in tables:
                    row = connection.execute(
                        "SELECT value FROM meta WHERE key = 'schema_version'"
                    ).fetchone()
                    version = int(row[0]) if row else None
                    if version != SCHEMA_VERSION:
                        raise StoreError(
                            f"results in {str(self.directory)!r} were written with store schema "
                            f"version {version}, this tabscope reads version {SCHEMA_VERSION}; "
                            "use a new --out directory or --fresh"
                        )
                elif tables:
                    raise StoreError(
                        f"{str(self.path)!r} is an SQLite database but not a tabscope results store"
                    )
                if create and "meta" not in tables:
                    connection.execute("BEGIN IMMEDIATE")
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        connection.execute(statement)
                    connection.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                    connection.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results database {str(self.path)!r} is unreadable: {exc}") from None

    # -- metadata ---------------------------------------------------------------------------

    def set_meta(self, values: dict[str, object]) -> None:
        """Store run metadata (JSON-encoded values)."""
        with self._transaction() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(key, json.dumps(value, default=str)) for key, value in values.items()],
            )

    def meta(self) -> dict[str, object]:
        """Return the run metadata."""
        with self._connect() as connection:
            rows = connection.execute("SELECT key, value FROM meta").fetchall()
        out = {}
        for key, value in rows:
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                out[key] = value
        return out

    # -- arrays ---------------------------------------------------------------------------

    cell_id = staticmethod(cell_id)
    analysis_id = staticmethod(analysis_id)

    def array_path(self, key: str, name: str) -> str:
        """Where the array ``name`` of a cell or analysis lives, relative to the directory.

        ``key`` is a cell id (the cell's predictions and its per-cell analysis arrays live
        together) or the analysis id of a compared pair's analysis.
        """
        # A cell id has three parts, an analysis id four (see cell_id, analysis_id).
        group = _CELL_ARRAYS if key.count(_KEY_SEPARATOR) == 2 else _PAIR_ARRAYS
        return (Path(ARRAYS_DIR) / group / storage_key(key) / f"{name}.parquet").as_posix()

    def write_arrays(self, key: str, frames: Mapping[str, pd.DataFrame]) -> dict[str, str]:
        """Write each named frame of a cell or analysis (:meth:`array_path`); return
        ``{name: relative path}``, the value of an analysis row's ``arrays_path``."""
        return {name: self._write_parquet(self.array_path(key, name), frame)
                for name, frame in frames.items()}

    def write_frame(self, relative_path: str, frame: pd.DataFrame) -> str:
        """Write ``frame`` as Parquet under ``arrays/`` atomically; return its relative path."""
        return self._write_parquet((Path(ARRAYS_DIR) / relative_path).as_posix(), frame)

    def _write_parquet(self, relative: str, frame: pd.DataFrame) -> str:
        target = self.directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".parquet")
        os.close(handle)
        try:
            frame.to_parquet(temporary, index=False)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return relative

    def read_frame(self, relative_path: str) -> pd.DataFrame:
        """Read a Parquet file written by :meth:`write_arrays` or :meth:`write_frame`."""
        path = self.directory / relative_path
        try:
            return pd.read_parquet(path)
        except FileNotFoundError:
            raise StoreError(f"array file {str(path)!r} is missing from the results directory") from None
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise StoreError(f"array file {str(path)!r} is unreadable: {exc}") from None

    @staticmethod
    def array_paths(row: Mapping) -> dict[str, str]:
        """``{name: relative path}`` of the arrays an analysis row refers to ({} for none)."""
        value = row.get("arrays_path")
        if isinstance(value, Mapping):
            return dict(value)
        if not isinstance(value, str) or not value:
            return {}
        try:
            paths = json.loads(value)
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"arrays_path of {row.get('analysis_id')} is not valid JSON: {exc}"
            ) from None
        if not isinstance(paths, dict):
            raise StoreError(f"arrays_path of {row.get('analysis_id')} is not a JSON object")
        return paths

    def read_array(self, row: Mapping, name: str) -> pd.DataFrame:
        """The array ``name`` of an analysis row; StoreError when it was not stored or its
        file is missing or damaged."""
        paths = self.array_paths(row)
        if name not in paths:
            raise StoreError(f"no array named {name!r} was stored for {row.get('analysis_id')}")
        return self.read_frame(paths[name])

    def read_arrays(self, row: Mapping) -> dict[str, pd.DataFrame]:
        """Every array of an analysis row, by name."""
        return {name: self.read_frame(path) for name, path in self.array_paths(row).items()}

    # -- cells and analyses -----------------------------------------------------------------

    def record(self, cells: Iterable[dict] = (), analyses: Iterable[dict] = (),
               trials: Iterable[dict] = ()) -> None:
        """Insert or replace cell, analysis and trial rows together, in one transaction.

        A recorded cell's earlier trials are replaced by those given with it.
        """
        cells, analyses, trials = list(cells), list(analyses), list(trials)
        with self._transaction() as connection:
            for cell in cells:
                connection.execute("DELETE FROM trials WHERE cell_id = ?", (cell["cell_id"],))
            for table, columns, rows in (
                ("cells", CELL_COLUMNS, cells),
                ("analyses", ANALYSIS_COLUMNS, analyses),
                ("trials", TRIAL_COLUMNS, trials),
            ):
                for row in rows:
                    unknown = set(row) - set(columns)
                    if unknown:
                        raise ValueError(f"unknown {table} column(s): {sorted(unknown)}")
                    values = [_column_value(row.get(column)) for column in columns]
                    connection.execute(
                        f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "
                        f"VALUES ({', '.join('?' * len(columns))})",
                        values,
                    )

    def cells(self) -> pd.DataFrame:
        """Return every cell row."""
        with self._connect() as connection:
            return pd.read_sql_query("SELECT * FROM cells ORDER BY dataset, model, seed", connection)

    def analyses(self) -> pd.DataFrame:
        """Return every analysis row, with ``summary`` decoded and ``models`` as a list."""
        with self._connect() as connection:
            frame = pd.read_sql_query(
                "SELECT * FROM analyses ORDER BY analysis, dataset, seed, models", connection
            )
        # pandas' string dtype hands SQL NULLs back as NaN; keep them None.
        for column in ("error", "arrays_path"):
            frame[column] = pd.Series(
                [value if isinstance(value, str) else None for value in frame[column]],
                index=frame.index, dtype=object,
            )
        frame["summary"] = [json.loads(s) if isinstance(s, str) else {} for s in frame["summary"]]
        frame["models"] = [json.loads(m) for m in frame["models"]]
        return frame

    def extra_tables(self) -> dict[str, pd.DataFrame]:
        """Every table besides ``meta``, ``cells`` and ``analyses`` (``trials`` of tuned
        runs, for example), read whole; {} when there is none."""
        with self._connect() as connection:
            names = [row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            return {name: pd.read_sql_query(f'SELECT * FROM "{name}"', connection)
                    for name in names
                    if name not in ("meta", "cells", "analyses") and not name.startswith("sqlite_")}

    def trials(self) -> pd.DataFrame:
        """Every tuning trial, by cell and trial number (``params`` still JSON text)."""
        with self._connect() as connection:
            return pd.read_sql_query("SELECT * FROM trials ORDER BY cell_id, trial", connection)

    def _row(self, table: str, key_column: str, key: str) -> dict | None:
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            row = connection.execute(
                f"SELECT * FROM {table} WHERE {key_column} = ?", (key,)
            ).fetchone()
        return dict(row) if row is not None else None

    def cell(self, cell_id: str) -> dict | None:
        """Return one cell row as a dict, or None when it was never recorded."""
        return self._row("cells", "cell_id", cell_id)

    def analysis(self, analysis_id: str) -> dict | None:
        """Return one analysis row as a dict (``summary`` and ``models`` still JSON text),
        or None when it was never recorded."""
        return self._row("analyses", "analysis_id", analysis_id)

    def cell_states(self) -> dict[str, tuple[str, str | None]]:
        """Return ``{cell_id: (status, config_hash)}`` for every recorded cell."""
        with self._connect() as connection:
            rows = connection.execute("SELECT cell_id, status, config_hash FROM cells").fetchall()
        return {cell_id: (status, config_hash) for cell_id, status, config_hash in rows}

    def analysis_states(self) -> dict[str, str]:
        """Return ``{analysis_id: status}`` for every recorded analysis."""
        with self._connect() as connection:
            rows = connection.execute("SELECT analysis_id, status FROM analyses").fetchall()
        return dict(rows)

    def integrity_check(self) -> str:
        """Run ``PRAGMA integrity_check`` and return its verdict (``"ok"`` when sound)."""
        with self._connect() as connection:
            return connection.execute("PRAGMA integrity_check").fetchone()[0]


def _column_value(value: object) -> object:
    """A row value as stored: the ``arrays_path`` mapping as JSON text, others as given."""
    return json.dumps(dict(value), sort_keys=True) if isinstance(value, Mapping) else value
