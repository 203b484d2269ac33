"""OpenML through the real ``openml`` client, offline, on a copy of real cache files.

The fixture cache (``<repo>/../shared/openml-cache``) holds dataset 2 ("anneal") and task
1882 (10 x 10-fold cross-validation on it) as downloaded from the OpenML test server.
Tests that need a refetch serve the same files from a local HTTP server.
"""

from __future__ import annotations

import http.server
import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import openml
import pytest

from tabscope.datasets import (
    CorruptCacheError,
    DatasetError,
    OpenMLUnavailableError,
    expand_source,
    load_dataset,
    make_split,
)
from tabscope.datasets.cache import MANIFEST_NAME, read_manifest
from tabscope.datasets.openml_session import TEST_SERVER, openml_errors, openml_session
from tabscope.datasets.openml_source import write_suite_file

SHARED_CACHE = Path(__file__).resolve().parents[1].parent / "shared" / "openml-cache"
# ".invalid" is reserved (RFC 2606): its names never resolve, so a connection fails at once.
UNREACHABLE_SERVER = "https://openml.invalid/api/v1/xml"

pytestmark = pytest.mark.skipif(
    not (SHARED_CACHE / "org").is_dir(),
    reason=f"OpenML fixture cache not found at {SHARED_CACHE} (shared/ must sit beside the repo)",
)


def _copy_fixture(destination: Path) -> Path:
    """Copy the fixture's server folder to ``destination`` with writable permissions."""
    shutil.copytree(SHARED_CACHE / "org" / "openml" / "test", destination)
    for folder, _, files in os.walk(destination):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    return destination


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    """A tabscope cache dir whose openml/ part holds a writable copy of the fixture."""
    _copy_fixture(tmp_path / "openml" / "org" / "openml" / "test")
    return tmp_path


@pytest.fixture(scope="module")
def anneal_task(tmp_path_factory):
    cache = tmp_path_factory.mktemp("anneal")
    _copy_fixture(cache / "openml" / "org" / "openml" / "test")
    return load_dataset("openml-task:1882", cache_dir=cache, openml_server=TEST_SERVER, offline=True)


def _dataset_dir(cache: Path, server_path: tuple[str, ...] = ("org", "openml", "test")) -> Path:
    return cache.joinpath("openml", *server_path, "datasets", "2")


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ----------------------------------------------------------------------------- loading


def test_task_loads_data_target_and_categorical_indicator(anneal_task):
    dataset = anneal_task
    assert dataset.source == "openml-task:1882" and dataset.name == "anneal"
    assert dataset.task == "classification" and dataset.target == "class"
    assert (dataset.n_samples, dataset.n_features) == (898, 38)
    assert sum(dataset.categorical) == 32
    assert not dataset.categorical[dataset.X.columns.get_loc("carbon")]
    assert dataset.categorical[dataset.X.columns.get_loc("family")]
    numeric = [c for c, flag in zip(dataset.X.columns, dataset.categorical) if not flag]
    assert all(dataset.X[c].dtype == np.float64 for c in numeric)
    # Class "4" is declared in the ARFF header but has no rows: it is not a class here.
    assert dataset.summary()["class_counts"] == {"1": 8, "2": 99, "3": 684, "5": 67, "U": 40}
    assert 0.6 < dataset.summary()["missing_fraction"] < 0.7
    assert dataset.metadata["openml_dataset_id"] == 2
    assert dataset.metadata["dropped_features"] == []
    assert (dataset.metadata["n_repeats"], dataset.metadata["n_folds"]) == (10, 10)


