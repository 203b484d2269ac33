"""Per-dataset keys in suite files become the source's query parameters."""

from __future__ import annotations

import pytest

from tabscope.bench.suite import SuiteError, parse_suite

MODELS = {"xgboost": {"n_estimators": 5}}


def test_dataset_tables_become_source_strings_with_their_roles():
    suite = parse_suite({
        "datasets": [
            "sklearn:diabetes",
            {"source": "file:data/t.csv", "target": "Survived", "sep": ";", "decimal": ",",
             "drop": ["Name", "Cabin"], "categorical": ["Pclass"], "note": "Titanic"},
        ],
        "models": MODELS,
    })
    assert suite.datasets == (
        "sklearn:diabetes",
        "file:data/t.csv?categorical=Pclass&decimal=,&drop=Cabin,Name&sep=%3B&target=Survived",
    )
    assert suite.dataset_notes == ((suite.datasets[1], "Titanic"),)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"source": "file:t.csv", "target": "y", "dropp": ["a"]}, "unknown key 'dropp'"),
        ({"source": "file:t.csv", "target": "y", "drop": "a"}, "drop must be a list"),
        ({"source": "file:t.csv", "target": "y", "drop": []}, "non-empty list"),
        ({"source": "file:t.csv?target=y", "target": "z"}, "target is set in the source"),
        ({"source": "sklearn:diabetes", "drop": ["age"]}, "take no '\\?' parameters"),
        ({"target": "y"}, "datasets.source must be"),
        (3, "source string or a table"),
    ],
)
def test_bad_dataset_tables_name_the_key(entry, message):
    with pytest.raises(SuiteError, match=message):
        parse_suite({"datasets": [entry], "models": MODELS})
