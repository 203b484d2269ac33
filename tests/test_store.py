"""The SQLite results store: atomic rows, schema checks, clear errors."""

import sqlite3

import pandas as pd
import pytest

from tabscope.bench.store import (DB_NAME, METRIC_COLUMNS, SCHEMA_VERSION, ResultsStore,
                                  StoreError, analysis_id, cell_id)
from tabscope.vocabulary import Metric, choices


def cell(cell_id="d::m::0", status="ok", **extra):
    return {"cell_id": cell_id, "dataset": "d", "model": "m", "seed": 0, "status": status,
            "finished_at": "now", **extra}


def test_store_uses_wal_and_round_trips(tmp_path):
    store = ResultsStore(tmp_path)
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.record(cells=[cell(rmse=1.5)])
    frame = store.cells()
    assert list(frame["cell_id"]) == ["d::m::0"] and frame["rmse"].iloc[0] == 1.5
    assert store.integrity_check() == "ok"


def test_record_replaces_and_is_atomic(tmp_path):
    store = ResultsStore(tmp_path)
    store.record(cells=[cell(status="failed", error="boom")])
    store.record(cells=[cell(rmse=2.0)])
    assert len(store.cells()) == 1 and store.cells()["status"].iloc[0] == "ok"
    # A bad row in the same call aborts the whole transaction: nothing half-written.
    with pytest.raises(sqlite3.IntegrityError):
        store.record(cells=[cell("x::m::0"), cell("y::m::0", status="weird")])
    assert set(store.cells()["cell_id"]) == {"d::m::0"}


def test_frames_are_written_atomically(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.write_frame("cells/a/predictions.parquet", pd.DataFrame({"x": [1.0, 2.0]}))
    pd.testing.assert_frame_equal(store.read_frame(path), pd.DataFrame({"x": [1.0, 2.0]}))
    assert not [p for p in (tmp_path / "arrays/cells/a").iterdir() if p.name.startswith(".tmp")]


def test_the_store_names_cells_analyses_and_their_arrays(tmp_path):
    store = ResultsStore(tmp_path)
    cell_key = cell_id("sklearn:wine", "mlp", 2)
    pair_key = analysis_id("irregularity", "sklearn:wine", 2, ["mlp", "xgboost"])
    assert (cell_key, pair_key) == ("sklearn:wine::mlp::2",
                                    "irregularity::sklearn:wine::2::mlp+xgboost")
    assert store.cell_id is cell_id and METRIC_COLUMNS == choices(Metric)
    # A cell's arrays and a pair's arrays live in separate, file-system-safe folders.
    assert store.array_path(cell_key, "predictions").startswith("arrays/cells/sklearn_wine__mlp__2-")
    assert store.array_path(pair_key, "curve").startswith("arrays/pairs/irregularity__sklearn")
    frame = pd.DataFrame({"row": [3, 1], "kappa_bar": [0.5, 2.0]})
    paths = store.write_arrays(cell_key, {"kernel_norms": frame})
    assert paths == {"kernel_norms": store.array_path(cell_key, "kernel_norms")}
    # An analysis row refers to its arrays by name; the store encodes and decodes the paths.
    row = {"analysis_id": analysis_id("kernel_norms", "sklearn:wine", 2, ["mlp"]),
           "analysis": "kernel_norms", "dataset": "sklearn:wine", "seed": 2,
           "models": '["mlp"]', "status": "ok", "arrays_path": paths, "finished_at": "now"}
    store.record(analyses=[row])
    stored = store.analysis(row["analysis_id"])
    assert isinstance(stored["arrays_path"], str)
    pd.testing.assert_frame_equal(store.read_array(stored, "kernel_norms"), frame)
    assert list(store.read_arrays(stored)) == ["kernel_norms"]
    with pytest.raises(StoreError, match="no array named 'curve'"):
        store.read_array(stored, "curve")
    with pytest.raises(StoreError, match="not valid JSON"):
        store.read_array(stored | {"arrays_path": "{oops"}, "kernel_norms")


def test_truncated_frame_is_reported(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.write_frame("p.parquet", pd.DataFrame({"x": range(100)}))
    full = tmp_path / path
    full.write_bytes(full.read_bytes()[:50])
    with pytest.raises(StoreError, match="unreadable"):
        store.read_frame(path)


def test_incompatible_schema_version(tmp_path):
    ResultsStore(tmp_path)
    with sqlite3.connect(tmp_path / DB_NAME) as connection:
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                           (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        ResultsStore(tmp_path)


def test_foreign_database_is_refused(tmp_path):
    with sqlite3.connect(tmp_path / DB_NAME) as connection:
        connection.execute("CREATE TABLE other (x)")
    with pytest.raises(StoreError, match="not a tabscope results store"):
        ResultsStore(tmp_path)


def test_garbage_file_is_refused(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="unreadable"):
        ResultsStore(tmp_path)


def test_read_only_directory(read_only_directory):
    with pytest.raises(StoreError, match="not writable"):
        ResultsStore(read_only_directory)
    assert list(read_only_directory.iterdir()) == []


def test_uncreatable_directory():
    with pytest.raises(StoreError, match="cannot create results directory"):
        ResultsStore("/proc/tabscope-results")


def test_missing_store_without_create(tmp_path):
    with pytest.raises(StoreError, match="no tabscope results"):
        ResultsStore(tmp_path / "nothing", create=False)


def test_meta_round_trip(tmp_path):
    store = ResultsStore(tmp_path)
    store.set_meta({"suite_name": "quick", "seeds": [0, 1]})
    meta = ResultsStore(tmp_path).meta()
    assert meta["suite_name"] == "quick" and meta["seeds"] == [0, 1]