def test_official_splits_are_the_tasks_own_in_repeat_major_order(anneal_task, tmp_path):
    splits = anneal_task.official_splits
    assert len(splits) == 100
    # Compare with the openml client's own answer, read independently.
    _copy_fixture(tmp_path / "org" / "openml" / "test")
    saved = openml.config.get_config_as_dict()
    try:
        openml.config.server = TEST_SERVER
        openml.config.set_root_cache_directory(tmp_path)
        task = openml.tasks.get_task(1882, download_splits=True, download_data=False)
        for repeat, fold in [(0, 0), (0, 9), (3, 4), (9, 9)]:
            train, test = task.get_train_test_split_indices(repeat=repeat, fold=fold)
            ours_train, ours_test = splits[repeat * 10 + fold]
            np.testing.assert_array_equal(ours_train, train)
            np.testing.assert_array_equal(ours_test, test)
    finally:
        openml.config.server = saved["server"]
        openml.config.set_root_cache_directory(saved["cachedir"])
    for repeat in range(10):
        tests = np.concatenate([splits[repeat * 10 + f][1] for f in range(10)])
        np.testing.assert_array_equal(np.sort(tests), np.arange(898))


def test_task_split_uses_official_fold_and_carves_validation_from_its_train(anneal_task):
    for seed in (0, 7, 107):
        split = make_split(anneal_task, seed)
        official_train, official_test = anneal_task.official_splits[seed % 100]
        assert split.official_split == seed % 100
        np.testing.assert_array_equal(split.test, np.sort(official_test))
        np.testing.assert_array_equal(
            np.sort(np.concatenate([split.train, split.valid])), np.sort(official_train)
        )
        assert len(split.valid) == round(0.1 * 898)
    # Seeds 7 and 107 share the official fold; the seed still drives the validation carve.
    np.testing.assert_array_equal(make_split(anneal_task, 7).test, make_split(anneal_task, 107).test)
    assert make_split(anneal_task, 7).hash == make_split(anneal_task, 7).hash
    assert make_split(anneal_task, 7).hash != make_split(anneal_task, 107).hash


def test_dataset_source_uses_the_default_target(cache_dir):
    dataset = load_dataset("openml:2", cache_dir=cache_dir, openml_server=TEST_SERVER, offline=True)
    assert dataset.source == "openml:2" and dataset.target == "class"
    assert dataset.task == "classification" and dataset.official_splits is None
    other = load_dataset(
        "openml:2?target=carbon", cache_dir=cache_dir, openml_server=TEST_SERVER, offline=True
    )
    assert other.source == "openml:2?target=carbon" and other.task == "regression"
    assert "class" in other.X.columns and "carbon" not in other.X.columns
    with pytest.raises(DatasetError, match="'colour' is not in the dataset.*'carbon'"):
        load_dataset("openml:2", target="colour", cache_dir=cache_dir, openml_server=TEST_SERVER)


def test_features_that_are_neither_numeric_nor_nominal_are_dropped(cache_dir, caplog):
    features = _dataset_dir(cache_dir) / "features.xml"
    family = re.compile(
        r"(<oml:name>family</oml:name>\s*)<oml:data_type>nominal</oml:data_type>"
        r"(?:\s*<oml:nominal_value>[^<]*</oml:nominal_value>)*"
    )
    text, replaced = family.subn(r"\1<oml:data_type>string</oml:data_type>", features.read_text())
    assert replaced == 1
    features.write_text(text)
    with caplog.at_level(logging.WARNING, logger="tabscope.datasets"):
        dataset = load_dataset("openml:2", cache_dir=cache_dir, openml_server=TEST_SERVER, offline=True)
    assert "family" not in dataset.X.columns and dataset.n_features == 37
    assert dataset.metadata["dropped_features"] == ["family"]
    assert any("family" in record.getMessage() for record in caplog.records)


def test_task_rejects_a_contradicting_target_or_task(anneal_task, cache_dir):
    options = {"cache_dir": cache_dir, "openml_server": TEST_SERVER, "offline": True}
    with pytest.raises(DatasetError, match="fixes the target 'class'"):
        load_dataset("openml-task:1882", target="carbon", **options)
    with pytest.raises(DatasetError, match="is a classification task"):
        load_dataset("openml-task:1882", task="regression", **options)


def test_openml_configuration_is_restored(cache_dir):
    before = openml.config.get_config_as_dict()
    load_dataset("openml-task:1882", cache_dir=cache_dir, openml_server=TEST_SERVER, offline=True)
    assert openml.config.get_config_as_dict() == before
    with pytest.raises(OpenMLUnavailableError):
        load_dataset("openml:424242", cache_dir=cache_dir, openml_server=TEST_SERVER, offline=True)
    assert openml.config.get_config_as_dict() == before


