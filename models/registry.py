"""Named models a suite can ask for, and plug-ins named by import path.

A registry entry knows how to build a regressor and a classifier with tabscope's defaults, which
preprocessing its inputs need (``"network"``: quantile-transformed, one-hot, imputed;
``"tree"``: raw features) and which role it plays in network-versus-tree comparisons.
Any scikit-learn estimator joins a suite through ``package.module:Class``.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator, is_classifier, is_regressor

from .fitting import FitRule, fit_with_validation, stopping_step

__all__ = [
    "ModelSpec",
    "available_models",
    "get_model_spec",
    "make_estimator",
    "resolve_model_spec",
]

TASKS = ("regression", "classification")
PREPROCESSING_KINDS = ("network", "tree")
ROLES = ("network", "tree", "other")


def _import_object(path: str) -> Any:
    """Import ``package.module:Attribute`` (or ``package.module.Attribute``)."""
    if not isinstance(path, str) or not path:
        raise TypeError(f"an import path must be a non-empty string, got {path!r}")
    if ":" in path:
        module_name, _, attribute = path.partition(":")
    else:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(
            f"import path {path!r} must look like 'package.module:Class'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} of {path!r}: {exc}") from None
    try:
        obj = module
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return obj


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named model for either task.

    Parameters
    ----------
    name : str
        Name used in suites and reports.
    regressor, classifier : str or None
        Import paths (``package.module:Class``) of the estimator classes; None when the model
        does not support that task.
    defaults : dict
        Parameters applied before the suite's own, for both tasks.
    preprocessing : {"network", "tree"}
        Feature preprocessing the estimator expects (docs/design.md §3).
    role : {"network", "tree", "other"}
        Side the model takes in network-versus-tree comparisons.
    seed_param : str or None
        Name of the estimator parameter that receives the cell's seed.
    extra_params : frozenset of str
        Parameter names the estimator accepts through ``**kwargs`` although ``get_params``
        does not list them (LightGBM's native parameters); any other unknown name is a typo.
    description : str
        One line for ``tabscope models list``.
    """

    name: str
    regressor: str | None
    classifier: str | None
    defaults: dict = field(default_factory=dict)
    preprocessing: str = "network"
    role: str = "other"
    seed_param: str | None = "random_state"
    description: str = ""
    extra_params: frozenset = frozenset()
    fit_rule: str = FitRule.PLAIN

    def __post_init__(self):
        FitRule(self.fit_rule)
        if self.preprocessing not in PREPROCESSING_KINDS:
            raise ValueError(
                f"preprocessing of model {self.name!r} must be one of {PREPROCESSING_KINDS}, "
                f"got {self.preprocessing!r}"
            )
        if self.role not in ROLES:
            raise ValueError(
                f"role of model {self.name!r} must be one of {ROLES}, got {self.role!r}"
            )
        if self.regressor is None and self.classifier is None:
            raise ValueError(f"model {self.name!r} names neither a regressor nor a classifier")

    def estimator_class(self, task: str) -> type:
        """Return the estimator class for ``task`` ("regression" or "classification")."""
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        path = self.regressor if task == "regression" else self.classifier
        if path is None:
            raise ValueError(f"model {self.name!r} has no estimator for {task}")
        cls = _import_object(path)
        if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)) and not callable(cls):
            raise TypeError(f"{path!r} is not a scikit-learn estimator class")
        return cls

    def build(
        self, task: str, params: dict | None = None, random_state: int | None = None
    ) -> BaseEstimator:
        """Instantiate the estimator for ``task`` with defaults, ``params`` and the seed."""
        cls = self.estimator_class(task)
        merged = {**self.defaults, **(params or {})}
        try:
            estimator = cls()
        except TypeError as exc:
            raise TypeError(f"model {self.name!r}: cannot instantiate {cls.__name__}: {exc}") from None
        if not hasattr(estimator, "get_params") or not hasattr(estimator, "fit"):
            raise TypeError(
                f"model {self.name!r}: {cls.__name__} is not a scikit-learn estimator "
                "(it needs fit and get_params)"
            )
        valid = estimator.get_params(deep=False)
        unknown = sorted(set(merged) - set(valid) - self.extra_params)
        if unknown:
            raise ValueError(
                f"model {self.name!r}: unknown parameter(s) {unknown} for {cls.__name__}; "
                f"valid parameters: {sorted(valid)}"
            )
        if random_state is not None and self.seed_param in valid and self.seed_param not in (params or {}):
            merged[self.seed_param] = random_state
        estimator.set_params(**merged)
        _validate_early(estimator, self.name)
        expected = is_regressor if task == "regression" else is_classifier
        if not expected(estimator):
            raise TypeError(
                f"model {self.name!r}: {cls.__name__} is not a scikit-learn "
                f"{'regressor' if task == 'regression' else 'classifier'}"
            )
        return estimator


    def fit(self, estimator: BaseEstimator, X, y, X_val=None, y_val=None,
            *, validation_callback=None) -> BaseEstimator:
        """Fit ``estimator``, stopping early on ``(X_val, y_val)`` by this model's rule.

        Without a validation part the fit is plain ``fit(X, y)``. See
        :func:`tabscope.models.fitting.fit_with_validation` for ``validation_callback``.
        """
        return fit_with_validation(self.fit_rule, estimator, X, y, X_val, y_val,
                                   validation_callback=validation_callback)

    def stopping_step(self, estimator: BaseEstimator) -> int | None:
        """The step or boosting round a fitted estimator stopped at; None for plug-ins."""
        return stopping_step(self.fit_rule, estimator)


