"""Tests of tabscope.reports on a results directory written through the real ResultsStore.

``make_results`` writes the formats the benchmark stores (bench/cells.py, bench/pairs.py):
cell predictions, kernel norms on test and training rows, top contributions, effective
parameters, fidelity, and irregularity curves computed by the real
``tabscope.bench.pairs.irregularity_from_arrays`` from per-example arrays. The numbers are
synthetic but shaped like real ones (the network's kappa-bar grows with the irregularity
score, the tree's stays near 1), and chosen so that every expected table entry is known.
The browser test (test_reports_browser.py) reuses it.
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import re
import sqlite3
import struct
from contextlib import closing
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabscope.bench.pairs import irregularity_from_arrays
from tabscope.bench.store import ResultsStore, StoreError, analysis_id, cell_id
from tabscope.bench.suite import AnalysisSettings
from tabscope.reports import (
    average_ranks,
    load_results,
    model_palette,
    primary_scores,
    win_tie_loss,
    write_report,
)
from tabscope.reports.sections import SECTION_TITLES, SECTIONS, section
from tabscope.reports.lens import aggregate_irregularity, irregularity_curves

DATASETS = {"sklearn:diabetes": ("diabetes", "regression"),
            "sklearn:wine": ("wine", "classification")}
MODELS = {"mlp": "network", "xgboost": "tree", "lightgbm": "tree", "ridge": "other"}
SEEDS = (0, 1)
N_TRAIN, N_TEST, N_CLASSES = 80, 60, 3
FAILED_CELL = ("sklearn:wine", "lightgbm", 1)
FAILED_CELL_ERROR = "LightGBMError: simulated | failure with a pipe"
FAILED_ANALYSIS = ("fidelity", "sklearn:diabetes", 0, "mlp")
FAILED_ANALYSIS_ERROR = "FloatingPointError: simulated divergence of the JVP replay"
SUITE_TOML = """name = "fixture"
description = "Synthetic fixture suite for the report tests."
datasets = ["sklearn:diabetes", "sklearn:wine"]
seeds = [0, 1]
"""

#: Mean primary score per (dataset, model): RMSE for diabetes, accuracy for wine.
MEAN_SCORE = {
    ("sklearn:diabetes", "mlp"): 58.0, ("sklearn:diabetes", "xgboost"): 55.0,
    ("sklearn:diabetes", "lightgbm"): 57.9, ("sklearn:diabetes", "ridge"): 54.0,
    ("sklearn:wine", "mlp"): 0.97, ("sklearn:wine", "xgboost"): 0.96,
    ("sklearn:wine", "lightgbm"): 0.95, ("sklearn:wine", "ridge"): 0.90,
}
#: The per-seed offsets added to the means: std over two seeds = |2 * SPREAD| / sqrt(2).
SPREAD = {"sklearn:diabetes": 0.5, "sklearn:wine": 0.005}


def primary_value(dataset: str, model: str, seed: int) -> float:
    sign = -1.0 if seed == 0 else 1.0
    return MEAN_SCORE[(dataset, model)] + sign * SPREAD[dataset]


def _cell_row(dataset: str, model: str, seed: int) -> dict:
    name, task = DATASETS[dataset]
    row = {"cell_id": cell_id(dataset, model, seed), "dataset": dataset, "dataset_name": name,
           "task": task, "model": model, "role": MODELS[model], "seed": seed,
           "split_hash": f"split-{seed}", "config_hash": "c0", "n_train": N_TRAIN,
           "n_test": N_TEST, "finished_at": f"2025-01-0{seed + 1}T12:00:00+00:00"}
    if (dataset, model, seed) == FAILED_CELL:
        return row | {"status": "failed", "error": FAILED_CELL_ERROR}
    value = primary_value(dataset, model, seed)
    if task == "regression":
        row |= {"rmse": value, "mae": 0.8 * value, "r2": 0.45}
    else:
        row |= {"accuracy": value, "log_loss": 1.0 - value, "roc_auc": 0.99}
    return row | {"status": "ok", "error": None, "fit_seconds": 0.5, "predict_seconds": 0.01}


def _predictions(rng, task: str, rows: np.ndarray, y_true: np.ndarray, noise: np.ndarray):
    if task == "regression":
        return pd.DataFrame({"row": rows, "y_true": y_true, "y_pred": y_true + noise})
    logits = rng.normal(size=(len(rows), N_CLASSES)) + 3.0 * np.eye(N_CLASSES)[y_true.astype(int)]
    logits += noise[:, None] * rng.normal(size=(len(rows), N_CLASSES))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"row": rows, "y_true": y_true.astype(int),
                          "y_pred": proba.argmax(axis=1)})
    for k in range(N_CLASSES):
        frame[f"proba_{k}"] = proba[:, k]
    return frame


def make_results(directory: Path, *, incomplete: bool = False,
                 with_failures: bool = True) -> ResultsStore:
    """Write the fixture results into ``directory``; ``incomplete`` leaves out mlp on wine."""
    store = ResultsStore(directory)
    store.set_meta({
        "suite_name": "fixture", "suite": SUITE_TOML,
        "environment": {"tabscope": "0.1.0", "python": "3.11.9", "platform": "Linux-x86_64",
                        "processor": "x86_64", "cores": 2, "numpy": np.__version__},
        "seeds": list(SEEDS),
        "models": {m: {"role": r, "preprocessing": "network" if r == "network" else "tree",
                       "params": {"max_steps": 50} if m == "mlp" else {}}
                   for m, r in MODELS.items()},
        "compare": [["mlp", "xgboost"]], "analyses": ["irregularity", "effective_parameters",
                                                      "fidelity"],
        "datasets": list(DATASETS), "used_fallback_datasets": False,
    })
    settings = AnalysisSettings(n_redraws=5)
    for dataset, (name, task) in DATASETS.items():
        for seed in SEEDS:
            rng = np.random.default_rng([seed, len(name)])
            test_rows = np.arange(N_TRAIN, N_TRAIN + N_TEST)
            train_rows = np.arange(N_TRAIN)
            score = rng.gamma(2.0, 1.0, N_TEST)
            y_true = (rng.normal(150, 60, N_TEST) if task == "regression"
                      else rng.integers(0, N_CLASSES, N_TEST).astype(float))
            cells, analyses, per_model = [], [], {}
            for model, role in MODELS.items():
                if incomplete and (dataset, model) == ("sklearn:wine", "mlp"):
                    continue
                row = _cell_row(dataset, model, seed)
                key = row["cell_id"]
                if row["status"] == "ok":
                    scale = 20.0 if task == "regression" else 0.5
                    noise = rng.normal(0, scale, N_TEST) * (1 + (role == "network") * score / 3)
                    predictions = _predictions(rng, task, test_rows, y_true, noise)
                    row["predictions_path"] = store.write_arrays(
                        key, {"predictions": predictions})["predictions"]
                    per_model[model] = predictions
                cells.append(row)
                if row["status"] != "ok" or role == "other":
                    continue
                # Kernel norms: network kappa_bar grows with the irregularity score.
                train_kappa = rng.lognormal(0, 0.2 if role == "network" else 0.05, N_TRAIN)
                train_kappa /= train_kappa.mean()
                test_kappa = (np.exp(0.25 * score) * rng.lognormal(0, 0.1, N_TEST)
                              if role == "network" else rng.lognormal(0, 0.05, N_TEST))
                paths = store.write_arrays(key, {
                    "kernel_norms": pd.DataFrame(
                        {"row": test_rows, "kappa": 0.1 * test_kappa, "kappa_bar": test_kappa}),
                    "train_kernel_norms": pd.DataFrame(
                        {"row": train_rows, "kappa": 0.1 * train_kappa,
                         "kappa_bar": train_kappa}),
                    "top_contributions": _top(rng, test_rows, role),
                })
                per_model[f"{model}_kappa_bar"] = test_kappa
                norms_summary = {"mean_kappa_bar_test": float(test_kappa.mean()),
                                 "max_kappa_bar_test": float(test_kappa.max()),
                                 "max_kappa_bar_train": float(train_kappa.max()),
                                 "n_eval": N_TEST, "norm": "l1", "seconds": 0.1,
                                 "attribution_coverage": 0.97 if role == "network" else 1.0,
                                 "attribution_window": 66 if role == "network" else 1}
                analyses.append(_analysis("kernel_norms", dataset, seed, [model], norms_summary,
                                          paths))
                if task == "regression":
                    p_train = 12.0 if role == "network" else 20.0
                    analyses.append(_analysis("effective_parameters", dataset, seed, [model], {
                        "p_train": p_train + seed, "p_test": p_train * 0.6 + seed,
                        "n_train": N_TRAIN, "n_eval": N_TEST, "seconds": 0.2}))
                if role == "network":
                    if with_failures and ("fidelity", dataset, seed, model) == FAILED_ANALYSIS:
                        analyses.append(_analysis("fidelity", dataset, seed, [model], None, None,
                                                  error=FAILED_ANALYSIS_ERROR))
                    else:
                        analyses.append(_analysis("fidelity", dataset, seed, [model], {
                            "first_order": 0.2 * (1 + seed), "trapezoid": 0.01 * (1 + seed),
                            "linearized": 0.6, "seconds": 0.3}))
            if "mlp" in per_model and "xgboost" in per_model:
                analyses.append(_irregularity(store, dataset, task, seed, score, y_true,
                                              per_model, settings))
            if not with_failures:
                cells = [c for c in cells if c["status"] == "ok"]
            store.record(cells=cells, analyses=analyses)
    return store


def _analysis(kind, dataset, seed, models, summary, arrays_path=None, error=None) -> dict:
    return {"analysis_id": analysis_id(kind, dataset, seed, models), "analysis": kind,
            "dataset": dataset, "seed": seed, "models": json.dumps(models),
            "status": "failed" if error else "ok", "error": error,
            "summary": json.dumps(summary) if summary is not None else None,
            "arrays_path": arrays_path, "finished_at": "2025-01-03T12:00:00+00:00"}


def _top(rng, test_rows: np.ndarray, role: str) -> pd.DataFrame:
    records = []
    for eval_row in test_rows[:3]:
        contributions = np.sort(np.abs(rng.normal(0, 1, 5)))[::-1] * rng.choice([-1, 1], 5)
        train = rng.choice(N_TRAIN, 5, replace=False)
        for rank in range(5):
            records.append({"eval_row": int(eval_row), "output": 0, "prediction": 1.5,
                            "offset": 0.1, "rank": rank + 1, "train_row": int(train[rank]),
                            "contribution": float(contributions[rank]),
                            "total_contribution": 1.4})
    return pd.DataFrame(records)


def _irregularity(store, dataset, task, seed, score, y_true, per_model, settings) -> dict:
    arrays = pd.DataFrame({"row": per_model["mlp"]["row"], "y_true": per_model["mlp"]["y_true"],
                           "score": score})
    for role, model in (("network", "mlp"), ("tree", "xgboost")):
        arrays[f"{role}_kappa_bar"] = per_model[f"{model}_kappa_bar"]
        for column in per_model[model].columns:
            if column == "y_pred" or column.startswith("proba_"):
                arrays[f"{role}_{column}"] = per_model[model][column].to_numpy()
    curve, summary = irregularity_from_arrays(arrays, task, "mlp", "xgboost", settings, seed)
    summary |= {"task": task, "settings": asdict(settings)}
    key = analysis_id("irregularity", dataset, seed, ["mlp", "xgboost"])
    paths = store.write_arrays(key, {"arrays": arrays, "curve": curve})
    return _analysis("irregularity", dataset, seed, ["mlp", "xgboost"], summary, paths)


# ----------------------------------------------------------------------------- test helpers



class _TableParser(HTMLParser):
    """Collects every <table> as rows of cell texts, and whether each cell is marked best."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._row = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = {"text": "", "best": "best" in (dict(attrs).get("class") or "")}

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append((" ".join(self._cell["text"].split()), self._cell["best"]))
            self._cell = None
        elif tag == "tr":
            self.tables[-1].append(self._row)


