"""The report's content: its sections, built from a :class:`~tabscope.reports.data.ReportData`.

Every section is always present, so a reader (and a test) finds the same outline for any
run; a section without data says why instead of disappearing, and failed cells and analyses
are listed with their error messages.
"""

from __future__ import annotations

import logging
import tomllib

import numpy as np
import pandas as pd

from tabscope.bench.results import PRIMARY_METRIC, summarise_scores
from tabscope.bench.store import METRIC_COLUMNS

from . import lens
from .data import ReportData
from .document import Cell, Code, FigureBlock, Paragraph, Section, Table
from .figures import (
    effective_parameters_figure,
    fidelity_figure,
    figure_png,
    irregularity_figure,
    kernel_norm_figure,
    model_palette,
    scores_figure,
)
from .tables import (
    METRIC_LABELS,
    TIE_RULE,
    average_ranks,
    format_mean_std,
    primary_scores,
    win_tie_loss,
)

__all__ = ["SECTION_TITLES", "build_sections"]

logger = logging.getLogger(__name__)

#: The report's sections, in order.
SECTION_TITLES = (
    "Suite and environment",
    "Run status and failures",
    "Scores by dataset",
    "Average ranks",
    "Networks versus GBDTs",
    "Kernel irregularity",
    "Kernel weight norms on training and test data",
    "Effective parameters",
    "Telescoping fidelity",
    "Most influential training examples",
)
#: Longest list of not-yet-run cells printed in full.
_MAX_LISTED_MISSING = 30


def _figure(name: str, figure, alt: str, caption: str) -> FigureBlock | None:
    if figure is None:
        return None
    return FigureBlock(name=name, png=figure_png(figure), alt=alt, caption=caption)


def _no_data(what: str) -> Paragraph:
    return Paragraph(f"No data: {what}", kind="note")


def _failed_note(data: ReportData, kinds: tuple[str, ...]) -> list[Paragraph]:
    failed = data.analyses[data.analyses["analysis"].isin(kinds) & (data.analyses["status"] != "ok")]
    if failed.empty:
        return []
    noun = "analysis" if len(failed) == 1 else "analyses"
    return [Paragraph(f"{len(failed)} {noun} behind this section ({', '.join(kinds)}) failed; "
                      "the errors are listed under 'Run status and failures'.", kind="note")]


def _in_report_order(frame: pd.DataFrame, data: ReportData, model: str = "model") -> pd.DataFrame:
    """Rows sorted by the suite's dataset order, then its model order (seed kept stable)."""
    datasets = {source: i for i, source in enumerate(data.dataset_order())}
    models = {name: i for i, name in enumerate(data.models)}
    keys = frame.assign(_dataset=frame["dataset"].map(datasets), _model=frame[model].map(models))
    return frame.loc[keys.sort_values(["_dataset", "_model"], kind="stable").index]


def _message(value: object) -> str:
    """An error message as stored; SQL NULL reads as None or NaN."""
    return value if isinstance(value, str) and value else "(no message recorded)"


def _fmt(value: float, digits: int = 4) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.{digits}g}"


# ------------------------------------------------------------------- suite, environment


def _suite_section(data: ReportData) -> Section:
    meta = data.meta
    try:
        description = tomllib.loads(meta.get("suite") or "").get("description", "")
    except tomllib.TOMLDecodeError:
        description = ""
    models = meta.get("models") or {}
    rows = [
        ["suite", meta.get("suite_name", "(unknown)")],
        ["description", description or "—"],
        ["datasets", ", ".join(data.dataset_names.get(s, s) for s in data.dataset_order()) or "—"],
        ["seeds", ", ".join(map(str, meta.get("seeds") or [])) or "—"],
        ["models", "; ".join(f"{name} ({spec.get('role', 'other')})"
                             for name, spec in models.items()) or "—"],
        ["compared pairs", ", ".join(f"{a} vs {b}" for a, b in meta.get("compare") or []) or "—"],
        ["analyses", ", ".join(meta.get("analyses") or []) or "none"],
    ]
    if meta.get("used_fallback_datasets"):
        rows.append(["datasets note", "OpenML was out of reach: the suite's offline fallback "
                                      "datasets were used"])
    section = Section(SECTION_TITLES[0], [Table("Suite", ["setting", "value"], rows)])
    if models:
        section.blocks.append(Table(
            "Models and their parameters", ["model", "role", "preprocessing", "parameters"],
            [[name, spec.get("role", ""), spec.get("preprocessing", ""),
              ", ".join(f"{k}={v}" for k, v in (spec.get("params") or {}).items()) or "defaults"]
             for name, spec in models.items()],
        ))
    environment = meta.get("environment") or {}
    if environment:
        section.blocks.append(Table("Environment", ["item", "version or value"],
                                    [[key, str(value)] for key, value in environment.items()]))
    else:
        section.blocks.append(_no_data("the run recorded no environment."))
    if meta.get("suite"):
        section.blocks.append(Code("Suite file (TOML)", str(meta["suite"]), "toml"))
    return section