def _validate_early(estimator: BaseEstimator, name: str) -> None:
    """Check parameter values now rather than when the first cell fits.

    scikit-learn estimators validate against ``_parameter_constraints`` and tabscope's
    networks in ``_check_parameters``; both are private hooks, used only where present.
    """
    if hasattr(estimator, "_check_parameters"):
        check = estimator._check_parameters
    elif hasattr(estimator, "_parameter_constraints"):
        check = estimator._validate_params
    else:
        return
    try:
        check()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"model {name!r}: {exc}") from None


_REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "mlp",
            fit_rule=FitRule.NETWORK,
            regressor="tabscope.models:TelescopingMLPRegressor",
            classifier="tabscope.models:TelescopingMLPClassifier",
            preprocessing="network",
            role="network",
            description="MLP (256, 256) trained with AdamW; a telescoping lens (tangent kernel)",
        ),
        ModelSpec(
            "resnet",
            regressor="tabscope.models.resnet:TelescopingResNetRegressor",
            classifier="tabscope.models.resnet:TelescopingResNetClassifier",
            preprocessing="network",
            role="network",
            description=(
                "tabular ResNet (Gorishniy et al. 2021; LayerNorm, 2 blocks of 128/256) "
                "trained with AdamW; a telescoping lens (tangent kernel)"
            ),
        ),
        ModelSpec(
            "xgboost",
            fit_rule=FitRule.XGBOOST,
            regressor="xgboost:XGBRegressor",
            classifier="xgboost:XGBClassifier",
            defaults={"n_estimators": 300, "learning_rate": 0.1, "max_depth": 6,
                      "tree_method": "hist", "n_jobs": 1},
            preprocessing="tree",
            role="tree",
            description="XGBoost gbtree (hist), 300 rounds of depth 6",
        ),
        ModelSpec(
            "lightgbm",
            fit_rule=FitRule.LIGHTGBM,
            regressor="lightgbm:LGBMRegressor",
            classifier="lightgbm:LGBMClassifier",
            defaults={"n_estimators": 300, "learning_rate": 0.1, "n_jobs": 1, "verbose": -1},
            preprocessing="tree",
            role="tree",
            description="LightGBM gbdt, 300 rounds of 31 leaves",
            extra_params=frozenset({
                "verbose", "verbosity", "deterministic", "force_row_wise", "force_col_wise",
                "max_bin", "min_data_in_leaf", "min_sum_hessian_in_leaf", "lambda_l1",
                "lambda_l2", "feature_fraction", "feature_fraction_bynode", "bagging_fraction",
                "bagging_freq", "max_delta_step", "linear_tree", "extra_trees", "path_smooth",
                "monotone_constraints", "cat_smooth", "cat_l2", "max_cat_threshold",
                "min_data_per_group", "data_sample_strategy", "boost_from_average",
            }),
        ),
        ModelSpec(
            "sklearn-hgb",
            fit_rule=FitRule.HGB,
            regressor="sklearn.ensemble:HistGradientBoostingRegressor",
            classifier="sklearn.ensemble:HistGradientBoostingClassifier",
            # No automatic early stopping (it would hold out 10% of the training rows once
            # n exceeds 10,000): a cell stops it on the split's validation part instead.
            defaults={"max_iter": 200, "early_stopping": False},
            preprocessing="tree",
            role="tree",
            description="scikit-learn HistGradientBoosting, up to 200 rounds",
        ),
        ModelSpec(
            "sklearn-gb",
            fit_rule=FitRule.GB,
            regressor="sklearn.ensemble:GradientBoostingRegressor",
            classifier="sklearn.ensemble:GradientBoostingClassifier",
            defaults={"n_estimators": 100},
            preprocessing="tree",
            role="tree",
            description="scikit-learn GradientBoosting (exact splits), 100 rounds of depth 3",
        ),
    )
}


