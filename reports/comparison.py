"""Compare two results directories: per dataset and model, how B's primary score differs
from A's, and whether the difference is significant.

Pairing. Where A and B ran the same seeds, seed s of A is paired with seed s of B (same
split, same initialisation: a paired comparison). Otherwise the seeds are paired in sorted
order; under the null hypothesis of identical models each such difference is still
symmetric about 0, so the signed-rank test stays valid, only less powerful.

Tests. Per dataset: Welch's t-test over seeds (``scipy.stats.ttest_ind``, two-sided), shown
but with little power at 2–3 seeds. Per model over all datasets: the Wilcoxon signed-rank
test (``scipy.stats.wilcoxon``) of the relative differences (B − A) / |mean A| of every
(dataset, seed pair), Holm-adjusted over models. Scores are oriented so that a positive
difference means B is better.

The comparison report ends with the report's cross-dataset sections (normalised scores,
critical differences, win rates) on A's and B's models together (:func:`merged_results`).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .across import per_seed_scores
from .data import Results, load_results
from .document import Cell, FigureBlock, Paragraph, Section, Table, iter_figures, render_html, render_markdown
from .figures import model_palette
from .figures_across import compare_figure
from .sections._common import figure_block, fmt

__all__ = ["ALPHA", "compare_scores", "holm", "merged_results", "write_comparison"]

#: Significance level of the comparison.
ALPHA = 0.05


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of ``pvalues`` (NaN left as NaN)."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def _pairs(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, bool]:
    """Paired values of two seed-indexed series: by seed if the seeds agree, else by order."""
    if set(a.index) == set(b.index):
        seeds = sorted(a.index)
        return a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy(), True
    count = min(len(a), len(b))
    return a.sort_index().to_numpy()[:count], b.sort_index().to_numpy()[:count], False


def compare_scores(a: Results, b: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Differences of B against A per (dataset, model), and per model over datasets.

    Returns
    -------
    per_dataset : pandas.DataFrame
        ``dataset``, ``dataset_name``, ``model``, ``metric``, ``mean_a``, ``mean_b``,
        ``relative_difference`` (mean over seed pairs of (B − A) / |mean A|, oriented so
        that above 0 means B is better), ``relative_difference_std``, ``n_pairs``,
        ``paired_by_seed``, ``pvalue`` (Welch's t-test over seeds; NaN under 2 seeds).
    overall : pandas.DataFrame
        ``model``, ``n_datasets``, ``n_pairs``, ``median_relative_difference``,
        ``statistic`` and ``pvalue`` of the Wilcoxon signed-rank test, ``pvalue_holm``
        and ``significant`` (Holm-adjusted p below :data:`ALPHA`).
    """
    scores_a, scores_b = per_seed_scores(a.cells), per_seed_scores(b.cells)
    rows, pooled = [], {}
    for (dataset, model), group_a in scores_a.groupby(["dataset", "model"], sort=False):
        group_b = scores_b[(scores_b["dataset"] == dataset) & (scores_b["model"] == model)]
        if group_b.empty:
            continue
        sign = 1.0 if bool(group_a["higher_is_better"].iloc[0]) else -1.0
        values_a = group_a.set_index("seed")["value"]
        values_b = group_b.set_index("seed")["value"]
        first, second, by_seed = _pairs(values_a, values_b)
        scale = abs(values_a.mean()) or 1.0
        relative = sign * (second - first) / scale
        pvalue = np.nan
        if len(values_a) >= 2 and len(values_b) >= 2:
            if np.ptp(values_a) == 0 and np.ptp(values_b) == 0:
                pvalue = 1.0 if values_a.iloc[0] == values_b.iloc[0] else 0.0
            else:
                with warnings.catch_warnings():  # seeds that agree to the last digits
                    warnings.simplefilter("ignore", RuntimeWarning)
                    pvalue = float(stats.ttest_ind(values_a, values_b, equal_var=False).pvalue)
        rows.append({"dataset": dataset, "dataset_name": group_a["dataset_name"].iloc[0],
                     "model": model, "metric": group_a["metric"].iloc[0],
                     "mean_a": float(values_a.mean()), "mean_b": float(values_b.mean()),
                     "relative_difference": float(relative.mean()),
                     "relative_difference_std": float(relative.std(ddof=1))
                     if len(relative) > 1 else np.nan,
                     "n_pairs": len(relative), "paired_by_seed": by_seed, "pvalue": pvalue})
        pooled.setdefault(model, []).append(relative)
    per_dataset = pd.DataFrame(rows, columns=[
        "dataset", "dataset_name", "model", "metric", "mean_a", "mean_b", "relative_difference",
        "relative_difference_std", "n_pairs", "paired_by_seed", "pvalue"])
    overall = []
    for model, parts in pooled.items():
        differences = np.concatenate(parts)
        statistic, pvalue = np.nan, np.nan
        if np.all(differences == 0):
            pvalue = 1.0
        elif len(differences) >= 2:
            test = stats.wilcoxon(differences)
            statistic, pvalue = float(test.statistic), float(test.pvalue)
        overall.append({"model": model, "n_datasets": len(parts), "n_pairs": len(differences),
                        "median_relative_difference": float(np.median(differences)),
                        "statistic": statistic, "pvalue": pvalue})
    overall = pd.DataFrame(overall, columns=["model", "n_datasets", "n_pairs",
                                             "median_relative_difference", "statistic", "pvalue"])
    overall["pvalue_holm"] = holm(overall["pvalue"].to_numpy()) if len(overall) else []
    overall["significant"] = overall["pvalue_holm"] < ALPHA
    return per_dataset, overall


