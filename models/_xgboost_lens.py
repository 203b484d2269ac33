"""XGBoost boosters (``XGBRegressor``, ``XGBClassifier``; ``gbtree``) seen as tree kernels.

Every setting is read back from the trained booster's own configuration
(``Booster.save_config``), so aliases and library defaults are resolved the way XGBoost
resolved them. Leaf values and tree/class layout come from the JSON model; leaf assignments
from ``apply`` (``pred_leaf``), which honours missing values, categorical splits and
early stopping's ``best_iteration`` exactly as ``predict`` does.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ._booster_adapter import BoosterAdapter, BoosterStructure, UnsupportedBoosterError

__all__ = ["XGBoostAdapter", "is_xgboost_model"]

_OBJECTIVES = {
    "reg:squarederror": "squared_error",
    "binary:logistic": "log_loss",
    "binary:logitraw": "log_loss",
    "multi:softprob": "log_loss",
    "multi:softmax": "log_loss",
}

# XGBoost clamps hessians of the logistic and softmax objectives at this value (kRtEps).
_HESSIAN_FLOOR = 1e-16


def is_xgboost_model(model: Any) -> bool:
    """Whether ``model`` is an XGBoost scikit-learn estimator."""
    return type(model).__module__.split(".")[0] == "xgboost"


def _unsupported(setting: str, why: str) -> UnsupportedBoosterError:
    return UnsupportedBoosterError(f"XGBoost {setting} is not supported by TreeLens: {why}")


def _float_list(text: str) -> np.ndarray:
    """Parse XGBoost's ``"[5E-1,2E-1]"`` (or ``"5E-1"``) vector strings."""
    return np.array([float(v) for v in text.strip("[]").split(",") if v], dtype=np.float64)


def check_config(config: dict) -> str:
    """Raise ValueError naming the first setting that breaks the kernel identity.

    Parameters
    ----------
    config : dict
        ``json.loads(booster.save_config())``.

    Returns
    -------
    objective : str
        The (supported) objective name.
    """
    learner = config["learner"]
    booster = learner["learner_train_param"]["booster"]
    if booster != "gbtree":
        raise _unsupported(
            f"booster={booster!r}",
            "only 'gbtree' leaves are Newton steps on all rows (dart rescales trees, "
            "gblinear has no trees)",
        )
    objective = learner["objective"]["name"]
    if objective not in _OBJECTIVES:
        raise _unsupported(
            f"objective={objective!r}",
            f"supported objectives are {sorted(_OBJECTIVES)}",
        )
    strategy = learner["learner_train_param"].get("multi_strategy", "one_output_per_tree")
    if strategy != "one_output_per_tree":
        raise _unsupported(
            f"multi_strategy={strategy!r}", "only one tree per output and round is supported"
        )
    gradient_booster = learner["gradient_booster"]
    parallel = int(gradient_booster["gbtree_model_param"]["num_parallel_tree"])
    if parallel != 1:
        raise _unsupported(
            f"num_parallel_tree={parallel}",
            "boosted random forests average trees grown on resampled rows",
        )
    process = gradient_booster["gbtree_train_param"].get("process_type", "default")
    if process != "default":
        raise _unsupported(
            f"process_type={process!r}", "refreshed or updated trees are not Newton steps"
        )
    params = gradient_booster["tree_train_param"]
    if float(params["subsample"]) < 1.0:
        raise _unsupported(
            f"subsample={float(params['subsample']):g}",
            "the rows each tree saw are not recorded (row subsampling hides S_t)",
        )
    if float(params["reg_alpha"]) > 0.0:
        raise _unsupported(
            f"reg_alpha={float(params['reg_alpha']):g}",
            "L1 leaf regularisation makes leaf values non-linear in the gradients",
        )
    if float(params["max_delta_step"]) > 0.0:
        raise _unsupported(
            f"max_delta_step={float(params['max_delta_step']):g}",
            "clipped leaf values are non-linear in the gradients",
        )
    constraints = params.get("monotone_constraints", "()")
    if any(float(c) != 0.0 for c in constraints.strip("()[]").split(",") if c.strip()):
        raise _unsupported(
            f"monotone_constraints={constraints}",
            "monotone constraints clip leaf values (non-linear in the gradients)",
        )
    loss_param = learner["objective"].get("reg_loss_param", {})
    if objective.startswith("binary:") and float(loss_param.get("scale_pos_weight", 1)) != 1:
        raise _unsupported(
            f"scale_pos_weight={float(loss_param['scale_pos_weight']):g}",
            "it reweights the examples' gradients; reweighted training is not supported",
        )
    return objective


