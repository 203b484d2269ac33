"""Cross-dataset statistics of the report, checked against independent computations, and
the cross-dataset sections on results of a real suite over five datasets (one
module-scoped run), opened in Chromium; ``tabscope compare`` on two real runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tabscope.reports import across
from tabscope.reports.comparison import compare_scores, holm
from tabscope.reports.pooled_lens import rank_correlation

MODELS = ("a", "b", "c")


def _table(values: dict[tuple[str, int], tuple[float, float, float]], higher=True) -> pd.DataFrame:
    """A per-seed score frame from {(dataset, seed): (score of a, b, c)}."""
    rows = []
    for (dataset, seed), scores in values.items():
        for model, value in zip(MODELS, scores):
            rows.append({"dataset": dataset, "dataset_name": dataset, "task": "classification",
                         "seed": seed, "model": model, "role": "network" if model == "a" else "tree",
                         "metric": "accuracy" if higher else "rmse", "higher_is_better": higher,
                         "value": value})
    return pd.DataFrame(rows)


def _random_table(n_datasets=6, n_seeds=2, seed=0, higher=True):
    rng = np.random.default_rng(seed)
    return _table({(f"d{d}", s): tuple(rng.uniform(0.5, 0.9, 3) + np.array([0.05, 0.0, -0.05]))
                   for d in range(n_datasets) for s in range(n_seeds)}, higher)


def test_friedman_matches_scipy_and_the_textbook_formula():
    table = _random_table()
    result = across.friedman_nemenyi(table)
    wide = table.pivot_table(index=["dataset", "seed"], columns="model", values="value")
    expected = stats.friedmanchisquare(*(-wide[m] for m in MODELS))  # raw scores, not ranks
    assert result["statistic"] == pytest.approx(expected.statistic)
    assert result["pvalue"] == pytest.approx(expected.pvalue)
    ranks = (-wide).rank(axis=1).mean()
    n, k = len(wide), 3
    textbook = 12 * n / (k * (k + 1)) * (np.sum(ranks ** 2) - k * (k + 1) ** 2 / 4)
    assert result["statistic"] == pytest.approx(textbook)
    assert result["mean_ranks"].to_dict() == pytest.approx(ranks.to_dict())
    # Demšar (2006) table 5: q_0.05 = 2.343 for three classifiers.
    assert result["critical_difference"] == pytest.approx(2.343 * np.sqrt(k * (k + 1) / (6 * n)),
                                                          rel=1e-3)
    assert result["enough"] and result["n_datasets"] == 6
    # Nemenyi: |R_i − R_j| / sqrt(k(k+1)/6N) against the studentised range over sqrt(2).
    for i, j in (("a", "b"), ("a", "c"), ("b", "c")):
        z = abs(ranks[i] - ranks[j]) / np.sqrt(k * (k + 1) / (6 * n))
        expected_p = stats.studentized_range.sf(z * np.sqrt(2), k, np.inf)
        assert result["nemenyi"].loc[i, j] == pytest.approx(expected_p, rel=1e-3, abs=1e-6)


def test_ranks_follow_the_metric_direction_and_a_known_winner_wins():
    values = {(f"d{d}", s): (1.0 + d, 2.0 + d, 3.0 + d) for d in range(5) for s in range(2)}
    lower = across.friedman_nemenyi(_table(values, higher=False))
    higher = across.friedman_nemenyi(_table(values, higher=True))
    assert lower["mean_ranks"].to_dict() == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert higher["mean_ranks"].to_dict() == {"c": 1.0, "b": 2.0, "a": 3.0}
    assert lower["pvalue"] < 0.001
    assert lower["nemenyi"].loc["a", "c"] < 0.05
    rates = across.win_rates(_table(values, higher=False)).set_index(["model_a", "model_b"])
    assert rates.loc[("a", "c"), ["wins", "ties", "losses"]].tolist() == [10, 0, 0]
    assert rates.loc[("a", "c"), ["win_rate", "low", "high"]].tolist() == [1.0, 1.0, 1.0]


def test_too_few_datasets_are_flagged():
    result = across.friedman_nemenyi(_random_table(n_datasets=3))
    assert not result["enough"] and result["n_datasets"] == 3


def test_win_rate_ties_within_the_tolerance_and_the_interval_covers_it():
    values = {("d0", 0): (0.900, 0.9004, 0.5), ("d1", 0): (0.80, 0.70, 0.5),
              ("d2", 0): (0.70, 0.80, 0.5), ("d3", 0): (0.60, 0.50, 0.6)}
    rates = across.win_rates(_table(values)).set_index(["model_a", "model_b"])
    row = rates.loc[("a", "b")]
    assert (row["wins"], row["ties"], row["losses"]) == (2, 1, 1)
    assert row["win_rate"] == pytest.approx(2.5 / 4)
    assert row["low"] <= row["win_rate"] <= row["high"]
    # d3: a = c = 0.6 ties exactly.
    assert rates.loc[("a", "c"), "ties"] == 1


def test_normalised_scores_put_the_best_at_one_and_the_worst_at_zero():
    values = {("d0", 0): (0.9, 0.8, 0.7), ("d0", 1): (0.9, 0.8, 0.7),
              ("d1", 0): (10.0, 30.0, 20.0), ("d1", 1): (10.0, 30.0, 20.0)}
    table = pd.concat([_table({k: v for k, v in values.items() if k[0] == "d0"}),
                       _table({k: v for k, v in values.items() if k[0] == "d1"}, higher=False)])
    normalised = across.normalised_scores(table)
    d1 = normalised[normalised["dataset"] == "d1"].groupby("model")["normalised"].mean()
    assert d1.to_dict() == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.5})  # RMSE: lower is better
    summary = across.normalised_summary(normalised).set_index("model")
    assert summary.loc["a", "mean"] == pytest.approx(1.0)
    assert summary.loc["c", "mean"] == pytest.approx((0.0 + 0.5) / 2)


def test_holm_and_rank_correlation_match_independent_implementations():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2])
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    rng = np.random.default_rng(1)
    x = rng.normal(size=12)
    y = x + rng.normal(size=12)
    result = rank_correlation(x, y)
    assert result["rho"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert result["low"] <= result["rho"] <= result["high"]
    # Resampling groups of identical pairs is resampling their datasets: with every point
    # duplicated in its own group, the interval matches the ungrouped one on the originals.
    grouped = rank_correlation(np.repeat(x, 2), np.repeat(y, 2), groups=np.repeat(np.arange(12), 2))
    assert grouped["rho"] == pytest.approx(result["rho"])
    assert (grouped["low"], grouped["high"]) == pytest.approx((result["low"], result["high"]), abs=0.02)


# ------------------------------------------------------------------ real five-dataset run


def _suite(root: Path, name: str, seeds, models, analyses=()):
    from tabscope.bench.suite import parse_suite

    return parse_suite({
        "name": name, "seeds": list(seeds), "analyses": list(analyses),
        "datasets": ["sklearn:diabetes", "sklearn:breast_cancer", "sklearn:wine", "sklearn:iris",
                     f"file:{root / 'friedman.csv'}?target=y"],
        **({"compare": [["mlp", "xgboost"], ["mlp", "lightgbm"]]} if "mlp" in models else {}),
        "models": models, "analysis": {"max_eval": 60, "n_redraws": 5, "quantile": 0.8},
    })


def _friedman_csv(root: Path) -> None:
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=240, n_features=6, noise=0.5, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]).assign(y=y)
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "friedman.csv", index=False)


@pytest.fixture(scope="module")
def five_datasets(tmp_path_factory):
    from tabscope.bench.runner import run_suite
    from tabscope.reports import write_report

    root = tmp_path_factory.mktemp("across")
    _friedman_csv(root)
    run_suite(_suite(root, "across", [0, 1], {
        "mlp": {"hidden_layer_sizes": [32], "max_steps": 60, "batch_size": 64},
        "xgboost": {"n_estimators": 15, "max_depth": 3},
        "lightgbm": {"n_estimators": 15, "num_leaves": 7},
    }, ["irregularity", "effective_parameters"]), root / "results")
    paths = write_report(root / "results")
    return {"root": root, "dir": root / "results", "paths": paths,
            "markdown": paths["markdown"].read_text(), "html": paths["html"].read_text()}


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_cross_dataset_sections_show_their_statistics(five_datasets):
    markdown = five_datasets["markdown"]
    cd = _section(markdown, "Critical differences")
    assert "figures/critical_difference.png" in cd and "from 5 datasets" in cd
    assert "| mlp |" in _section(markdown, "Normalised scores across datasets")
    rates = _section(markdown, "Pairwise win rates")
    assert "| mlp | xgboost |" in rates and "| mlp | lightgbm |" in rates  # network first
    pooled = _section(markdown, "Lens findings across datasets")
    assert "figures/pooled_lens.png" in pooled and "Spearman ρ =" in pooled
    assert "figures/effective_parameters_across.png" in pooled
    parallels = _section(markdown, "Boosting parallels")
    assert "(a) Agreement of network and GBDT influence" in parallels
    assert "figures/kappa_paths.png" in parallels
    assert "(b) Share of the prediction's movement made early in training" in parallels
    assert "figures/assembly.png" in parallels
    # Influence agreement sits above chance: the models lean on overlapping neighbours.
    rows = re.findall(r"\| (\w+) \| mlp vs xgboost \| ([-\d.]+) \| [^|]+ \| ([\d.e-]+) \| ([\d.e-]+) \|",
                      parallels)
    assert len(rows) == 5
    # beside the influence, how much of the network's prediction its contributions explain
    coverage = re.findall(r"mlp vs xgboost \|[^\n]*\| ([\d.]+) \(window (\d+) steps\) \|$",
                          parallels, flags=re.M)
    assert len(coverage) == 5 and all(float(c) >= 0.9 for c, _ in coverage)
    assert "Coverage: mlp " in _section(markdown, "Most influential training examples")
    for figure in ("critical_difference", "pooled_lens", "kappa_paths", "normalised_scores",
                   "win_rates", "effective_parameters_across"):
        assert (five_datasets["dir"] / "figures" / f"{figure}.png").stat().st_size > 5_000


def test_results_load_as_frames_from_python(five_datasets):
    import tabscope

    results = tabscope.load_results(five_datasets["dir"])
    assert isinstance(results, tabscope.Results)
    assert len(results.cells) == 5 * 3 * 2 and results.trials is None
    influence = results.arrays("kernel_norms", "influence")
    assert {"dataset", "seed", "models", "eval_row", "train_row", "influence"} <= set(influence)
    predictions = results.predictions()
    assert set(predictions["model"]) == {"mlp", "xgboost", "lightgbm"}


def test_cross_dataset_report_renders_in_chromium(five_datasets, tmp_path):
    from test_reports_browser import CHROMIUM, check_report_in_browser

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed")
    facts = check_report_in_browser(five_datasets["paths"]["html"], tmp_path, n_figures=11)  # no fidelity: the run has no fidelity analysis
    alts = {image["alt"] for image in facts["images"]}
    assert {"Critical-difference diagram of the models' mean ranks",
            "Normalised score of every model across datasets",
            "Pairwise win rates with bootstrap intervals",
            "Network kappa-bar ratio against the relative gap increase across datasets",
            "Kernel weight norm over training for networks and GBDTs",
            "Share of the prediction's movement in each tenth of training"} <= alts


# ------------------------------------------------------------------------ tabscope compare


def test_compare_finds_a_crippled_model_and_not_an_identical_one(tmp_path):
    from support import tabscope_command

    from tabscope.bench.runner import run_suite
    from tabscope.reports.data import load_results

    _friedman_csv(tmp_path)
    lightgbm = {"n_estimators": 30, "num_leaves": 7}
    run_suite(_suite(tmp_path, "a", [0, 1, 2], {"xgboost": {"n_estimators": 60, "max_depth": 3},
                                                 "lightgbm": lightgbm}), tmp_path / "a")
    run_suite(_suite(tmp_path, "b", [3, 4, 5], {"xgboost": {"n_estimators": 2, "max_depth": 3},
                                                 "lightgbm": lightgbm}), tmp_path / "b")
    per_dataset, overall = compare_scores(load_results(tmp_path / "a"), load_results(tmp_path / "b"))
    overall = overall.set_index("model")
    assert not overall.loc["lightgbm", "significant"]
    assert overall.loc["xgboost", "significant"]
    assert overall.loc["xgboost", "median_relative_difference"] < 0  # B is worse
    assert overall.loc["xgboost", "n_pairs"] == 15 and not per_dataset["paired_by_seed"].any()
    completed = subprocess.run([*tabscope_command(), "compare", str(tmp_path / "a"),
                                str(tmp_path / "b")], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "report.html" in completed.stdout
    page = (tmp_path / "b" / "compare" / "report.html").read_text()
    assert "Overall differences per model" in page and 'id="figure-compare"' in page
    assert "Critical differences (A and B together)" in page
    assert (tmp_path / "b" / "compare" / "figures" / "compare_critical_difference.png").exists()


def test_compare_of_a_directory_without_results_is_one_line(tmp_path, capsys):
    from tabscope.cli import main

    (tmp_path / "empty").mkdir()
    status = main(["compare", str(tmp_path / "empty"), str(tmp_path / "empty")])
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("tabscope: error:") and "\n" not in error


def test_normalised_curve_against_trials_on_a_hand_made_study():
    from tabscope.reports.across import normalised_trial_curves

    rows = []
    # One regression dataset (RMSE, lower is better), one seed. The tuned model's trials get
    # better on validation and test together; the other model's trials are all alike.
    for model, tests in (("tuned", [3.0, 2.0, 1.0]), ("flat", [2.0, 2.0, 2.0])):
        for trial, score in enumerate(tests):
            rows.append({"cell_id": f"d::{model}::0", "dataset": "d", "task": "regression",
                         "model": model, "seed": 0, "status": "complete",
                         "validation_score": score, "test_score": score, "trial": trial})
    curves = normalised_trial_curves(pd.DataFrame(rows)).set_index(["model", "n_trials"])
    # Oriented scores: the best value reached is -1 (tuned, from 2 trials on: the better of
    # two random trials is 1 in 2 orderings out of 3), the lowest -2. One random trial has
    # median test RMSE 2, so the tuned curve starts at 0 and reaches 1 with 2 trials.
    assert curves.loc[("tuned", 1), "mean"] == pytest.approx(0.0)
    assert curves.loc[("tuned", 2), "mean"] == pytest.approx(1.0)
    assert curves.loc[("tuned", 3), "mean"] == pytest.approx(1.0)
    assert (curves.loc["flat", "mean"] == 0.0).all()
    assert set(curves["n_datasets"]) == {1}