def test_cache_dir_comes_from_the_environment(cache_dir, monkeypatch):
    monkeypatch.setenv("TABSCOPE_CACHE_DIR", str(cache_dir))
    dataset = load_dataset("openml:2", openml_server=TEST_SERVER, offline=True)
    assert dataset.n_samples == 898
    assert (_dataset_dir(cache_dir) / MANIFEST_NAME).is_file()


# ----------------------------------------------------------------------------- offline


@pytest.mark.parametrize("source", ["openml:424242", "openml-task:424242"])
def test_uncached_id_on_an_unreachable_server_fails_fast_and_clearly(tmp_path, source):
    start = time.perf_counter()
    with pytest.raises(OpenMLUnavailableError) as error:
        load_dataset(source, cache_dir=tmp_path, openml_server=UNREACHABLE_SERVER)
    assert time.perf_counter() - start < 10
    message = str(error.value)
    assert "424242" in message and "unreachable" in message
    assert str(tmp_path / "openml") in message
    assert isinstance(error.value, ValueError)


def test_uncached_id_in_offline_mode(cache_dir, monkeypatch):
    monkeypatch.setenv("TABSCOPE_OFFLINE", "1")
    with pytest.raises(OpenMLUnavailableError, match="offline mode") as error:
        load_dataset("openml:424242", cache_dir=cache_dir, openml_server=TEST_SERVER)
    assert str(cache_dir / "openml" / "org" / "openml" / "test" / "datasets" / "424242") in str(
        error.value
    )


def test_openml_network_errors_become_one_clear_error(tmp_path):
    # The probe normally stops before openml is called; this drives the real client into
    # the unreachable server to check the translation of what it raises.
    with openml_session(tmp_path, UNREACHABLE_SERVER) as session:
        openml.config.set_retry_policy("human", 1)  # no 1 s pause between attempts
        with pytest.raises(OpenMLUnavailableError, match="OpenML dataset 5.*unreachable"):
            with openml_errors("OpenML dataset 5", session, session.dataset_dir(5)):
                openml.datasets.get_dataset(5, download_data=False)


def test_suite_expands_from_tabscopes_record_and_fails_clearly_without_one(cache_dir):
    with pytest.raises(OpenMLUnavailableError, match="OpenML suite 336"):
        expand_source("grinsztajn-num-reg", cache_dir=cache_dir, openml_server=UNREACHABLE_SERVER)
    with openml_session(cache_dir, TEST_SERVER) as session:
        write_suite_file(session.suite_file(336), 336, [1882, 361072])
    sources = expand_source("grinsztajn-num-reg", cache_dir=cache_dir, openml_server=TEST_SERVER)
    assert sources == ["openml-task:1882", "openml-task:361072"]


# ----------------------------------------------------------------------------- integrity


def test_load_records_a_manifest_of_the_files_it_used(cache_dir):
    load_dataset("openml-task:1882", cache_dir=cache_dir, openml_server=TEST_SERVER, offline=True)
    dataset_files = read_manifest(_dataset_dir(cache_dir))
    assert {"dataset.arff", "description.xml", "features.xml"} <= set(dataset_files)
    task_files = read_manifest(_dataset_dir(cache_dir).parents[1] / "tasks" / "1882")
    assert {"task.xml", "datasplits.arff"} <= set(task_files)


def test_truncated_arff_after_a_verified_load_is_detected(cache_dir, caplog):
    options = {"cache_dir": cache_dir, "openml_server": TEST_SERVER, "offline": True}
    load_dataset("openml:2", **options)
    arff = _dataset_dir(cache_dir) / "dataset.arff"
    _truncate(arff)
    with caplog.at_level(logging.WARNING, logger="tabscope.datasets"):
        with pytest.raises(CorruptCacheError) as error:
            load_dataset("openml:2", **options)
    assert str(arff) in str(error.value) and "sha256" in str(error.value)
    assert any(str(arff) in record.getMessage() for record in caplog.records)
    assert not arff.exists()  # removed, so that the next online load fetches it again
    assert not (_dataset_dir(cache_dir) / "dataset.pkl.py3").exists()