# ----------------------------------------------------------------- run status, failures


def _status_section(data: ReportData) -> Section:
    cells, analyses = data.cells, data.analyses
    expected = data.expected_cells()
    missing = data.missing_cells()
    n_ok = int((cells["status"] == "ok").sum())
    n_failed = int((cells["status"] != "ok").sum())
    rows = [["cells expected", len(expected) if expected else "unknown"],
            ["cells ok", n_ok], ["cells failed", n_failed],
            ["cells not run yet", len(missing)],
            ["analyses ok", int((analyses["status"] == "ok").sum())],
            ["analyses failed", int((analyses["status"] != "ok").sum())]]
    section = Section(SECTION_TITLES[1], [Table("Run status", ["count", "value"], rows)])
    if missing:
        listed = ", ".join(missing[:_MAX_LISTED_MISSING])
        more = f" and {len(missing) - _MAX_LISTED_MISSING} more" if len(missing) > _MAX_LISTED_MISSING else ""
        section.blocks.append(Paragraph(
            f"This run is incomplete: {len(missing)} cells have no result yet ({listed}{more}). "
            "Sections below use the cells that finished.", kind="note"))
    failed_cells = cells[cells["status"] != "ok"]
    if failed_cells.empty:
        section.blocks.append(Paragraph("No cell failed."))
    else:
        section.blocks.append(Table(
            "Failed cells", ["dataset", "model", "seed", "error"],
            [[data.dataset_names.get(row["dataset"], row["dataset"]), row["model"], row["seed"],
              Cell(_message(row["error"]), failed=True)]
             for _, row in failed_cells.iterrows()],
        ))
    failed_analyses = analyses[analyses["status"] != "ok"]
    names = data.dataset_names
    if failed_analyses.empty:
        section.blocks.append(Paragraph("No analysis failed."))
    else:
        section.blocks.append(Table(
            "Failed analyses", ["analysis", "dataset", "seed", "models", "error"],
            [[row["analysis"], names.get(row["dataset"], row["dataset"]), row["seed"],
              ", ".join(row["models"]), Cell(_message(row["error"]), failed=True)]
             for _, row in failed_analyses.iterrows()],
        ))
    return section


def _problems_table(data: ReportData) -> Table | None:
    if not data.problems:
        return None
    return Table("Unreadable result files (their rows are left out above)", ["result", "error"],
                 [[what, Cell(error, failed=True)] for what, error in data.problems])


# ------------------------------------------------------------------------------- scores


def _score_cell(row: pd.Series) -> Cell:
    if row["n_ok"] == 0:
        return Cell(f"failed ({row['n_failed']}/{row['n_failed']} seeds)", failed=True)
    text = format_mean_std(row["mean"], row["std"])
    if row["n_failed"]:
        text += f" ({row['n_failed']} of {row['n_ok'] + row['n_failed']} seeds failed)"
    return Cell(text, best=bool(row["best"]))