def merged_results(a: Results, b: Results) -> Results:
    """A and B as one set of results whose models are named ``MODEL (A)`` and ``MODEL (B)``.

    Seeds are replaced by their position in each run's sorted seeds, the pairing of
    :func:`compare_scores`, so the cross-dataset sections rank A's and B's models in the same
    (dataset, seed) blocks.
    """
    frames, models = [], {}
    for label, results in (("A", a), ("B", b)):
        cells = results.cells.copy()
        position = {seed: i for i, seed in enumerate(sorted(set(cells["seed"])))}
        cells["seed"] = cells["seed"].map(position)
        cells["model"] = cells["model"] + f" ({label})"
        frames.append(cells)
        for name, spec in (results.meta.get("models") or {}).items():
            models[f"{name} ({label})"] = spec
    cells = pd.concat(frames, ignore_index=True)
    cells["cell_id"] = cells["dataset"] + "::" + cells["model"] + "::" + cells["seed"].astype(str)
    meta = {"models": models, "datasets": list(dict.fromkeys([*(a.meta.get("datasets") or []),
                                                             *(b.meta.get("datasets") or [])])),
            "seeds": sorted(set(cells["seed"]))}
    return Results(directory=Path(b.directory), meta=meta, cells=cells,
                   analyses=a.analyses.iloc[:0], store=b.store)


def _cross_dataset_sections(a: Results, b: Results) -> list[Section]:
    """The report's cross-dataset sections on A's and B's models together."""
    from .build import _guarded
    from .sections import ReportContext, section
    from .sections._common import in_report_order
    from .tables import primary_scores

    merged = merged_results(a, b)
    context = ReportContext(data=merged, scores=in_report_order(primary_scores(merged.cells), merged),
                            palette=model_palette(merged.models))
    built = []
    for name in ("normalised", "critical_difference", "win_rates"):
        entry = section(name)
        part = _guarded(entry, context)
        part.title = f"{part.title} (A and B together)"
        # Figure files of their own, beside the comparison's.
        part.blocks = [dataclasses.replace(block, name=f"compare_{block.name}")
                       if isinstance(block, FigureBlock) else block for block in part.blocks]
        built.append(part)
    return built


