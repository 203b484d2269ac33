"""Gradient-boosted trees through the telescoping lens (docs/design.md §1.4-1.6).

:class:`TreeLens` wraps an XGBoost, LightGBM or scikit-learn booster and exposes it as a
:class:`~tabscope.models.KernelView`: the boosted prediction written as its initial score
plus a kernel-weighted sum of the training examples' gradients, round by round. The
prediction in each view comes from the library's own leaf values, the contributions from the
replayed gradients, hessians and leaf co-membership, so ``view.check_identity()`` is a real
check.

Supported: ``XGBRegressor`` / ``XGBClassifier`` (gbtree), ``LGBMRegressor`` /
``LGBMClassifier`` (gbdt), ``HistGradientBoostingRegressor`` / ``Classifier`` and
``GradientBoostingRegressor`` / ``Classifier``, with squared error, binary log-loss and
multiclass softmax log-loss. Settings that make leaf values non-linear in the gradients or
hide the rows a tree was grown on raise a ValueError that names them, at ``fit`` and in
:meth:`TreeLens.from_fitted`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from tabscope.validation import Interval, one_of, validate_parameters
from tabscope.vocabulary import KernelNorm

from ._booster_adapter import (
    SUPPORTED_BOOSTERS,
    BoosterAdapter,
    UnsupportedBoosterError,
    adapter_class,
)
from ._tree_replay import fit_tree_kernel
from ._tree_scale import ScaledTreeLensMixin
from ._tree_view import build_kernel_view, round_kernel_weights
from .kernel_view import KernelView

__all__ = ["TreeLens", "SUPPORTED_BOOSTERS", "UnsupportedBoosterError"]

_KERNEL_VIEW_CONSTRAINTS = {
    "norm": [one_of(KernelNorm)],
    "smoother": ["boolean"],
    "max_smoother_train": [Interval(Integral, 1, None, closed="left")],
    "n_jobs": [
        Interval(Integral, 1, None, closed="left"),
        Interval(Integral, None, -1, closed="right"),
        None,
    ],
}

def _is_dataframe(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "iloc")


def _classifier_only(lens: "TreeLens") -> bool:
    return is_classifier(lens.estimator)


def _estimator_has(method: str):
    def check(lens: "TreeLens") -> bool:
        return _classifier_only(lens) and hasattr(lens.estimator, method)

    return check


class TreeLens(ScaledTreeLensMixin, MetaEstimatorMixin, BaseEstimator):
    """A gradient-boosted ensemble as a kernel-weighted sum over its training examples.

    Round ``t`` of a booster fits, for each output ``k``, a tree whose leaf values are Newton
    steps ``v_l = -eta sum_{i in l} g_it / (sum_{i in l} h_it + lambda)``, so the update it
    adds at ``x`` is ``-sum_i eta K^tree_t(x, x_i) g_it`` with
    ``K^tree_t(x, x_i) = 1{l_t(x) = l_t(x_i)} / (H_{t, l_t(x)} + lambda)`` (docs/design.md §1.4).
    ``TreeLens`` fits (or wraps) such a booster, replays it on its training set to recover
    the per-round gradients ``g_it`` and hessians ``h_it`` exactly as the library used them,
    verifies that the replay reproduces every leaf value, and returns the decomposition as
    a :class:`~tabscope.models.KernelView`.

    Parameters
    ----------
    estimator : estimator instance
        The booster to fit: ``xgboost.XGBRegressor`` / ``XGBClassifier`` (``gbtree``),
        ``lightgbm.LGBMRegressor`` / ``LGBMClassifier`` (``gbdt``), or scikit-learn's
        ``HistGradientBoostingRegressor`` / ``Classifier`` or
        ``GradientBoostingRegressor`` / ``Classifier``; squared error, binary log-loss or
        multiclass log-loss. A clone is fitted; ``estimator`` itself is left untouched.

    Attributes
    ----------
    estimator_ : estimator instance
        The fitted booster (the user's own model for :meth:`from_fitted`).
    tree_kernel_ : TreeKernel
        The training-set replay: leaf assignments ``train_nodes`` (n, T*K), ``gradients``
        and ``hessians`` (n, T, K), the in-bag mask, per-leaf counts and kernel weights.
    classes_ : ndarray of shape (n_classes,)
        Class labels (classifiers only).
    n_outputs_ : int
        Outputs ``K`` of the raw prediction (1 for regression and binary classification).
    n_rounds_ : int
        Boosting rounds ``T`` used for prediction.
    loss_ : {"squared_error", "log_loss"}
        The booster's training loss.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when they are all strings.

    See Also
    --------
    KernelView : The common form of every lens model.

    Notes
    -----
    Inputs are validated like any scikit-learn estimator's. NumPy inputs reach the booster
    as validated arrays; pandas DataFrames reach it unchanged (after feature checks), so
    categorical dtypes work as each library handles them. Missing values are allowed and
    routed by the library itself (leaf assignments come from the library's own traversal,
    or a replica of it verified against its predictions for HistGradientBoosting).

    Sample weights are not supported: ``fit`` has no ``sample_weight`` and a booster trained
    with weights, an initial margin or on other data fails the leaf-value check of
    :meth:`from_fitted` with a ValueError.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from xgboost import XGBRegressor
    >>> from tabscope.models import TreeLens
    >>> X, y = load_diabetes(return_X_y=True)
    >>> lens = TreeLens(XGBRegressor(n_estimators=20, max_depth=3)).fit(X, y)
    >>> view = lens.kernel_view(X[:5])
    >>> view.check_identity()
    >>> view.contributions.shape
    (5, 442)
    """

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self.estimator)
        except (TypeError, AttributeError, ValueError):
            inner = None
        if inner is not None:
            tags.estimator_type = inner.estimator_type
            tags.regressor_tags = inner.regressor_tags
            if inner.classifier_tags is not None:
                # One label per row: the kernel is defined for single-output boosting.
                tags.classifier_tags = replace(inner.classifier_tags, multi_label=False)
        # Missing values are allowed exactly when the booster handles them.
        tags.input_tags.allow_nan = inner.input_tags.allow_nan if inner is not None else False
        tags.input_tags.sparse = False
        tags.target_tags.required = True
        tags.target_tags.multi_output = False
        return tags

    # -- validation --------------------------------------------------------------------

    def _validate_inputs(
        self, X: Any, y: Any = "no_validation", *, reset: bool
    ) -> tuple[Any, Any]:
        """Validate like scikit-learn; return the input the booster gets, and ``y``."""
        frame = _is_dataframe(X)
        check = dict(
            reset=reset,
            dtype=None if frame else "numeric",
            ensure_all_finite="allow-nan" if get_tags(self).input_tags.allow_nan else True,
            accept_sparse=False,
        )
        if isinstance(y, str) and y == "no_validation":
            checked = validate_data(self, X, **check)
            return (X if frame else checked), None
        classifier = is_classifier(self.estimator)
        checked, y = validate_data(self, X, y, y_numeric=not classifier, **check)
        return (X if frame else checked), y

    def _encode_target(self, y: np.ndarray, classes: np.ndarray | None) -> tuple:
        """Class codes (and classes) for a classifier, float targets for a regressor."""
        if not is_classifier(self.estimator):
            return np.asarray(y, dtype=np.float64), None
        check_classification_targets(y)
        if classes is None:
            classes, codes = np.unique(y, return_inverse=True)
        else:
            classes = np.asarray(classes)
            codes = np.searchsorted(classes, y)
            codes = np.clip(codes, 0, len(classes) - 1)
            if not np.array_equal(classes[codes], y):
                unknown = np.setdiff1d(np.unique(y), classes)
                raise ValueError(
                    f"y_train has labels {unknown[:5].tolist()} that are not among the "
                    f"model's classes_ {classes.tolist()}"
                )
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class ({classes[0]!r}); TreeLens needs at least two"
            )
        return codes.astype(np.int64), classes

    def _attach(
        self,
        estimator: Any,
        adapter_type: type[BoosterAdapter],
        X: Any,
        target: np.ndarray,
        classes: np.ndarray | None,
    ) -> None:
        adapter = adapter_type(estimator, target)
        structure = adapter.structure
        if classes is not None and structure.n_outputs > 1 and len(classes) > structure.n_outputs:
            raise ValueError(
                f"the booster has {structure.n_outputs} outputs but y has {len(classes)} classes"
            )
        kernel = fit_tree_kernel(adapter, X, target)
        self.estimator_ = estimator
        self.tree_kernel_ = kernel
        if classes is not None:
            self.classes_ = classes
        self.n_outputs_ = structure.n_outputs
        self.n_rounds_ = structure.n_rounds
        self.loss_ = structure.loss

    @staticmethod
    def supports(model: Any) -> bool:
        """Whether ``model``'s class is a booster TreeLens can decompose.

        A capability check on the class alone (the adapter table), so it needs no fitting.
        A supported class may still carry a setting that breaks the kernel identity:
        :meth:`fit` and :meth:`from_fitted` then raise :class:`UnsupportedBoosterError`.
        """
        try:
            adapter_class(model)
        except TypeError:
            return False
        return True

    # -- fitting -----------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> "TreeLens":
        """Fit a clone of the booster and replay it on the training set.

        Parameters
        ----------
        X : {array-like, pandas DataFrame} of shape (n_samples, n_features)
            Training inputs; missing values (NaN) allowed.
        y : array-like of shape (n_samples,)
            Targets (regression) or class labels (classification).

        Returns
        -------
        self : TreeLens
            The fitted lens.

        Raises
        ------
        TypeError
            If ``estimator`` is not a supported booster.
        ValueError
            If a setting of ``estimator`` breaks the kernel identity; the message names it.
        """
        adapter = adapter_class(self.estimator)
        X_fit, y = self._validate_inputs(X, y, reset=True)
        target, classes = self._encode_target(y, None)
        # Classifiers are fitted on class codes: every library then agrees on the
        # class order, and XGBoost (which needs codes 0..K-1) accepts any labels.
        estimator = clone(self.estimator).fit(X_fit, target if classes is not None else y)
        self._attach(estimator, adapter, X_fit, target, classes)
        return self

    @classmethod
    def from_fitted(cls, model: Any, X_train: Any, y_train: Any) -> "TreeLens":
        """Wrap a booster the user already fitted on ``(X_train, y_train)``.

        Parameters
        ----------
        model : estimator instance
            A fitted supported booster (see :class:`TreeLens`); it is used as is, not copied.
        X_train : {array-like, pandas DataFrame} of shape (n_samples, n_features)
            Exactly the inputs ``model`` was fitted on, in the same order.
        y_train : array-like of shape (n_samples,)
            Exactly the targets or labels ``model`` was fitted on.

        Returns
        -------
        lens : TreeLens
            A fitted lens whose ``estimator`` and ``estimator_`` are ``model``.

        Raises
        ------
        TypeError
            If ``model`` is not a supported booster.
        sklearn.exceptions.NotFittedError
            If ``model`` is not fitted.
        ValueError
            If a setting of ``model`` breaks the kernel identity (the message names it), if
            ``X_train`` does not match the model's features, or if the leaf values recomputed
            from ``(X_train, y_train)`` do not reproduce the model's (other training data,
            sample weights, an initial margin).
        """
        adapter = adapter_class(model)
        check_is_fitted(
            model, msg=f"model {type(model).__name__} must be fitted before from_fitted"
        )
        lens = cls(estimator=model)
        X_fit, y = lens._validate_inputs(X_train, y_train, reset=True)
        expected = getattr(model, "n_features_in_", None)
        if expected is not None and int(expected) != lens.n_features_in_:
            raise ValueError(
                f"X_train has {lens.n_features_in_} features but model was fitted on {expected}"
            )
        classes = np.asarray(model.classes_) if is_classifier(model) else None
        target, classes = lens._encode_target(y, classes)
        lens._attach(model, adapter, X_fit, target, classes)
        return lens

    # -- delegation --------------------------------------------------------------------

    def predict(self, X: Any) -> np.ndarray:
        """The booster's prediction.

        Parameters
        ----------
        X : {array-like, pandas DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted values, or class labels (from :attr:`classes_`).
        """
        check_is_fitted(self)
        X_in, _ = self._validate_inputs(X, reset=False)
        prediction = np.asarray(self.estimator_.predict(X_in))
        if not is_classifier(self.estimator):
            return prediction
        # The booster predicts its own labels; map them onto classes_ (codes after fit).
        own_classes = np.asarray(self.estimator_.classes_)
        return self.classes_[np.searchsorted(own_classes, prediction)]

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from the booster, columns in the order of :attr:`classes_`.

        Parameters
        ----------
        X : {array-like, pandas DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X_in, _ = self._validate_inputs(X, reset=False)
        return np.asarray(self.estimator_.predict_proba(X_in))

    @available_if(_classifier_only)
    def decision_function(self, X: Any) -> np.ndarray:
        """The booster's raw score (margin) for classifiers.

        XGBoost's ``predict(output_margin=True)``, LightGBM's ``predict(raw_score=True)``,
        scikit-learn's ``decision_function``.

        Parameters
        ----------
        X : {array-like, pandas DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        X_in, _ = self._validate_inputs(X, reset=False)
        return self.tree_kernel_.adapter.raw_prediction(X_in)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (classifiers) or coefficient of determination R^2 (regressors).

        Parameters
        ----------
        X : {array-like, pandas DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True labels or values.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        from sklearn.metrics import accuracy_score, r2_score

        metric = accuracy_score if is_classifier(self.estimator) else r2_score
        return float(metric(y, self.predict(X), sample_weight=sample_weight))

    # -- the lens ----------------------------------------------------------------------

    def kernel_view(
        self,
        X: Any,
        *,
        norm: str = "l1",
        smoother: bool = False,
        max_smoother_train: int = 5000,
        n_jobs: int | None = None,
    ) -> KernelView:
        """The booster on ``X`` as offset plus training examples' contributions.

        Parameters
        ----------
        X : {array-like, pandas DataFrame} of shape (m, n_features)
            Evaluation inputs.
        norm : {"l1", "l2"}, default="l1"
            Norm over the training examples of each round's kernel weights
            ``eta K^tree_t(x, .)`` (Frobenius norm of the diagonal ``K x K`` block for
            multiclass), docs/design.md §1.5.
        smoother : bool, default=False
            Also return the linear-smoother weights ``s_T(x)`` (squared loss only,
            docs/design.md §1.6). Costs ``O(T n^2)`` time and ``n x n`` memory.
        max_smoother_train : int, default=5000
            Largest training set for which ``smoother=True`` is allowed.
        n_jobs : int, default=None
            Threads for the contribution matrix: None means 1, -1 all processors. The
            result is the same bits whatever the number.

        Returns
        -------
        view : KernelView
            ``offset`` (the library's initial prediction), ``contributions`` (m, n) or
            (m, n, K), zero ``unattributed``, ``prediction`` from the library's leaf values,
            ``checkpoints`` the rounds ``1..T``, ``kernel_norms`` (m, T),
            ``train_kernel_norms`` (n, T) and optionally ``smoother`` (m, n).

        Raises
        ------
        ValueError
            If ``norm`` is not ``"l1"`` or ``"l2"``, if ``smoother=True`` for a log-loss
            booster, or if the training set exceeds ``max_smoother_train``.
        """
        check_is_fitted(self)
        arguments = dict(
            norm=norm, smoother=smoother, max_smoother_train=max_smoother_train, n_jobs=n_jobs
        )
        validate_parameters(_KERNEL_VIEW_CONSTRAINTS, arguments, caller="TreeLens.kernel_view")
        if n_jobs is None:
            n_jobs = 1
        elif n_jobs < 0:
            n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
        X_in, _ = self._validate_inputs(X, reset=False)
        return build_kernel_view(
            self.tree_kernel_,
            X_in,
            norm=norm,
            smoother=bool(smoother),
            max_smoother_train=max_smoother_train,
            n_jobs=int(n_jobs),
        )

    def kernel_weights(self, X: Any, round_index: int) -> np.ndarray:
        """Kernel weights ``w_t(x, i) = eta K^tree_t(x, x_i)`` of one boosting round.

        ``w_t(x, i)`` is ``s_t / (H_{t,l} + lambda)`` when ``x`` and training example ``i``
        share leaf ``l`` of round ``t``'s tree (and ``i`` was in the bag), 0 otherwise;
        the round's update at ``x`` is ``-sum_i w_t(x, i) g_it``.

        Parameters
        ----------
        X : {array-like, pandas DataFrame} of shape (m, n_features)
            Evaluation inputs.
        round_index : int
            Boosting round ``t``, 1-based like ``KernelView.checkpoints``.

        Returns
        -------
        weights : ndarray of shape (m, n_train) or (m, n_train, K)
            Dense weights; for ``K`` outputs the diagonal of each ``K x K`` block.
        """
        check_is_fitted(self)
        X_in, _ = self._validate_inputs(X, reset=False)
        return round_kernel_weights(self.tree_kernel_, X_in, round_index)