def available_models() -> dict[str, ModelSpec]:
    """Return the registered models by name."""
    return dict(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """Return the registered model ``name``; ValueError listing the valid names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; registered models: {sorted(_REGISTRY)}, "
            "or name a plug-in as 'package.module:Class'"
        ) from None


def resolve_model_spec(
    name: str,
    *,
    estimator: str | None = None,
    regressor: str | None = None,
    classifier: str | None = None,
    preprocessing: str | None = None,
    role: str | None = None,
) -> ModelSpec:
    """Return the spec for a suite's model entry.

    ``name`` is a registry name, or a plug-in import path; ``estimator`` (both tasks) or
    ``regressor`` / ``classifier`` name plug-in classes explicitly.
    """
    plugin_paths = [p for p in (estimator, regressor, classifier) if p is not None]
    if not plugin_paths and ":" not in name:
        spec = get_model_spec(name)
        if preprocessing is None and role is None:
            return spec
        return dataclasses.replace(
            spec, preprocessing=preprocessing or spec.preprocessing, role=role or spec.role
        )
    if not plugin_paths:
        estimator = name
    if estimator is not None and (regressor is not None or classifier is not None):
        raise ValueError(
            f"model {name!r}: give either 'estimator' or 'regressor'/'classifier', not both"
        )
    regressor_path = regressor
    classifier_path = classifier
    if estimator is not None:
        cls = _import_object(estimator)
        instance = cls()
        regressor_path = estimator if is_regressor(instance) else None
        classifier_path = estimator if is_classifier(instance) else None
        if regressor_path is None and classifier_path is None:
            raise TypeError(
                f"model {name!r}: {estimator!r} is neither a scikit-learn regressor nor a classifier"
            )
    for path in (regressor_path, classifier_path):
        if path is not None:
            _import_object(path)  # fail at suite-load time, not in the middle of a run
    return ModelSpec(
        name,
        regressor_path,
        classifier_path,
        preprocessing=preprocessing or "network",
        role=role or "other",
        description=f"plug-in {estimator or regressor_path or classifier_path}",
    )


def make_estimator(
    name: str, task: str, params: dict | None = None, random_state: int | None = None
) -> BaseEstimator:
    """Build registered model ``name`` (or a plug-in path) for ``task``."""
    return resolve_model_spec(name).build(task, params, random_state)