def _scores_section(data: ReportData, scores: pd.DataFrame, palette: dict) -> Section:
    section = Section(SECTION_TITLES[2])
    if scores.empty:
        section.blocks.append(_no_data("no cell has finished yet."))
        return section
    models = [m for m in palette if m in set(scores["model"])]
    order = {source: i for i, source in enumerate(data.dataset_order())}
    scores = scores.sort_values("dataset", key=lambda c: c.map(order), kind="stable")
    for task, frame in scores.groupby("task", sort=True):
        metric = frame["metric"].iloc[0]
        rows = []
        for dataset, group in frame.groupby("dataset", sort=False):
            by_model = {row["model"]: row for _, row in group.iterrows()}
            rows.append([group["dataset_name"].iloc[0]] + [
                _score_cell(by_model[m]) if m in by_model else Cell("not run")
                for m in models
            ])
        section.blocks.append(Table(
            f"{task.capitalize()}: {METRIC_LABELS.get(metric, metric)}, mean ± std over seeds",
            ["dataset", *models], rows,
            note="Bold (highlighted in HTML): the best mean on the dataset.",
        ))
    per_seed = data.cells[data.cells["status"] == "ok"].copy()
    per_seed["value"] = [
        row.get(PRIMARY_METRIC[row["task"]][0], np.nan) if row["task"] in PRIMARY_METRIC else np.nan
        for _, row in per_seed.iterrows()
    ]
    block = _figure(
        "scores", scores_figure(per_seed, scores, palette),
        alt="Primary score of every model on every dataset",
        caption="Primary metric per dataset and model: large marker = mean over seeds, "
                "whisker = ± std, small dots = individual seeds; a black edge marks the best mean.",
    )
    if block:
        section.blocks.append(block)
    section.subsections.append(_all_metrics_section(data))
    return section


def _all_metrics_section(data: ReportData) -> Section:
    """Every stored metric and the fit time, per task, mean ± std over seeds."""
    section = Section("All metrics")
    summary = _in_report_order(summarise_scores(data.cells), data)
    for task, frame in summary.groupby("task", sort=True):
        metrics = [m for m in METRIC_COLUMNS
                   if f"{m}_mean" in frame and frame[f"{m}_mean"].notna().any()]
        rows = []
        for _, row in frame.iterrows():
            rows.append([row["dataset_name"], row["model"],
                         *(format_mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in metrics),
                         format_mean_std(row["fit_seconds_mean"], row["fit_seconds_std"], 3),
                         f"{row['n_ok']}/{row['n_ok'] + row['n_failed']}"])
        section.blocks.append(Table(f"{task.capitalize()}: every metric, mean ± std over seeds",
                                    ["dataset", "model", *metrics, "fit seconds", "seeds ok"],
                                    rows))
    return section


def _ranks_section(scores: pd.DataFrame) -> Section:
    section = Section(SECTION_TITLES[3])
    ranks = average_ranks(scores)
    if ranks.empty:
        section.blocks.append(_no_data("no model has a score yet."))
        return section
    best = ranks["mean_rank"].min()
    section.blocks.append(Table(
        "Average rank across datasets (1 = best)", ["model", "role", "average rank", "datasets ranked"],
        [[row["model"], row["role"], Cell(f"{row['mean_rank']:.2f}", best=row["mean_rank"] == best),
          int(row["n_datasets"])] for _, row in ranks.iterrows()],
        note="Models are ranked on each dataset by the primary metric (RMSE for regression, "
             "accuracy for classification); equal means share their average rank.",
    ))
    return section


def _versus_section(scores: pd.DataFrame) -> Section:
    section = Section(SECTION_TITLES[4])
    totals, detail = win_tie_loss(scores)
    if totals.empty:
        section.blocks.append(_no_data("no dataset has scores of both a network (role "
                                       "'network') and a GBDT (role 'tree')."))
        return section
    section.blocks.append(Table(
        "Wins, ties and losses of each network against each GBDT",
        ["network", "GBDT", "wins", "ties", "losses", "datasets"],
        totals[["network", "tree", "wins", "ties", "losses", "n_datasets"]].values.tolist(),
        note=TIE_RULE,
    ))
    section.blocks.append(Table(
        "Per dataset", ["dataset", "network", "GBDT", "metric", "network mean", "GBDT mean",
                        "difference", "pooled std", "network"],
        [[row["dataset_name"], row["network"], row["tree"], row["metric"],
          _fmt(row["network_mean"]), _fmt(row["tree_mean"]), _fmt(row["difference"], 3),
          _fmt(row["pooled_std"], 3), Cell(row["outcome"], best=row["outcome"] == "win")]
         for _, row in detail.iterrows()],
    ))
    return section


# --------------------------------------------------------------------------- lens parts


def _irregularity_settings(data: ReportData) -> str:
    """How the stored irregularity analyses defined the irregular pool, in words."""
    rows = data.analyses[(data.analyses["analysis"] == "irregularity")
                         & (data.analyses["status"] == "ok")]
    described = sorted({
        (summary.get("method", "?"), summary.get("settings", {}).get("quantile"))
        for summary in rows["summary"]
    }, key=str)
    if not described:
        return "no finished analysis to describe"
    return "; ".join(
        f"score: {method}, irregular pool: "
        + (f"the top {100 * (1 - quantile):.0f}% of the score" if quantile else "unknown")
        for method, quantile in described
    )