def html_tables(text: str) -> list[list[list[tuple[str, bool]]]]:
    parser = _TableParser()
    parser.feed(text)
    return parser.tables


def markdown_tables(text: str) -> list[list[list[tuple[str, bool]]]]:
    """Pipe tables of a Markdown file as rows of (text, bold) cells; the rule row dropped."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            if all(re.fullmatch(r"-+", c.strip()) for c in cells):
                continue
            row = []
            for cell in cells:
                cell = cell.strip().replace("\\|", "|").replace("\\\\", "\\")
                bold = len(cell) > 4 and cell.startswith("**") and cell.endswith("**")
                row.append((cell[2:-2] if bold else cell, bold))
            current.append(row)
        else:
            current = None
    return tables


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; fails if ``data`` is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def table_titled(tables_html: list, page: str, title: str) -> list:
    """The HTML table right after the title paragraph ``title``."""
    titles = re.findall(r'<p class="tabletitle">(.*?)</p><table>', page)
    return tables_html[[html_lib.unescape(t) for t in titles].index(title)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    directory = tmp_path_factory.mktemp("results")
    make_results(directory)
    paths = write_report(directory)
    return {"paths": paths, "dir": directory, "html": paths["html"].read_text(),
            "markdown": paths["markdown"].read_text()}


# ------------------------------------------------------------------- tables, numerically


def test_primary_scores_mean_std_and_best_per_dataset(tmp_path):
    make_results(tmp_path)
    scores = primary_scores(load_results(tmp_path).cells).set_index(["dataset", "model"])
    mlp = scores.loc[("sklearn:diabetes", "mlp")]
    assert mlp["metric"] == "rmse" and not mlp["higher_is_better"]
    assert mlp["mean"] == pytest.approx(58.0)
    assert mlp["std"] == pytest.approx(np.std([57.5, 58.5], ddof=1))
    lightgbm_wine = scores.loc[("sklearn:wine", "lightgbm")]
    assert (lightgbm_wine["n_ok"], lightgbm_wine["n_failed"]) == (1, 1)
    assert lightgbm_wine["mean"] == pytest.approx(primary_value("sklearn:wine", "lightgbm", 0))
    best = scores[scores["best"]].reset_index()
    assert sorted(zip(best["dataset"], best["model"])) == [
        ("sklearn:diabetes", "ridge"), ("sklearn:wine", "mlp")]


def test_average_ranks_follow_the_direction_of_each_metric(tmp_path):
    make_results(tmp_path)
    ranks = average_ranks(primary_scores(load_results(tmp_path).cells)).set_index("model")
    # diabetes (RMSE): ridge, xgboost, lightgbm, mlp; wine (accuracy): mlp, xgboost, lightgbm, ridge
    assert ranks["mean_rank"].to_dict() == {"xgboost": 2.0, "mlp": 2.5, "ridge": 2.5,
                                            "lightgbm": 3.0}
    assert set(ranks["n_datasets"]) == {2}


def test_average_ranks_share_ties_and_skip_models_without_scores():
    scores = pd.DataFrame({
        "dataset": ["a", "a", "a", "b", "b"], "model": ["x", "y", "z", "x", "y"],
        "role": "tree", "higher_is_better": [True] * 3 + [False] * 2,
        "mean": [0.9, 0.9, 0.5, 3.0, np.nan],
    })
    ranks = average_ranks(scores).set_index("model")
    assert ranks.loc["x", "mean_rank"] == pytest.approx((1.5 + 1) / 2)
    assert ranks.loc["y", "mean_rank"] == pytest.approx(1.5)
    assert ranks.loc["y", "n_datasets"] == 1
    assert ranks.loc["z", "mean_rank"] == 3.0


def test_win_tie_loss_uses_the_pooled_std(tmp_path):
    make_results(tmp_path)
    totals, detail = win_tie_loss(primary_scores(load_results(tmp_path).cells))
    outcomes = {(r["dataset_name"], r["tree"]): r["outcome"] for _, r in detail.iterrows()}
    # diabetes RMSE 58.0 vs 55.0 (pooled std 0.71): loss; vs 57.9: tie.
    # wine accuracy 0.97 vs 0.96 (pooled 0.0071): win; vs 0.945 (one seed, pooled 0.005): win.
    assert outcomes == {("diabetes", "xgboost"): "loss", ("diabetes", "lightgbm"): "tie",
                        ("wine", "xgboost"): "win", ("wine", "lightgbm"): "win"}
    lightgbm_wine = detail[(detail["dataset_name"] == "wine") & (detail["tree"] == "lightgbm")]
    assert lightgbm_wine["pooled_std"].iloc[0] == pytest.approx(
        np.sqrt(np.std([0.965, 0.975], ddof=1) ** 2 / 2))
    assert totals.set_index("tree")[["wins", "ties", "losses"]].to_dict("index") == {
        "xgboost": {"wins": 1, "ties": 0, "losses": 1},
        "lightgbm": {"wins": 1, "ties": 1, "losses": 0}}
    assert "ridge" not in set(detail["tree"]) | set(detail["network"])  # role "other"


def test_win_tie_loss_with_one_seed_ties_only_on_equal_means():
    scores = pd.DataFrame({
        "dataset": ["a", "a", "b", "b"], "dataset_name": ["a", "a", "b", "b"],
        "model": ["net", "gbdt"] * 2, "role": ["network", "tree"] * 2,
        "metric": "rmse", "higher_is_better": False,
        "mean": [1.0, 1.0, 1.0, 1.0 + 1e-9], "std": np.nan,
    })
    _, detail = win_tie_loss(scores)
    assert list(detail["outcome"]) == ["tie", "win"]


def test_irregularity_curves_are_averaged_over_seeds(tmp_path):
    make_results(tmp_path)
    data = load_results(tmp_path)
    curves = irregularity_curves(data)
    assert set(curves["seed"]) == set(SEEDS) and set(curves["dataset_name"]) == {"diabetes", "wine"}
    gaps, kappa = aggregate_irregularity(curves)
    at = curves[(curves["dataset"] == "sklearn:wine") & (curves["model"] == "mlp")
                & (curves["p"] == 1.0)]
    gap = gaps[(gaps["dataset"] == "sklearn:wine") & (gaps["p"] == 1.0)].iloc[0]
    assert gap["gap"] == pytest.approx(at["gap_mean"].mean())
    assert gap["gap_band"] == pytest.approx(np.std(at["gap_mean"].to_numpy()))
    assert gap["band"] == "seeds" and gap["n_seeds"] == 2
    network = kappa[(kappa["dataset"] == "sklearn:wine") & (kappa["model"] == "mlp")
                    & (kappa["p"] == 1.0)].iloc[0]
    assert network["kappa_bar"] == pytest.approx(at["kappa_bar_mean"].mean())
    # The fixture's network kappa-bar grows with the irregularity score; the tree's does not.
    grows = kappa.groupby(["dataset", "model"]).apply(
        lambda g: g.sort_values("p")["kappa_bar"].iloc[-1] - g.sort_values("p")["kappa_bar"].iloc[0])
    assert (grows.xs("mlp", level="model") > 0.5).all()
    assert (grows.xs("xgboost", level="model").abs() < 0.2).all()


def test_model_palette_is_stable_and_distinct():
    palette = model_palette(["mlp", "xgboost", "lightgbm"])
    assert list(palette) == ["mlp", "xgboost", "lightgbm"]
    assert len(set(palette.values())) == 3
    assert model_palette(["mlp", "xgboost", "lightgbm", "extra"])["xgboost"] == palette["xgboost"]
    assert len(set(model_palette([f"m{i}" for i in range(14)]).values())) == 14
    with pytest.raises(TypeError, match="models"):
        model_palette("mlp")


# ------------------------------------------------------------------- the written report


def test_report_files_are_written_atomically_and_deterministically(report):
    directory = report["dir"]
    assert report["paths"]["html"] == directory / "report.html"
    assert report["paths"]["markdown"] == directory / "report.md"
    assert not [p.name for p in directory.rglob(".*.tmp")]
    again = write_report(directory)
    assert again["html"].read_text() == report["html"]
    assert again["markdown"].read_text() == report["markdown"]


def test_html_is_self_contained_and_every_image_is_a_decodable_png(report):
    page = report["html"]
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:|#)', page), "a resource outside the page"
    sources = re.findall(r'<img src="([^"]+)"', page)
    # Per-dataset: scores, irregularity, kernel norms, effective parameters, fidelity;
    # across datasets: normalised scores, win rates, pooled lens, effective parameters
    # (no critical-difference diagram with two datasets, no κ_t paths in the fixture).
    assert len(sources) == 9
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        width, height = png_size(base64.b64decode(source.split(",", 1)[1], validate=True))
        assert width >= 300 and height >= 200


def test_every_section_heading_is_present_in_both_formats(report):
    headings = [html_lib.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", report["html"])]
    assert headings == list(SECTION_TITLES)
    md_headings = re.findall(r"^## (.+)$", report["markdown"], flags=re.MULTILINE)
    assert md_headings == list(SECTION_TITLES)


def test_markdown_renders_the_same_tables_as_the_html(report):
    from_html = html_tables(report["html"])
    from_markdown = markdown_tables(report["markdown"])
    assert len(from_html) >= 15
    assert from_markdown == from_html


def test_markdown_figures_are_files_beside_it(report):
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report["markdown"])
    assert sorted(links) == sorted(f"figures/{n}.png" for n in (
        "scores", "irregularity", "kernel_norms", "effective_parameters", "fidelity",
        "normalised_scores", "win_rates", "pooled_lens", "effective_parameters_across"))
    for link in links:
        png_size((report["dir"] / link).read_bytes())
    width, height = png_size((report["dir"] / "figures" / "irregularity.png").read_bytes())
    assert width > height / 2 and width >= 600


def test_score_table_marks_the_best_and_shows_a_partly_failed_cell(report):
    tables = html_tables(report["html"])
    table = table_titled(tables, report["html"], "Classification: accuracy (fraction correct, "
                         "higher is better), mean ± std over seeds")
    header, wine = [c[0] for c in table[0]], dict(zip([c[0] for c in table[0]], table[1]))
    assert header == ["dataset", "mlp", "xgboost", "lightgbm", "ridge"]
    assert wine["mlp"] == ("0.97 ± 0.0071", True)
    assert wine["xgboost"] == ("0.96 ± 0.0071", False)
    assert wine["lightgbm"] == ("0.945 (1 of 2 seeds failed)", False)
    regression = table_titled(tables, report["html"], "Regression: RMSE (target units, lower is "
                              "better), mean ± std over seeds")
    assert regression[1] == [("diabetes", False), ("58 ± 0.71", False), ("55 ± 0.71", False),
                             ("57.9 ± 0.71", False), ("54 ± 0.71", True)]
    assert "| wine | **0.97 ± 0.0071** | 0.96 ± 0.0071 |" in report["markdown"]


def test_failed_cell_and_failed_analysis_are_shown_with_their_errors(report):
    tables = html_tables(report["html"])
    cells = table_titled(tables, report["html"], "Failed cells")
    assert [c[0] for c in cells[1]] == ["wine", "lightgbm", "1", FAILED_CELL_ERROR]
    analyses = table_titled(tables, report["html"], "Failed analyses")
    assert [c[0] for c in analyses[1]] == ["fidelity", "diabetes", "0", "mlp",
                                           FAILED_ANALYSIS_ERROR]
    assert html_lib.escape(FAILED_CELL_ERROR) in report["html"]
    assert FAILED_CELL_ERROR.replace("|", "\\|") in report["markdown"]
    assert FAILED_ANALYSIS_ERROR in report["markdown"]
    assert "1 analysis behind this section (fidelity) failed" in report["markdown"]


def test_lens_sections_show_the_stored_numbers(report):
    tables, page = html_tables(report["html"]), report["html"]
    fidelity = table_titled(tables, page, "Telescoping fidelity (relative error, mean ± std "
                            "over seeds; lower is better)")
    rows = {r[0][0]: [c[0] for c in r] for r in fidelity[1:]}
    assert rows["diabetes"] == ["diabetes", "mlp", "0.4", "0.02", "0.6", "1"]  # seed 0 failed
    assert rows["wine"] == ["wine", "mlp", "0.3 ± 0.14", "0.015 ± 0.0071", "0.6 ± 0", "2"]
    effective = table_titled(tables, page, "Effective parameters (mean ± std over seeds)")
    assert [c[0] for c in effective[1]] == ["diabetes", "mlp", "12.5 ± 0.71", "7.7 ± 0.71",
                                            "80", "2"]
    contributions = [t for t in tables if t[0][0][0] == "test row"]
    assert len(contributions) == 2  # one per dataset, mlp vs xgboost
    assert [c[0] for c in contributions[0][0]][2:5] == [
        "mlp prediction (offset)", "mlp training row", "mlp contribution"]
    assert len(contributions[0]) == 1 + 3 * 5


def test_incomplete_run_says_what_is_missing(tmp_path):
    make_results(tmp_path, incomplete=True, with_failures=False)
    page = write_report(tmp_path)["html"].read_text()
    status = dict((r[0][0], r[1][0]) for r in table_titled(html_tables(page), page, "Run status")[1:])
    # Missing: mlp on wine (both seeds) and the cell that fails in the full fixture.
    assert status["cells expected"] == "16" and status["cells not run yet"] == "3"
    assert "This run is incomplete: 3 cells have no result yet" in page
    for cell in ("sklearn:wine::mlp::0", "sklearn:wine::mlp::1", "sklearn:wine::lightgbm::1"):
        assert cell in page
    assert "No cell failed." in page
    score = table_titled(html_tables(page), page, "Classification: accuracy (fraction correct, "
                         "higher is better), mean ± std over seeds")
    assert dict(zip([c[0] for c in score[0]], [c[0] for c in score[1]]))["mlp"] == "not run"


def test_empty_results_give_every_section_with_a_no_data_note(tmp_path):
    store = ResultsStore(tmp_path)
    store.set_meta({"suite_name": "empty", "datasets": ["sklearn:diabetes"], "seeds": [0],
                    "models": {"mlp": {"role": "network"}}})
    paths = write_report(tmp_path)
    page, markdown = paths["html"].read_text(), paths["markdown"].read_text()
    assert [html_lib.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", page)] == list(SECTION_TITLES)
    sections = re.findall(r"<section id=\"[^\"]+\"><h2>(.*?)</h2>(.*?)</section>", page, re.S)
    assert len(sections) == len(SECTION_TITLES)
    for title, body in sections[2:]:  # the suite and status sections have their own content
        assert "No data:" in body, title
    assert "No data: the run recorded no environment." in page
    assert "<img" not in page and not list((tmp_path / "figures").iterdir())
    assert markdown_tables(markdown) == html_tables(page)


def test_an_unreadable_array_file_is_reported_not_fatal(tmp_path):
    make_results(tmp_path)
    analyses = load_results(tmp_path).analyses
    row = analyses[analyses["analysis"] == "irregularity"].iloc[0]
    (tmp_path / ResultsStore.array_paths(row)["curve"]).unlink()
    page = write_report(tmp_path)["html"].read_text()
    problems = table_titled(html_tables(page), page,
                            "Unreadable result files (their rows are left out above)")
    assert problems[1][0][0] == f"{row['analysis_id']} [curve]"
    assert "is missing from the results directory" in problems[1][1][0]
    assert "figure-irregularity" in page  # the other seed's curve is still drawn


def test_stale_figures_are_removed_when_their_data_is_gone(tmp_path):
    make_results(tmp_path)
    write_report(tmp_path)
    assert (tmp_path / "figures" / "fidelity.png").exists()
    # The store has no API that deletes rows; a results directory without fidelity rows is
    # what a rerun of the suite without the fidelity analysis would leave.
    with closing(sqlite3.connect(tmp_path / "tabscope.sqlite")) as connection, connection:
        connection.execute("DELETE FROM analyses WHERE analysis = 'fidelity'")
    assert "fidelity" not in set(load_results(tmp_path).analyses["analysis"])
    write_report(tmp_path)
    assert not (tmp_path / "figures" / "fidelity.png").exists()
    assert (tmp_path / "figures" / "irregularity.png").exists()


def test_bad_directory_arguments_name_the_problem(tmp_path):
    with pytest.raises(TypeError, match="directory must be a path"):
        write_report(42)
    with pytest.raises(StoreError, match="no tabscope results"):
        write_report(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_a_dataset_without_kernel_norms_still_gets_the_other_tables(tmp_path):
    make_results(tmp_path)
    with closing(sqlite3.connect(tmp_path / "tabscope.sqlite")) as connection, connection:
        connection.execute("DELETE FROM analyses WHERE dataset = 'sklearn:wine' AND "
                           "analysis IN ('kernel_norms', 'irregularity')")
    page = write_report(tmp_path)["html"].read_text()
    assert "could not be built" not in page
    contributions = [t for t in html_tables(page) if t[0][0][0] == "test row"]
    assert len(contributions) == 1
    titles = [html_lib.unescape(t) for t in re.findall(r'<p class="tabletitle">(.*?)</p>', page)]
    assert "diabetes (seed 0): mlp vs xgboost" in titles


def test_a_stored_curve_without_the_expected_columns_is_reported(tmp_path):
    make_results(tmp_path)
    analyses = load_results(tmp_path).analyses
    row = analyses[analyses["analysis"] == "irregularity"].iloc[0]
    curve_path = tmp_path / ResultsStore.array_paths(row)["curve"]
    # A curve written by some other version, missing most columns the report averages.
    pd.DataFrame({"p": [0.0, 1.0], "model": ["mlp", "mlp"]}).to_parquet(curve_path)
    page = write_report(tmp_path)["html"].read_text()
    problems = table_titled(html_tables(page), page,
                            "Unreadable result files (their rows are left out above)")
    assert problems[1][0][0] == f"{row['analysis_id']} [curve]"
    assert problems[1][1][0].startswith("the stored curve lacks the column(s) ['gap_mean'")
    assert "figure-irregularity" in page


def test_a_section_that_cannot_be_built_says_why():
    from tabscope.reports.build import _guarded
    from tabscope.reports.sections import ReportSection

    def broken(context):
        raise KeyError("gap_mean")

    built = _guarded(ReportSection("irregularity", "Kernel irregularity", broken), None)
    assert built.title == "Kernel irregularity"
    assert built.blocks[0].text == ("This section could not be built from the stored "
                                      "results: KeyError: 'gap_mean'")


def test_contribution_tables_say_how_much_they_explain(report):
    section = report["markdown"].split("## Most influential training examples\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert "Coverage, under each table, is the share of the prediction's change" in section
    notes = re.findall(r"Coverage: mlp ([^,]+), xgboost ([^.]+\.\d+)", section)
    assert notes and all(n == ("0.97 (window 66 steps)", "1.00") for n in notes)


def test_training_rows_shared_by_both_models_are_marked(report):
    tables = [t for t in html_tables(report["html"]) if t[0][0][0] == "test row"]
    header = [c[0] for c in tables[0][0]]
    net, tree = header.index("mlp training row"), header.index("xgboost training row")
    for table in tables:
        test_row, groups = None, {}
        for row in table[1:]:
            test_row = row[0][0] or test_row
            groups.setdefault(test_row, []).append(row)
        for rows in groups.values():
            shared = {r[net][0] for r in rows} & {r[tree][0] for r in rows}
            for r in rows:
                assert r[net][1] == (r[net][0] in shared)
                assert r[tree][1] == (r[tree][0] in shared)
    assert any(cell[1] for table in tables for row in table[1:] for cell in row)


def test_sections_are_found_by_name_in_one_ordered_registry():
    names = [entry.name for entry in SECTIONS]
    assert len(set(names)) == len(names) and len(set(SECTION_TITLES)) == len(SECTION_TITLES)
    assert section("irregularity").title == "Kernel irregularity"
    assert names.index("status") == 1  # shown second, though built last
    assert [entry.name for entry in SECTIONS if entry.built_last] == ["status"]
    with pytest.raises(KeyError, match="no report section named 'irregular'"):
        section("irregular")


def test_cross_dataset_sections_say_why_they_have_too_little_to_show(report):
    markdown = report["markdown"]
    cd = markdown.split("## Critical differences\n", 1)[1].split("\n## ", 1)[0]
    assert "Only 2 dataset(s): the critical-difference diagram needs at least 5" in cd
    assert "critical_difference.png" not in markdown
    assert "Friedman χ²" in cd  # the ranks and the test are still given, as descriptive
    parallels = markdown.split("## Boosting parallels\n", 1)[1]
    assert "No data: no compared pair has stored influence frames" in parallels
    assert "No data: no cell stored how its predictions were assembled" in parallels
    normalised = markdown.split("## Normalised scores across datasets\n", 1)[1].split("\n## ", 1)[0]
    assert "needs the 'trials' table" in normalised  # the fixture run was not tuned
