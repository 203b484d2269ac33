"""The report says what happened to each dataset's columns (docs/design.md §3.5), from a real
run on a Titanic-like file: identifiers dropped, text encoded, the inputs of each model."""

from __future__ import annotations

import json

import pytest
from titanic_like import titanic_like

from tabscope.bench.runner import run_suite
from tabscope.bench.store import CELL_INPUTS_ARRAY, ResultsStore
from tabscope.bench.suite import parse_suite
from tabscope.reports import load_results, write_report
from tabscope.reports.sections import section


@pytest.fixture(scope="module")
def titanic_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("titanic")
    path = folder / "train.csv"
    titanic_like().to_csv(path, index=False)
    suite = parse_suite({
        "name": "titanic", "datasets": [f"file:{path}?target=Survived"], "seeds": [0],
        "models": {"mlp": {"hidden_layer_sizes": [16], "max_steps": 20},
                   "xgboost": {"n_estimators": 10}},
    })
    summary = run_suite(suite, folder / "out")
    assert summary.n_ok == 2, summary.failed
    return folder / "out"


def test_each_cell_stores_what_its_model_family_received(titanic_run):
    store = ResultsStore(titanic_run)
    cells = store.cells().set_index("model")
    inputs = {model: json.loads(store.read_frame(
        store.array_path(cells.loc[model, "cell_id"], CELL_INPUTS_ARRAY))["inputs"].iloc[0])
        for model in ("mlp", "xgboost")}
    assert 0 < inputs["mlp"]["input_width"] < 50
    assert sum(inputs["mlp"]["width_by_column"].values()) == inputs["mlp"]["input_width"]
    # Only the low-cardinality categoricals reach the booster as categories.
    assert set(inputs["xgboost"]["categorical_features"]) == {"Sex", "Embarked"}
    assert max(inputs["xgboost"]["categorical_features"].values()) <= 3


def test_report_data_section_names_each_dropped_and_encoded_column(titanic_run):
    write_report(titanic_run)
    data = load_results(titanic_run)
    markdown = (titanic_run / "report.md").read_text()
    assert "## Data: what each model received" in markdown
    part = markdown.split("## Data: what each model received", 1)[1].split("\n## ", 1)[0]
    described = data.meta["data"]
    (source,) = described
    assert "PassengerId" in described[source]["dropped"]
    assert "PassengerId" in part and "dropped" in part
    for column in ("Name", "Ticket", "Cabin"):
        assert f"| {column} | text |" in part
    width = data.model_inputs(source)["mlp"]["input_width"]
    assert f"| {width} |" in part
    assert "Sex (2)" in part and "Embarked (3)" in part
    assert not data.problems
    assert section("data").title == "Data: what each model received"