def _irregularity_section(data: ReportData, palette: dict) -> Section:
    section = Section(SECTION_TITLES[5])
    section.blocks.append(Paragraph(
        "Test examples are scored by how unlike the training data they are "
        f"({_irregularity_settings(data)}); subsets with a growing proportion p of the most "
        "irregular examples are drawn repeatedly. The paper's finding: as p grows, the network "
        "loses ground to the GBDT (the gap network − GBDT grows) and its normalised kernel "
        "weight norm κ̄ rises, while the GBDT's κ̄ stays near 1."))
    section.blocks += _failed_note(data, ("irregularity", "kernel_norms"))
    curves = lens.irregularity_curves(data)
    gaps, kappa = lens.aggregate_irregularity(curves)
    gaps, kappa = _in_report_order(gaps, data, model="tree"), _in_report_order(kappa, data)
    if gaps.empty and kappa.empty:
        section.blocks.append(_no_data("no irregularity analysis has finished (it needs a "
                                       "compared network/GBDT pair with kernel norms)."))
        return section
    bands = set(gaps["band"]) | set(kappa["band"])
    band_text = ("± one standard deviation over seeds" if bands == {"seeds"}
                 else "± one standard deviation over seeds, or over the random subsets where "
                      "only one seed is available")
    block = _figure(
        "irregularity", irregularity_figure(gaps, kappa, palette),
        alt="Metric gap and mean kappa-bar against the proportion of irregular test examples",
        caption=f"Top: metric gap network − GBDT (above 0: the network is worse), drawn in "
                f"the GBDT's colour. Bottom: "
                f"each model's mean κ̄ on the subset (dotted line: the training mean, 1). "
                f"Lines: mean over seeds; bands: {band_text}.",
    )
    if block:
        section.blocks.append(block)
    table = _in_report_order(lens.irregularity_table(data), data, model="tree")
    if not table.empty:
        section.blocks.append(Table(
            "Effect sizes (mean ± std over seeds)",
            ["dataset", "pair", "metric", "gap at p=0", "gap at p=1", "relative increase at p=1",
             "network κ̄ p=0 → 1", "GBDT κ̄ p=0 → 1", "Spearman ρ(score, κ̄) network / GBDT",
             "seeds"],
            [[row["dataset_name"], f"{row['network']} vs {row['tree']}", row["metric"],
              format_mean_std(row["gap_p0_mean"], row["gap_p0_std"], 3),
              format_mean_std(row["gap_p1_mean"], row["gap_p1_std"], 3),
              format_mean_std(row["relative_increase_p1_mean"], row["relative_increase_p1_std"], 3),
              f"{_fmt(row['network_kappa_bar_p0_mean'], 3)} → {_fmt(row['network_kappa_bar_p1_mean'], 3)}",
              f"{_fmt(row['tree_kappa_bar_p0_mean'], 3)} → {_fmt(row['tree_kappa_bar_p1_mean'], 3)}",
              f"{_fmt(row['network_spearman_score_kappa_mean'], 2)} / "
              f"{_fmt(row['tree_spearman_score_kappa_mean'], 2)}",
              row["n_seeds"]]
             for _, row in table.iterrows()],
            note="Relative increase = (gap(p) − gap(0)) / |gap(0)|. Spearman ρ: rank "
                 "correlation between the irregularity score and κ̄ over all evaluated test "
                 "examples, averaged over seeds.",
        ))
    return section


