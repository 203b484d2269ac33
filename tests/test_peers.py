"""The peers benchmark (bench/perf/peers.py): arguments, scoring on shared splits, table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabscope.bench.perf import peers


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="models"):
        peers.run_peers(["sklearn:diabetes"], [0], ["catboost"], max_train=100)
    with pytest.raises(ValueError, match="max_train"):
        peers.run_peers(["sklearn:diabetes"], [0], ["xgboost"], max_train=0)
    with pytest.raises(TypeError, match="threads"):
        peers.run_peers(["sklearn:diabetes"], [0], ["xgboost"], max_train=10, threads=1.5)
    with pytest.raises(ValueError, match="seeds"):
        peers.run_peers(["sklearn:diabetes"], [-1], ["xgboost"], max_train=10)
    with pytest.raises(SystemExit):
        peers.main(["--datasets", "no-such-table"])
    with pytest.raises(SystemExit):
        peers.main(["--max-train", "0", "--models", "xgboost"])


def test_scores_on_the_same_split_and_the_table(tmp_path):
    csv = tmp_path / "rows.csv"
    lines = []
    results = peers.run_peers(
        ["sklearn:diabetes"], [0, 1], ["xgboost", "sklearn-hgb"], max_train=150, csv=csv,
        log=lines.append,
    )
    assert len(results) == 4 and len(lines) == 4
    assert (results["error"] == "").all() and (results["n_train"] == 150).all()
    assert np.isfinite(results["score"]).all() and (results["metric"] == "r2").all()
    stored = pd.read_csv(csv, keep_default_na=False)
    pd.testing.assert_frame_equal(stored, results, check_dtype=False)
    again = peers.run_peers(["sklearn:diabetes"], [0], ["xgboost"], max_train=150, log=lambda _: 0)
    assert again["score"][0] == results["score"][0]  # same seed, same split, same score
    wide = peers.table(results, ["xgboost", "sklearn-hgb"])
    assert list(wide.columns) == ["xgboost", "sklearn-hgb"] and wide.shape == (1, 2)
    np.testing.assert_allclose(wide["xgboost"].iloc[0],
                               results.loc[results["model"] == "xgboost", "score"].mean())
    markdown = peers.to_markdown(wide)
    assert markdown.splitlines()[0] == "| dataset | xgboost | sklearn-hgb |"
    assert markdown.count("**") == 2  # the best score of the row is bold


def test_a_failing_model_is_a_row_not_a_crash(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(peers, "_fit_tabscope", broken)
    results = peers.run_peers(["sklearn:diabetes"], [0], ["xgboost"], max_train=50,
                              log=lambda _: 0)
    assert results["error"][0] == "RuntimeError: boom" and np.isnan(results["score"][0])
    assert "failed" in peers.to_markdown(peers.table(results, ["xgboost"]))


def test_tuned_models_are_cell_studies():
    with pytest.raises(ValueError, match="tune"):
        peers.run_peers(["sklearn:diabetes"], [0], ["xgboost"], max_train=50, tune=["catboost"],
                        trials=2)
    with pytest.raises(ValueError, match="trials"):
        peers.run_peers(["sklearn:diabetes"], [0], ["xgboost"], max_train=50, trials=-1)
    one = peers.run_peers(["sklearn:diabetes"], [0], ["xgboost"], max_train=150,
                          tune=["xgboost"], trials=1, log=lambda _: 0)
    # A one-trial study is trial 0, the default configuration: the same model and score
    assert list(one["model"]) == ["xgboost", "xgboost-tuned"]
    assert one["score"][1] == one["score"][0]
    three = peers.run_peers(["sklearn:diabetes"], [0], ["xgboost"], max_train=150,
                            tune=["xgboost"], trials=3, log=lambda _: 0)
    assert three["error"][1] == "" and np.isfinite(three["score"][1])