def _sections(a: Results, b: Results) -> list[Section]:
    per_dataset, overall = compare_scores(a, b)
    palette = model_palette(list(dict.fromkeys([*a.models, *b.models])))
    header = Section("Compared results", [Paragraph(
        f"A: {a.directory} (suite {a.meta.get('suite_name', '?')}, seeds {a.meta.get('seeds')}). "
        f"B: {b.directory} (suite {b.meta.get('suite_name', '?')}, seeds {b.meta.get('seeds')}). "
        "Each dataset's primary metric (RMSE for regression, accuracy for classification) is "
        "compared model by model; differences are relative to A's mean and oriented so that "
        "above 0 means B is better. " + (__doc__.split("Pairing. ", 1)[1].split("\n\n")[0]
                                         .replace("\n", " ")))])
    overall_section = Section("Overall differences per model")
    if overall.empty:
        overall_section.blocks.append(Paragraph(
            "No data: no model was scored on the same dataset in both directories.", kind="note"))
    else:
        overall_section.blocks.append(Table(
            "Wilcoxon signed-rank test of the relative differences over every dataset and "
            "seed pair, Holm-adjusted over models",
            ["model", "datasets", "seed pairs", "median relative difference B − A",
             "Wilcoxon p", "Holm p", f"significant at {ALPHA}"],
            [[r["model"], r["n_datasets"], r["n_pairs"], fmt(r["median_relative_difference"], 3),
              fmt(r["pvalue"], 3), fmt(r["pvalue_holm"], 3),
              Cell("yes" if r["significant"] else "no", best=bool(r["significant"]))]
             for _, r in overall.iterrows()]))
    detail = Section("Differences by dataset")
    if not per_dataset.empty:
        detail.blocks.append(Table(
            "B against A per dataset and model",
            ["dataset", "model", "metric", "mean A", "mean B", "relative difference B − A",
             "seed pairs", "paired by seed", "Welch p"],
            [[r["dataset_name"], r["model"], r["metric"], fmt(r["mean_a"]), fmt(r["mean_b"]),
              f"{fmt(r['relative_difference'], 3)} ± {fmt(r['relative_difference_std'], 2)}",
              r["n_pairs"], "yes" if r["paired_by_seed"] else "no", fmt(r["pvalue"], 3)]
             for _, r in per_dataset.iterrows()],
            note="Welch's t-test over seeds per dataset has little power with 2–3 seeds; "
                 "the overall test pools the datasets."))
        block = figure_block("compare", compare_figure(per_dataset, palette),
                             alt="Relative difference of B against A per dataset and model",
                             caption="Mean relative difference over seed pairs, whiskers ± std.")
        if block:
            detail.blocks.append(block)
    else:
        detail.blocks.append(Paragraph("No data: nothing to compare.", kind="note"))
    return [header, overall_section, detail, *_cross_dataset_sections(a, b)]


def write_comparison(directory_a: str | os.PathLike, directory_b: str | os.PathLike,
                     out: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``figures/`` comparing two results directories.

    Parameters
    ----------
    directory_a, directory_b : str or path-like
        Results directories written by ``tabscope run``; B is compared against A.
    out : str or path-like, optional
        Where to write; default ``DIR_B/compare``.

    Returns
    -------
    paths : dict
        ``{"html": Path, "markdown": Path, "figures": Path}``.

    Raises
    ------
    tabscope.bench.store.StoreError
        If either directory holds no readable tabscope results.
    """
    from .writer import _write_atomic

    a, b = load_results(directory_a), load_results(directory_b)
    sections = _sections(a, b)
    root = Path(out) if out is not None else Path(directory_b) / "compare"
    (root / "figures").mkdir(parents=True, exist_ok=True)
    for figure in iter_figures(sections):
        _write_atomic(root / "figures" / f"{figure.name}.png", figure.png)
    title = f"tabscope comparison: {Path(directory_b).name} against {Path(directory_a).name}"
    subtitle = "Differences of B's scores from A's per dataset and model, with their significance."
    _write_atomic(root / "report.md", render_markdown(title, subtitle, sections).encode())
    _write_atomic(root / "report.html", render_html(title, subtitle, sections).encode())
    return {"html": root / "report.html", "markdown": root / "report.md",
            "figures": root / "figures"}