def _kernel_norm_section(data: ReportData, palette: dict) -> Section:
    section = Section(SECTION_TITLES[6])
    section.blocks += _failed_note(data, ("kernel_norms",))
    norms = _in_report_order(lens.kernel_norm_frame(data), data)
    if norms.empty:
        section.blocks.append(_no_data("no kernel norms are stored (no lens model finished "
                                       "the kernel_norms analysis)."))
        return section
    block = _figure(
        "kernel_norms", kernel_norm_figure(norms, palette),
        alt="Distributions of kappa-bar on training and test examples per model",
        caption="κ̄(x) = max over checkpoints of the kernel weight norm, divided by its mean "
                "over the training examples. Boxes: quartiles; whiskers: 5th–95th percentile; "
                "dots: examples beyond. Pooled over seeds; light boxes are training examples, "
                "full-colour boxes test examples.",
    )
    if block:
        section.blocks.append(block)
    table = lens.kernel_norm_table(norms)
    section.blocks.append(Table(
        "κ̄ on test examples against the training range (mean over seeds)",
        ["dataset", "model", "test mean", "test max", "training max",
         "test share above training max", "seeds"],
        [[row["dataset_name"], row["model"], _fmt(row["test_mean"], 3), _fmt(row["test_max"], 3),
          _fmt(row["train_max"], 3), _fmt(row["share_above_train_max"], 3), row["n_seeds"]]
         for _, row in table.iterrows()],
    ))
    return section


def _effective_parameters_section(data: ReportData, palette: dict) -> Section:
    section = Section(SECTION_TITLES[7])
    section.blocks += _failed_note(data, ("effective_parameters",))
    frame = _in_report_order(lens.effective_parameter_frame(data), data)
    if frame.empty:
        section.blocks.append(_no_data("no effective-parameters analysis has finished (it is "
                                       "defined for squared loss, so regression datasets only)."))
        return section
    block = _figure(
        "effective_parameters", effective_parameters_figure(frame, palette),
        alt="Effective parameters on training and test data per model",
        caption="p_E = (n/|E|) Σ_{x∈E} ‖s(x)‖², s the linear-smoother weights; light bars: "
                "training data, full-colour bars: test data; whiskers ± std and dots over "
                "seeds. A gap between the two measures how differently the model treats unseen "
                "points.",
    )
    if block:
        section.blocks.append(block)
    grouped = frame.groupby(["dataset", "dataset_name", "model"], sort=False)
    section.blocks.append(Table(
        "Effective parameters (mean ± std over seeds)",
        ["dataset", "model", "p on training data", "p on test data", "training examples", "seeds"],
        [[name, model, format_mean_std(g["p_train"].mean(), g["p_train"].std(), 3),
          format_mean_std(g["p_test"].mean(), g["p_test"].std(), 3),
          _fmt(g["n_train"].mean()), len(g)]
         for (_, name, model), g in grouped],
    ))
    return section


def _fidelity_section(data: ReportData, palette: dict) -> Section:
    section = Section(SECTION_TITLES[8])
    section.blocks += _failed_note(data, ("fidelity",))
    frame = _in_report_order(lens.fidelity_frame(data), data)
    if frame.empty:
        section.blocks.append(_no_data("no fidelity analysis has finished (it needs a "
                                       "telescoping network)."))
        return section
    block = _figure(
        "fidelity", fidelity_figure(frame, palette),
        alt="Relative error of the telescoping approximations per dataset",
        caption="Relative error mean|f̃(x) − f_T(x)| / mean|f_T(x) − f_0(x)| on evaluated test "
                "examples of the first-order and trapezoid telescoping models and of the model "
                "linearised at initialisation. Large markers: geometric mean over seeds; small "
                "dots: seeds.",
    )
    if block:
        section.blocks.append(block)
    grouped = frame.groupby(["dataset", "dataset_name", "model"], sort=False)
    section.blocks.append(Table(
        "Telescoping fidelity (relative error, mean ± std over seeds; lower is better)",
        ["dataset", "network", *lens.FIDELITY_KINDS.values(), "seeds"],
        [[name, model, *(format_mean_std(g[k].mean(), g[k].std(), 3) for k in lens.FIDELITY_KINDS),
          len(g)] for (_, name, model), g in grouped],
    ))
    return section


