"""The booster adapter contract: one fitted booster of a supported library, normalised.

A :class:`BoosterAdapter` (one per library, in the ``_*_lens`` modules) describes a fitted
booster as a :class:`BoosterStructure`: for every tree ("unit" ``u = t * K + k``,
round-major) its nodes, the value each leaf adds to the raw prediction and the Newton
denominator's constants, plus functions returning leaf assignments and the initial
prediction (docs/design.md §1.4). :func:`adapter_class` is the table from a booster's class
to its adapter; :class:`UnsupportedBoosterError` is what an adapter raises for a setting
that breaks the kernel identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tabscope.vocabulary import Loss, choices

__all__ = [
    "SUPPORTED_BOOSTERS",
    "BoosterAdapter",
    "BoosterStructure",
    "UnsupportedBoosterError",
    "adapter_class",
]

SUPPORTED_LOSSES = choices(Loss)

SUPPORTED_BOOSTERS = (
    "xgboost.XGBRegressor",
    "xgboost.XGBClassifier",
    "lightgbm.LGBMRegressor",
    "lightgbm.LGBMClassifier",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.ensemble.GradientBoostingClassifier",
)


class UnsupportedBoosterError(ValueError):
    """A booster, or one of its settings, that the tree lens cannot decompose exactly."""


@dataclass(frozen=True, eq=False)
class BoosterStructure:
    """The trees of a fitted booster, in the form the kernel needs.

    Trees ("units") are ordered round-major: unit ``u = t * n_outputs + k`` is the tree of
    round ``t`` for output ``k``. Node ids are global: unit ``u`` owns the ids
    ``node_offsets[u]:node_offsets[u + 1]``.

    Attributes
    ----------
    library : str
        Name of the boosting library.
    loss : {"squared_error", "log_loss"}
        Training loss.
    n_outputs : int
        Outputs ``K`` of the raw prediction (1 for regression and binary classification).
    n_rounds : int
        Boosting rounds ``T``.
    node_offsets : ndarray of shape (T * K + 1,)
        Start of each unit's node ids.
    node_values : ndarray of shape (n_nodes,)
        Value a leaf adds to the raw prediction (shrinkage included, any initial score the
        library folds into the first trees removed); NaN for internal nodes.
    node_l2 : ndarray of shape (n_nodes,)
        L2 regularisation ``lambda_l`` in each leaf's Newton denominator.
    unit_scale : ndarray of shape (T * K,)
        ``s_u`` in ``v_l = -s_u G_l / (H_l + lambda_l)``: the shrinkage times any constant
        factor the library applies to the Newton step.
    hessian_factor : float
        Constant multiplying ``p (1 - p)`` in the log-loss hessian the library uses.
    hessian_floor : float
        Lower bound the library puts on each hessian (XGBoost's ``1e-16``), 0 if none.
    unit_active : ndarray of shape (T * K,), optional
        False for trees the library left constant instead of taking a Newton step (a root
        it could not split); their kernel weights are zero. All True by default.
    margin_dtype : numpy dtype, default=float64
        Precision in which the library accumulates raw predictions and computes gradients
        during training (XGBoost: float32). The replay does the same, so its gradients
        carry the library's own rounding rather than drifting from it over many rounds.
    metadata : dict
        Library-specific description, copied into each KernelView.
    """

    library: str
    loss: str
    n_outputs: int
    n_rounds: int
    node_offsets: np.ndarray
    node_values: np.ndarray
    node_l2: np.ndarray
    unit_scale: np.ndarray
    hessian_factor: float = 1.0
    hessian_floor: float = 0.0
    unit_active: np.ndarray | None = None
    margin_dtype: Any = np.float64
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.loss not in SUPPORTED_LOSSES:
            raise ValueError(f"loss must be one of {SUPPORTED_LOSSES}, got {self.loss!r}")
        n_units = self.n_rounds * self.n_outputs
        if self.node_offsets.shape != (n_units + 1,):
            raise ValueError(
                f"node_offsets must have shape {(n_units + 1,)}, got {self.node_offsets.shape}"
            )
        n_nodes = int(self.node_offsets[-1])
        for name in ("node_values", "node_l2"):
            if getattr(self, name).shape != (n_nodes,):
                raise ValueError(f"{name} must have shape {(n_nodes,)}")
        if self.unit_scale.shape != (n_units,):
            raise ValueError(f"unit_scale must have shape {(n_units,)}")
        if self.unit_active is None:
            object.__setattr__(self, "unit_active", np.ones(n_units, dtype=bool))
        elif self.unit_active.shape != (n_units,):
            raise ValueError(f"unit_active must have shape {(n_units,)}")

    @property
    def n_units(self) -> int:
        """Number of trees ``T * K``."""
        return self.n_rounds * self.n_outputs

    @property
    def n_nodes(self) -> int:
        """Total number of nodes over all trees."""
        return int(self.node_offsets[-1])

    def node_unit(self) -> np.ndarray:
        """The unit (tree) each node belongs to, shape (n_nodes,)."""
        return np.repeat(np.arange(self.n_units), np.diff(self.node_offsets))


class BoosterAdapter:
    """Read access to one fitted booster of a supported library.

    Subclasses are constructed from the fitted model and its training target (class codes
    for classifiers), set :attr:`structure` and implement the methods below; all of them
    take the inputs the wrapped model itself accepts.
    """

    structure: BoosterStructure

    def leaf_nodes(self, X: Any) -> np.ndarray:
        """Global node id of the leaf each row reaches in each tree, shape (m, T * K)."""
        raise NotImplementedError

    def initial_prediction(self, X: Any) -> np.ndarray:
        """The library's initial raw prediction ``f_0(x)``, shape (m, K)."""
        raise NotImplementedError

    def raw_prediction(self, X: Any) -> np.ndarray:
        """The library's own raw prediction (margin), shape (m,) or (m, K)."""
        raise NotImplementedError

    def in_bag(self, target: np.ndarray) -> np.ndarray:
        """Boolean mask of the training rows the trees were grown on, shape (n,).

        All rows by default; overridden where the library holds rows out reproducibly.
        """
        return np.ones(len(target), dtype=bool)


def adapter_class(model: Any) -> type[BoosterAdapter]:
    """The adapter for a booster instance; TypeError for anything unsupported."""
    library = type(model).__module__.split(".")[0]
    if library == "xgboost":
        import xgboost

        from ._xgboost_lens import XGBoostAdapter

        if isinstance(model, (xgboost.XGBRegressor, xgboost.XGBClassifier)):
            return XGBoostAdapter
    elif library == "lightgbm":
        import lightgbm

        from ._lightgbm_lens import LightGBMAdapter

        if isinstance(model, (lightgbm.LGBMRegressor, lightgbm.LGBMClassifier)):
            return LightGBMAdapter
    elif library == "sklearn":
        from sklearn.ensemble import (
            GradientBoostingClassifier,
            GradientBoostingRegressor,
            HistGradientBoostingClassifier,
            HistGradientBoostingRegressor,
        )

        if isinstance(model, (HistGradientBoostingRegressor, HistGradientBoostingClassifier)):
            from ._hist_gradient_boosting_lens import HistGradientBoostingAdapter

            return HistGradientBoostingAdapter
        if isinstance(model, (GradientBoostingRegressor, GradientBoostingClassifier)):
            from ._sklearn_gb_lens import GradientBoostingAdapter

            return GradientBoostingAdapter
    raise TypeError(
        f"estimator must be one of {', '.join(SUPPORTED_BOOSTERS)}; "
        f"{type(model).__module__}.{type(model).__name__} is not supported by TreeLens"
    )
