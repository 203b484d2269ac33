"""Default hyperparameter search spaces of the registered models, for tuning studies.

A search space maps an estimator parameter to one distribution, written as a suite writes
it (``[models.NAME.search]``)::

    learning_rate = {low = 1e-4, high = 1e-2, log = true}   # float: low, high are floats
    max_depth = {low = 1, high = 11}                         # int: low, high are integers
    batch_size = {choices = [128, 256, 512]}                 # categorical

A suite's entries replace the default entry of the same parameter; the others stay.

Sources
-------
- ``xgboost``: Grinsztajn, Oyallon and Varoquaux (2022), "Why do tree-based models still
  outperform deep learning on tabular data?", appendix A.2 (their
  ``src/configs/model_configs/xgb_config.py``, itself from Hyperopt-sklearn): max_depth
  1..11, learning_rate log-uniform [1e-5, 0.7], gamma log [1e-8, 7], min_child_weight log
  [1, 100], subsample, colsample_bytree, colsample_bylevel uniform [0.5, 1], reg_alpha log
  [1e-8, 100], reg_lambda log [1, 4]. Their 1,000 rounds with early stopping become the
  registry's rounds with early stopping on the validation part.
- ``sklearn-hgb``: the same paper's ``hgbt_config.py`` (Hyperopt-sklearn), with its normal
  distributions replaced by the uniform ranges covering their bulk: learning_rate log
  [1e-3, 1] (log-normal around 0.01, sigma log 10), max_leaf_nodes 16..46 (normal 31 +- 5
  sd x 3), max_depth 2..4 or unlimited (their choices), min_samples_leaf 14..26.
- ``sklearn-gb``: as ``sklearn-hgb`` for the shared parameters, with subsample [0.5, 1]
  (their ``gbt_config.py``).
- ``lightgbm``: not in that benchmark; the XGBoost ranges carried to LightGBM's names
  (num_leaves log [2, 256] standing in for depth 1..8), tabscope's choice.
- ``mlp``: the paper's MLP space (``mlp_config.py``, after Gorishniy et al. 2021) on the
  parameters tabscope's MLP has: learning_rate log [1e-5, 1e-2], and the learning-rate
  scheduler on or off (``lr_schedule`` constant or cosine); weight_decay log [1e-8, 1e-3]
  from Gorishniy et al.'s MLP space. Depth and width are left to the suite (a
  ``hidden_layer_sizes`` choice), since the kernel analyses' cost grows with them.
"""

from __future__ import annotations

from numbers import Integral, Real

__all__ = ["DEFAULT_SEARCH_SPACES", "check_search_space", "default_search_space", "to_distributions"]

DEFAULT_SEARCH_SPACES: dict[str, dict[str, dict]] = {
    "xgboost": {
        "max_depth": {"low": 1, "high": 11},
        "learning_rate": {"low": 1e-5, "high": 0.7, "log": True},
        "gamma": {"low": 1e-8, "high": 7.0, "log": True},
        "min_child_weight": {"low": 1.0, "high": 100.0, "log": True},
        "subsample": {"low": 0.5, "high": 1.0},
        "colsample_bytree": {"low": 0.5, "high": 1.0},
        "colsample_bylevel": {"low": 0.5, "high": 1.0},
        "reg_alpha": {"low": 1e-8, "high": 100.0, "log": True},
        "reg_lambda": {"low": 1.0, "high": 4.0, "log": True},
    },
    "lightgbm": {
        "num_leaves": {"low": 2, "high": 256, "log": True},
        "learning_rate": {"low": 1e-5, "high": 0.7, "log": True},
        "min_child_weight": {"low": 1e-3, "high": 100.0, "log": True},
        "subsample": {"low": 0.5, "high": 1.0},
        "subsample_freq": {"choices": [1]},
        "colsample_bytree": {"low": 0.5, "high": 1.0},
        "reg_alpha": {"low": 1e-8, "high": 100.0, "log": True},
        "reg_lambda": {"low": 1e-8, "high": 100.0, "log": True},
    },
    "sklearn-hgb": {
        "learning_rate": {"low": 1e-3, "high": 1.0, "log": True},
        "max_leaf_nodes": {"low": 16, "high": 46},
        "max_depth": {"choices": [None, 2, 3, 4]},
        "min_samples_leaf": {"low": 14, "high": 26},
    },
    "sklearn-gb": {
        "learning_rate": {"low": 1e-3, "high": 1.0, "log": True},
        "max_depth": {"choices": [None, 2, 3, 4]},
        "min_samples_leaf": {"low": 14, "high": 26},
        "subsample": {"low": 0.5, "high": 1.0},
    },
    "mlp": {
        "learning_rate": {"low": 1e-5, "high": 1e-2, "log": True},
        "weight_decay": {"low": 1e-8, "high": 1e-3, "log": True},
        "lr_schedule": {"choices": ["constant", "cosine"]},
    },
}


def default_search_space(model: str) -> dict[str, dict]:
    """The default search space of registered model ``model`` ({} for plug-ins)."""
    return {name: dict(spec) for name, spec in DEFAULT_SEARCH_SPACES.get(model, {}).items()}


def _is_number(value, kind) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def check_search_space(space: dict, where: str) -> dict[str, dict]:
    """Validate a search space written as in the module docstring; ValueError names the key.

    TOML cannot write ``None``: in a suite's ``choices`` the string ``"none"`` stands for it.
    """
    if not isinstance(space, dict):
        raise ValueError(f"{where} must be a table of parameter distributions, got {space!r}")
    checked = {}
    for name, spec in space.items():
        key = f"{where}.{name}"
        if not isinstance(spec, dict):
            raise ValueError(f"{key} must be a table such as {{low = 1e-4, high = 1e-2, log = "
                             f"true}} or {{choices = [...]}}, got {spec!r}")
        if "choices" in spec:
            unknown = sorted(set(spec) - {"choices"})
            choices = spec["choices"]
            if unknown:
                raise ValueError(f"unknown key {unknown[0]!r} in {key}: a categorical "
                                 "distribution has only 'choices'")
            if not isinstance(choices, list | tuple) or not choices:
                raise ValueError(f"{key}.choices must be a non-empty list, got {choices!r}")
            checked[name] = {"choices": [None if c == "none" else c for c in choices]}
            continue
        unknown = sorted(set(spec) - {"low", "high", "log"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} in {key}; allowed keys: "
                             "['high', 'log', 'low'] or ['choices']")
        low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
        if not (_is_number(low, Real) and _is_number(high, Real)):
            raise ValueError(f"{key} needs numbers low and high, got low={low!r}, high={high!r}")
        if not low < high:
            raise ValueError(f"{key}: low must be below high, got low={low!r}, high={high!r}")
        if not isinstance(log, bool):
            raise ValueError(f"{key}.log must be true or false, got {log!r}")
        if log and low <= 0:
            raise ValueError(f"{key}: a log distribution needs low > 0, got low={low!r}")
        checked[name] = {"low": low, "high": high, "log": log}
    return checked


def to_distributions(space: dict[str, dict]) -> dict:
    """Optuna distributions of a checked search space (integers when low and high are)."""
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    distributions = {}
    for name, spec in sorted(space.items()):
        if "choices" in spec:
            distributions[name] = CategoricalDistribution(list(spec["choices"]))
        elif _is_number(spec["low"], Integral) and _is_number(spec["high"], Integral):
            distributions[name] = IntDistribution(spec["low"], spec["high"], log=spec.get("log", False))
        else:
            distributions[name] = FloatDistribution(float(spec["low"]), float(spec["high"]),
                                                    log=spec.get("log", False))
    return distributions