def _contributions_section(data: ReportData) -> Section:
    section = Section(SECTION_TITLES[9])
    section.blocks.append(Paragraph(
        "For the first evaluated test examples, the five training examples with the largest "
        "|contribution| C(x, i) to each model's prediction, network and GBDT side by side "
        "(rows are dataset row numbers, so the same training example can be recognised in "
        "both columns). Predictions are raw model outputs with the initial prediction f_0 in "
        "brackets: for classification the logit of the output shown (the predicted class "
        "when there are several), and a network's regression output is on its standardised "
        "target scale, so compare ranks and signs across models rather than magnitudes."))
    tables = lens.top_contribution_tables(data)
    if not tables:
        section.blocks.append(_no_data("no network/GBDT pair has stored top contributions for "
                                       "a common seed."))
        return section
    for entry in tables:
        frame, network, tree = entry["frame"], entry["network"], entry["tree"]
        classification = entry["task"] == "classification"
        rows, n_shared = [], 0
        for eval_row, group in frame.groupby("eval_row", sort=False):
            # Training rows among both models' top contributors for this test row.
            shared = set(group["network_train_row"].dropna()) & set(group["tree_train_row"].dropna())
            n_shared += len(shared)
            for position, (_, row) in enumerate(group.iterrows()):
                first = position == 0
                rows.append([
                    int(eval_row) if first else "", int(row["rank"]),
                    _prediction(row, "network", classification) if first else "",
                    Cell(_int_or_dash(row.get("network_train_row")),
                         best=row.get("network_train_row") in shared),
                    _fmt(row.get("network_contribution"), 3),
                    _prediction(row, "tree", classification) if first else "",
                    Cell(_int_or_dash(row.get("tree_train_row")),
                         best=row.get("tree_train_row") in shared),
                    _fmt(row.get("tree_contribution"), 3),
                ])
        section.blocks.append(Table(
            f"{entry['dataset_name']} (seed {entry['seed']}): {network} vs {tree}",
            ["test row", "rank", f"{network} prediction (offset)", f"{network} training row",
             f"{network} contribution", f"{tree} prediction (offset)", f"{tree} training row",
             f"{tree} contribution"],
            rows,
            note=f"Bold: a training row among the top contributors of both models for the same "
                 f"test row ({n_shared} such pairs in this table).",
        ))
    return section


def _int_or_dash(value) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return "—"


def _prediction(row: pd.Series, role: str, classification: bool) -> str:
    prediction, offset = row.get(f"{role}_prediction"), row.get(f"{role}_offset")
    output = row.get(f"{role}_output")
    text = f"{_fmt(prediction, 3)} ({_fmt(offset, 3)})"
    if classification and output is not None and np.isfinite(output):
        text = f"output {int(output)}: {text}"
    return text


# ------------------------------------------------------------------------------ together


def _guarded(title: str, build, *args) -> Section:
    """Build one section; if the stored data trips it up, the section says so instead of
    taking the whole report (written at the end of a long run) down with it."""
    try:
        return build(*args)
    except Exception as exc:  # any failure here is confined to this one section
        logger.warning("report section %r could not be built", title, exc_info=True)
        return Section(title, [Paragraph(
            f"This section could not be built from the stored results: "
            f"{type(exc).__name__}: {exc}", kind="note")])


def build_sections(data: ReportData) -> tuple[str, str, list[Section]]:
    """The report's title, subtitle and sections for ``data``."""
    palette = model_palette(data.models)
    scores = _in_report_order(primary_scores(data.cells), data)
    builders = {
        SECTION_TITLES[0]: (_suite_section, data),
        SECTION_TITLES[2]: (_scores_section, data, scores, palette),
        SECTION_TITLES[3]: (_ranks_section, scores),
        SECTION_TITLES[4]: (_versus_section, scores),
        SECTION_TITLES[5]: (_irregularity_section, data, palette),
        SECTION_TITLES[6]: (_kernel_norm_section, data, palette),
        SECTION_TITLES[7]: (_effective_parameters_section, data, palette),
        SECTION_TITLES[8]: (_fidelity_section, data, palette),
        SECTION_TITLES[9]: (_contributions_section, data),
    }
    built = {title: _guarded(title, *builder) for title, builder in builders.items()}
    # The status section is built last so that it lists every unreadable file found above.
    status = _guarded(SECTION_TITLES[1], _status_section, data)
    problems = _problems_table(data)
    if problems is not None:
        status.blocks.append(problems)
    built[SECTION_TITLES[1]] = status
    sections = [built[title] for title in SECTION_TITLES]
    name = data.meta.get("suite_name") or data.directory.name
    # The newest result's time rather than the clock: the same results give the same report.
    finished = [t for t in [*data.cells["finished_at"], *data.analyses["finished_at"]]
                if isinstance(t, str)]
    as_of = f" Latest result recorded {max(finished)}." if finished else ""
    subtitle = (f"Networks versus gradient-boosted trees through the telescoping lens. "
                f"Results directory: {data.directory}.{as_of}")
    return f"tabscope report: {name}", subtitle, sections
