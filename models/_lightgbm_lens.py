"""LightGBM boosters (``LGBMRegressor``, ``LGBMClassifier``; ``gbdt``) seen as tree kernels.

Settings are read from the parameter block LightGBM writes into its own model string, so
aliases (``subsample``/``bagging_fraction``, ``reg_alpha``/``lambda_l1``, ...) are resolved
the way LightGBM resolved them. Leaf values come from ``dump_model``, leaf assignments from
``predict(pred_leaf=True)``, which routes missing values and categorical splits itself.

Two LightGBM conventions matter for the kernel:

- ``boost_from_average`` adds the initial score (mean label, log-odds of the positive rate,
  or log class priors for softmax) to the leaves of the first round's trees instead of
  keeping it apart. The lens recomputes that score from the training labels, takes it out
  of the first trees' leaves and reports it as the offset.
- A many-vs-many categorical split computes its children's outputs with
  ``lambda_l2 + cat_l2`` in the denominator; leaves made by such a split carry that larger
  regularisation.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ._booster_adapter import BoosterAdapter, BoosterStructure, UnsupportedBoosterError

__all__ = ["LightGBMAdapter", "model_parameters"]

_OBJECTIVES = {"regression": "squared_error", "binary": "log_loss", "multiclass": "log_loss"}

# LightGBM's kEpsilon: initial scores below it are not added, probabilities are clipped to it.
_EPSILON = 1e-15

_PARAMETER_LINE = re.compile(r"^\[([A-Za-z0-9_]+): ?(.*)\]$")


def model_parameters(model_string: str) -> dict[str, str]:
    """The resolved training parameters stored in a LightGBM model string."""
    start = model_string.find("\nparameters:")
    stop = model_string.find("end of parameters", start)
    if start < 0 or stop < 0:
        raise ValueError("the LightGBM model string has no parameter block")
    parameters = {}
    for line in model_string[start:stop].splitlines():
        match = _PARAMETER_LINE.match(line.strip())
        if match:
            parameters[match.group(1)] = match.group(2)
    return parameters


def _unsupported(setting: str, why: str) -> UnsupportedBoosterError:
    return UnsupportedBoosterError(f"LightGBM {setting} is not supported by TreeLens: {why}")


def _number(parameters: dict[str, str], name: str, default: float = 0.0) -> float:
    value = parameters.get(name, "")
    return float(value) if value.strip() else default


def check_parameters(parameters: dict[str, str], model: Any) -> str:
    """Raise ValueError naming the first setting that breaks the kernel identity.

    Returns
    -------
    objective : {"regression", "binary", "multiclass"}
    """
    boosting = parameters.get("boosting", "gbdt")
    if boosting != "gbdt":
        raise _unsupported(
            f"boosting_type={boosting!r}",
            "only 'gbdt' leaves are Newton steps on all rows (dart rescales trees, rf "
            "averages bagged trees, goss reweights rows)",
        )
    strategy = parameters.get("data_sample_strategy", "bagging")
    if strategy != "bagging":
        raise _unsupported(
            f"data_sample_strategy={strategy!r}",
            "gradient-based one-side sampling reweights and drops rows per tree",
        )
    if _number(parameters, "bagging_freq") > 0:
        for name in ("bagging_fraction", "pos_bagging_fraction", "neg_bagging_fraction"):
            if _number(parameters, name, 1.0) < 1.0:
                raise _unsupported(
                    f"bagging ({name}={_number(parameters, name):g} with "
                    f"bagging_freq={_number(parameters, 'bagging_freq'):g}, "
                    "alias subsample/subsample_freq)",
                    "the rows each tree saw are not recorded (bagging hides S_t)",
                )
    objective = parameters.get("objective", "")
    if objective not in _OBJECTIVES:
        raise _unsupported(
            f"objective={objective!r}", f"supported objectives are {sorted(_OBJECTIVES)}"
        )
    checks = (
        ("lambda_l1", "reg_alpha (lambda_l1)", "L1 leaf regularisation makes leaf values "
         "non-linear in the gradients"),
        ("max_delta_step", "max_delta_step", "clipped leaf values are non-linear in the "
         "gradients"),
        ("path_smooth", "path_smooth", "smoothed leaves mix in their parents' outputs"),
    )
    for name, label, why in checks:
        if _number(parameters, name) > 0.0:
            raise _unsupported(f"{label}={_number(parameters, name):g}", why)
    if _number(parameters, "linear_tree") != 0:
        raise _unsupported("linear_tree=True", "linear leaves are not constant Newton steps")
    if _number(parameters, "use_quantized_grad") != 0:
        raise _unsupported(
            "use_quantized_grad=True", "quantised gradients are not the loss's gradients"
        )
    constraints = parameters.get("monotone_constraints", "")
    if any(float(c) != 0 for c in re.split(r"[,\s]+", constraints.strip()) if c):
        raise _unsupported(
            f"monotone_constraints=[{constraints}]",
            "monotone constraints clip leaf values (non-linear in the gradients)",
        )
    if objective == "regression" and _number(parameters, "reg_sqrt") != 0:
        raise _unsupported("reg_sqrt=True", "the trees fit a transformed label")
    if objective == "binary":
        if _number(parameters, "is_unbalance") != 0:
            raise _unsupported(
                "is_unbalance=True", "it reweights the examples; weighted training is not supported"
            )
        if _number(parameters, "scale_pos_weight", 1.0) != 1.0:
            raise _unsupported(
                f"scale_pos_weight={_number(parameters, 'scale_pos_weight'):g}",
                "it reweights the examples; weighted training is not supported",
            )
        if _number(parameters, "sigmoid", 1.0) != 1.0:
            raise _unsupported(
                f"sigmoid={_number(parameters, 'sigmoid'):g}",
                "the lens supports the standard logistic link only",
            )
    class_weight = getattr(model, "class_weight", None)
    if class_weight is not None:
        raise _unsupported(
            f"class_weight={class_weight!r}",
            "it reweights the examples; weighted training is not supported",
        )
    return objective


def initial_scores(objective: str, target: np.ndarray, n_outputs: int) -> np.ndarray:
    """The score ``boost_from_average`` starts from, computed as LightGBM does.

    LightGBM stores labels as float32 and sums them in double precision.
    """
    if objective == "regression":
        scores = np.array([np.mean(target.astype(np.float32).astype(np.float64))])
    elif objective == "binary":
        positive = float(np.mean(target > 0))
        positive = min(max(positive, _EPSILON), 1.0 - _EPSILON)
        scores = np.array([np.log(positive / (1.0 - positive))])
    else:
        priors = np.bincount(target, minlength=n_outputs) / len(target)
        scores = np.log(np.maximum(priors, _EPSILON))
    # LightGBM skips an initial score too small to matter.
    return np.where(np.abs(scores) > _EPSILON, scores, 0.0)


def _tree_leaves(
    tree: dict, reg_lambda: float, many_vs_many_l2: float, many_vs_many_features: set
) -> tuple[np.ndarray, np.ndarray]:
    """Leaf values and Newton-denominator L2 of one dumped tree, by leaf index."""
    structure = tree["tree_structure"]
    n_leaves = int(tree["num_leaves"])
    values = np.full(n_leaves, np.nan)
    l2 = np.full(n_leaves, reg_lambda)
    stack = [(structure, reg_lambda)]
    while stack:
        node, node_l2 = stack.pop()
        if "leaf_index" in node or "split_index" not in node:
            index = int(node.get("leaf_index", 0))
            values[index] = float(node["leaf_value"])
            l2[index] = node_l2
            continue
        child_l2 = reg_lambda
        if node["decision_type"] == "==" and node["split_feature"] in many_vs_many_features:
            child_l2 = reg_lambda + many_vs_many_l2
        stack.append((node["left_child"], child_l2))
        stack.append((node["right_child"], child_l2))
    return values, l2


class LightGBMAdapter(BoosterAdapter):
    """A fitted ``LGBMRegressor`` or ``LGBMClassifier`` (``gbdt``).

    Parameters
    ----------
    model : lightgbm.LGBMModel
        The fitted estimator.
    target : ndarray of shape (n,)
        Its training targets (float) or class codes; they fix the initial score that
        ``boost_from_average`` folded into the first round's leaves.

    Raises
    ------
    ValueError
        If a setting breaks the kernel identity (see :func:`check_parameters`).
    """

    def __init__(self, model: Any, target: np.ndarray):
        booster = model.booster_
        n_rounds = booster.best_iteration if booster.best_iteration > 0 else None
        n_rounds = n_rounds or booster.current_iteration()
        parameters = model_parameters(booster.model_to_string(num_iteration=n_rounds))
        objective = check_parameters(parameters, model)
        dump = booster.dump_model(num_iteration=n_rounds)
        n_outputs = int(dump["num_tree_per_iteration"])
        n_units = n_rounds * n_outputs
        trees = dump["tree_info"][:n_units]
        if len(trees) != n_units:
            raise _unsupported("tree layout", f"expected {n_units} trees, found {len(trees)}")

        reg_lambda = _number(parameters, "lambda_l2")
        many_vs_many = _many_vs_many_features(dump, parameters)
        cat_l2 = _number(parameters, "cat_l2")
        values, l2, sizes = [], [], []
        for tree in trees:
            tree_values, tree_l2 = _tree_leaves(tree, reg_lambda, cat_l2, many_vs_many)
            values.append(tree_values)
            l2.append(tree_l2)
            sizes.append(len(tree_values))
        node_values = np.concatenate(values)
        node_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

        offset = np.zeros(n_outputs)
        if _number(parameters, "boost_from_average") != 0:
            offset = initial_scores(objective, np.asarray(target), n_outputs)
            for k in range(min(n_outputs, n_units)):
                node_values[node_offsets[k]:node_offsets[k + 1]] -= offset[k]
        learning_rate = _number(parameters, "learning_rate")
        self.model = model
        self.n_rounds = n_rounds
        self.n_units = n_units
        self.offset = offset
        self.structure = BoosterStructure(
            library="lightgbm",
            loss=_OBJECTIVES[objective],
            n_outputs=n_outputs,
            n_rounds=n_rounds,
            node_offsets=node_offsets,
            node_values=node_values,
            node_l2=np.concatenate(l2),
            unit_scale=np.full(n_units, learning_rate),
            # A tree LightGBM could not split is a constant, not a Newton step.
            unit_active=np.array([int(tree["num_leaves"]) > 1 for tree in trees], dtype=bool),
            # LightGBM's softmax hessian is K / (K - 1) p (1 - p).
            hessian_factor=n_outputs / (n_outputs - 1.0) if n_outputs > 1 else 1.0,
            metadata={
                "estimator": type(model).__name__,
                "objective": objective,
                "learning_rate": learning_rate,
                "reg_lambda": reg_lambda,
                "initial_score": offset.tolist(),
            },
        )

    def leaf_nodes(self, X: Any) -> np.ndarray:
        leaves = np.asarray(self.model.predict(X, pred_leaf=True, num_iteration=self.n_rounds))
        return leaves.reshape(-1, self.n_units).astype(np.int64) + self.structure.node_offsets[:-1]

    def initial_prediction(self, X: Any) -> np.ndarray:
        n_rows = int(X.shape[0]) if hasattr(X, "shape") else len(X)
        return np.tile(self.offset, (n_rows, 1))

    def raw_prediction(self, X: Any) -> np.ndarray:
        return np.asarray(
            self.model.predict(X, raw_score=True, num_iteration=self.n_rounds), dtype=np.float64
        )


def _many_vs_many_features(dump: dict, parameters: dict[str, str]) -> set:
    """Categorical features whose splits sort categories instead of one-hot splitting.

    LightGBM splits one-hot when the feature's bin count (its categories plus the bin
    reserved for missing and unseen ones) is at most ``max_cat_to_onehot``.
    """
    infos = dump.get("feature_infos", {})
    names = dump.get("feature_names", [])
    max_onehot = _number(parameters, "max_cat_to_onehot", 4.0)
    features = set()
    for index, name in enumerate(names):
        info = infos.get(name, {})
        categories = info.get("values") if isinstance(info, dict) else None
        if categories is None:
            continue
        n_bins = len([c for c in categories if c is not None and int(c) >= 0]) + 1
        if n_bins > max_onehot:
            features.add(index)
    return features
