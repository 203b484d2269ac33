"""The boosting parallels, quantified (docs/design.md §1.10): a network and a GBDT of a
compared pair side by side on the same test points, from the frames the kernel-norms job
stores (``influence``, ``kappa_path``; see ``tabscope.bench.cells``).

(a) Agreement of the two models' per-example influence |C(x, i)| on the same test point:
Spearman ρ over training examples and the overlap of their top-k training examples, each
against chance (ρ = 0; overlap k/n for two random top-k sets). (b) How each prediction was
assembled: the share of its movement made in each tenth of the training steps or boosting
rounds. (c) κ_t over training for both, against the fraction of training steps or boosting
rounds done.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabscope.vocabulary import CellJob

from .data import ReportData
from .lens import _pairs
from .pooled_lens import row_spearman

__all__ = ["TOP_K", "assembly_shares", "influence_agreement", "kappa_paths"]

#: Size of the most-influential sets whose overlap is measured.
TOP_K = 10


def _frames(data: ReportData, name: str) -> dict[tuple[str, str, int], pd.DataFrame]:
    """``{(dataset, model, seed): frame}`` of one array of the kernel-norms rows."""
    out = {}
    for _, row in data.analyses_of(CellJob.KERNEL_NORMS).iterrows():
        if name not in data.store.array_paths(row):
            continue
        frame = data.read_array(row, name)
        if frame is not None and not frame.empty:
            out[(row["dataset"], row["models"][0], int(row["seed"]))] = frame
    return out


def influence_agreement(data: ReportData, top_k: int = TOP_K) -> pd.DataFrame:
    """Agreement of network and GBDT influence per (dataset, pair, seed), over test points.

    Returns
    -------
    agreement : pandas.DataFrame
        Columns ``dataset``, ``dataset_name``, ``network``, ``tree``, ``seed``, ``n_points``,
        ``n_train``, ``spearman`` (mean over test points of ρ between the two influence
        vectors), ``spearman_low`` / ``spearman_high`` (2.5% and 97.5% quantiles over
        points), ``overlap`` (mean share of the network's top-k among the GBDT's top-k)
        and ``chance_overlap`` (k / n, the expectation for unrelated rankings).
    """
    columns = ["dataset", "dataset_name", "network", "tree", "seed", "n_points", "n_train",
               "spearman", "spearman_low", "spearman_high", "overlap", "chance_overlap"]
    frames = _frames(data, "influence")
    names = data.dataset_names
    rows = []
    for (dataset, model, seed), network_frame in frames.items():
        for network, tree in _pairs(data):
            if network != model or (dataset, tree, seed) not in frames:
                continue
            merged = network_frame.merge(frames[(dataset, tree, seed)],
                                         on=["eval_row", "train_row"], suffixes=("_nn", "_gb"))
            # One row per test point, one column per training example.
            a = merged.pivot(index="eval_row", columns="train_row", values="influence_nn")
            b = merged.pivot(index="eval_row", columns="train_row", values="influence_gb")
            a, b = a.to_numpy(float), b.loc[a.index, a.columns].to_numpy(float)
            n_train = a.shape[1]
            usable = (np.ptp(a, axis=1) > 0) & (np.ptp(b, axis=1) > 0)
            if n_train < 3 or not usable.any():
                continue
            a, b = a[usable], b[usable]
            rhos = row_spearman(a, b)
            k = min(top_k, n_train)
            top_a = np.argsort(-a, axis=1, kind="stable")[:, :k]
            top_b = np.argsort(-b, axis=1, kind="stable")[:, :k]
            overlaps = [len(set(x) & set(y)) / k for x, y in zip(top_a, top_b)]
            rows.append({"dataset": dataset, "dataset_name": names.get(dataset, dataset),
                         "network": network, "tree": tree, "seed": seed,
                         "n_points": len(rhos), "n_train": n_train,
                         "spearman": float(np.mean(rhos)),
                         "spearman_low": float(np.quantile(rhos, 0.025)),
                         "spearman_high": float(np.quantile(rhos, 0.975)),
                         "overlap": float(np.mean(overlaps)),
                         "chance_overlap": min(top_k, n_train) / n_train})
    return pd.DataFrame(rows, columns=columns)


def kappa_paths(data: ReportData) -> pd.DataFrame:
    """κ_t over training per (dataset, model, seed), scaled by its final training mean.

    Returns
    -------
    paths : pandas.DataFrame
        Columns ``dataset``, ``dataset_name``, ``model``, ``role``, ``seed``, ``fraction``
        (of steps or rounds done), ``eval_mean_kappa`` and ``relative`` (the evaluation
        mean of κ_t over the training mean of κ_t at the same checkpoint).
    """
    columns = ["dataset", "dataset_name", "model", "role", "seed", "fraction",
               "eval_mean_kappa", "relative"]
    names, roles = data.dataset_names, data.roles
    frames = []
    for (dataset, model, seed), frame in _frames(data, "kappa_path").items():
        frames.append(pd.DataFrame({
            "dataset": dataset, "dataset_name": names.get(dataset, dataset), "model": model,
            "role": roles.get(model, "other"), "seed": seed, "fraction": frame["fraction"],
            "eval_mean_kappa": frame["eval_mean_kappa"],
            "relative": frame["eval_mean_kappa"] / frame["train_mean_kappa"]}))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def assembly_shares(data: ReportData) -> pd.DataFrame:
    """Share of each prediction's movement made in each tenth of training, per model.

    From the ``assembly`` frames of the kernel-norms job: for each (dataset, model, seed)
    the mean over the stored test points of the share made in each tenth.

    Returns
    -------
    shares : pandas.DataFrame
        Columns ``dataset``, ``dataset_name``, ``model``, ``role``, ``seed``, ``part``
        (1..10), ``fraction`` (of steps or rounds done at the end of the part) and
        ``share`` (mean over test points; the shares of a point sum to 1).
    """
    columns = ["dataset", "dataset_name", "model", "role", "seed", "part", "fraction", "share"]
    names, roles = data.dataset_names, data.roles
    frames = []
    for (dataset, model, seed), frame in _frames(data, "assembly").items():
        mean = frame.groupby("part", sort=True).agg(fraction=("fraction", "first"),
                                                     share=("share", "mean")).reset_index()
        frames.append(mean.assign(dataset=dataset, dataset_name=names.get(dataset, dataset),
                                  model=model, role=roles.get(model, "other"), seed=seed))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