def test_truncated_arff_without_manifest_gives_a_clear_error(cache_dir):
    arff = _dataset_dir(cache_dir) / "dataset.arff"
    _truncate(arff, keep=0.6)
    with pytest.raises(CorruptCacheError) as error:
        load_dataset("openml:2", cache_dir=cache_dir, openml_server=TEST_SERVER, offline=True)
    message = str(error.value)
    assert str(arff) in message and "md5" in message and "cannot be fetched again" in message


def test_truncated_split_file_is_detected(cache_dir):
    splits = _dataset_dir(cache_dir).parents[1] / "tasks" / "1882" / "datasplits.arff"
    _truncate(splits, keep=0.7)
    with pytest.raises(CorruptCacheError, match="datasplits.arff"):
        load_dataset("openml-task:1882", cache_dir=cache_dir, openml_server=TEST_SERVER, offline=True)


def test_changed_derived_pickle_is_rebuilt_locally(cache_dir):
    options = {"cache_dir": cache_dir, "openml_server": TEST_SERVER, "offline": True}
    first = load_dataset("openml:2", **options)
    _truncate(_dataset_dir(cache_dir) / "dataset.pkl.py3")
    second = load_dataset("openml:2", **options)
    assert second.X.equals(first.X)


class _FixtureServer(http.server.BaseHTTPRequestHandler):
    """Answers OpenML API calls for dataset 2 from the fixture files."""

    routes: dict[str, Path] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0]
        type(self).requests.append(path)
        file = self.routes.get(path)
        if file is None:
            self.send_error(404)
            return
        body = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def local_openml(tmp_path, monkeypatch):
    """An OpenML look-alike on 127.0.0.1 serving the fixture, and a cache laid out for it."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FixtureServer)
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}"
    cache = tmp_path / "cache"
    server_path = ("1:" + str(port), "0", "0", "127")  # openml reverses the host's parts
    fixture = _copy_fixture(cache.joinpath("openml", *server_path))
    # Point the dataset's download URL at the local server; the md5 stays OpenML's.
    description = fixture / "datasets" / "2" / "description.xml"
    description.write_text(
        description.read_text().replace(
            "http://www.openml.org/data/download/1666876/phpFsFYVN",
            f"{url}/data/download/1666876/phpFsFYVN",
        )
    )
    originals = tmp_path / "originals"
    shutil.copytree(fixture / "datasets" / "2", originals)
    _FixtureServer.routes = {
        "/api/v1/xml/data/2": originals / "description.xml",
        "/api/v1/xml/data/features/2": originals / "features.xml",
        "/data/download/1666876/phpFsFYVN": originals / "dataset.arff",
    }
    _FixtureServer.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"server": f"{url}/api/v1/xml", "cache": cache, "dir": fixture / "datasets" / "2"}
    server.shutdown()
    server.server_close()


def test_damaged_files_are_removed_and_fetched_again(local_openml, caplog):
    # The "server" is on loopback: this test may go online although the suite is offline.
    options = {"cache_dir": local_openml["cache"], "openml_server": local_openml["server"],
               "offline": False}
    reference = load_dataset("openml:2", **options)
    assert _FixtureServer.requests == []  # everything was cached
    directory = local_openml["dir"]
    _truncate(directory / "dataset.arff", keep=0.3)
    _truncate(directory / "features.xml", keep=0.5)
    with caplog.at_level(logging.WARNING, logger="tabscope.datasets"):
        repaired = load_dataset("openml:2", **options)
    assert sorted(_FixtureServer.requests) == [
        "/api/v1/xml/data/features/2",
        "/data/download/1666876/phpFsFYVN",
    ]
    assert sum("is damaged" in record.getMessage() for record in caplog.records) == 2
    assert repaired.X.equals(reference.X)
    np.testing.assert_array_equal(repaired.y, reference.y)
    # The refetched files are recorded again, so the next load is silent and offline.
    _FixtureServer.requests.clear()
    load_dataset("openml:2", **{**options, "offline": True})
    assert _FixtureServer.requests == []