class XGBoostAdapter(BoosterAdapter):
    """A fitted ``XGBRegressor`` or ``XGBClassifier`` (``gbtree``).

    Parameters
    ----------
    model : xgboost.XGBModel
        The fitted estimator.
    target : ndarray of shape (n,), optional
        Its training targets; XGBoost keeps its initial score (``base_score``) in the model,
        so they are not needed.

    Raises
    ------
    ValueError
        If a setting breaks the kernel identity (see :func:`check_config`).
    """

    def __init__(self, model: Any, target: np.ndarray | None = None):
        booster = model.get_booster()
        config = json.loads(booster.save_config())
        objective = check_config(config)
        learner = config["learner"]
        model_json = json.loads(bytes(booster.save_raw("json")))
        trees_json = model_json["learner"]["gradient_booster"]["model"]
        n_outputs = max(1, int(learner["learner_model_param"]["num_class"]))
        try:
            n_rounds = int(model.best_iteration) + 1
        except AttributeError:
            n_rounds = int(booster.num_boosted_rounds())
        indptr = np.asarray(trees_json["iteration_indptr"], dtype=np.int64)
        n_units = int(indptr[n_rounds])
        if n_units != n_rounds * n_outputs:
            raise _unsupported(
                "tree layout",
                f"expected {n_outputs} trees per round, found {n_units // max(n_rounds, 1)}",
            )
        tree_info = np.asarray(trees_json["tree_info"][:n_units])
        if not np.array_equal(tree_info, np.arange(n_units) % n_outputs):
            raise _unsupported("tree layout", "trees are not ordered output by output")

        node_values, sizes = [], []
        for tree in trees_json["trees"][:n_units]:
            values = np.asarray(tree["split_conditions"], dtype=np.float64)
            internal = np.asarray(tree["left_children"]) != -1
            values[internal] = np.nan
            node_values.append(values)
            sizes.append(len(values))
        params = learner["gradient_booster"]["tree_train_param"]
        eta = float(np.float32(params["eta"]))
        reg_lambda = float(np.float32(params["reg_lambda"]))
        values = np.concatenate(node_values) if node_values else np.zeros(0)

        base_score = _float_list(learner["learner_model_param"]["base_score"])
        if objective == "binary:logistic":
            # base_score is a probability; the margin is its logit.
            base_score = np.log(base_score / (1.0 - base_score))
        if base_score.size == 1:
            base_score = np.repeat(base_score, n_outputs)

        self.model = model
        self.n_units = n_units
        self.base_margin = base_score
        self.structure = BoosterStructure(
            library="xgboost",
            loss=_OBJECTIVES[objective],
            n_outputs=n_outputs,
            n_rounds=n_rounds,
            node_offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            node_values=values,
            node_l2=np.full(values.shape, reg_lambda),
            unit_scale=np.full(n_units, eta),
            hessian_factor=2.0 if n_outputs > 1 else 1.0,
            hessian_floor=_HESSIAN_FLOOR if objective != "reg:squarederror" else 0.0,
            # XGBoost keeps its training predictions and gradients in float32.
            margin_dtype=np.float32,
            metadata={
                "estimator": type(model).__name__,
                "objective": objective,
                "learning_rate": eta,
                "reg_lambda": reg_lambda,
                "base_margin": base_score.tolist(),
            },
        )

    def leaf_nodes(self, X: Any) -> np.ndarray:
        leaves = np.asarray(self.model.apply(X)).reshape(-1, self.n_units)
        return leaves.astype(np.int64) + self.structure.node_offsets[:-1]

    def initial_prediction(self, X: Any) -> np.ndarray:
        n_rows = _n_rows(X)
        return np.tile(self.base_margin, (n_rows, 1))

    def raw_prediction(self, X: Any) -> np.ndarray:
        return np.asarray(self.model.predict(X, output_margin=True), dtype=np.float64)


def _n_rows(X: Any) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)
