"""Regression and classification front ends of the telescoping networks.

:class:`_TelescopingRegressor` trains on squared loss, on a standardised target by default
(``predict`` and the lens answer in the target's units, docs/design.md §1.3);
:class:`_TelescopingClassifier` on binary or softmax cross-entropy. Both accept a
validation set for early stopping, as ``HistGradientBoosting*.fit`` does.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from tabscope.vocabulary import Objective

from ._network_base import _TelescopingEstimator
from ._network_lens import TelescopingLensMixin
from ._network_scale import ScaledLensMixin

__all__ = ["REGRESSOR_CONSTRAINTS"]

#: The regressors' parameters beyond those every telescoping estimator shares.
REGRESSOR_CONSTRAINTS: dict[str, list] = {"standardize_target": ["boolean"]}


class _TelescopingRegressor(
    RegressorMixin, ScaledLensMixin, TelescopingLensMixin, _TelescopingEstimator
):
    def fit(self, X, y, X_val=None, y_val=None):
        """Train the network on ``(X, y)`` with squared loss ``1/2 (f - y)^2``.

        With ``standardize_target`` the loss sees ``(y - mu) / sigma``; predictions and
        the lens are in the units of ``y`` (docs/design.md §1.3).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        X_val : array-like of shape (n_val, n_features), default=None
            Validation inputs for early stopping (see ``early_stopping``), as
            scikit-learn's ``HistGradientBoostingRegressor.fit`` takes them.
        y_val : array-like of shape (n_val,), default=None

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad inputs, or training diverged (a non-finite loss, naming the step and
            the learning rate).
        """
        optimizer = self._check_parameters()
        X, y = validate_data(self, X, y, y_numeric=True, dtype=[np.float64, np.float32])
        validation = self._validation_inputs(X_val, y_val)
        y = np.asarray(y, dtype=np.float64)
        mean, scale = 0.0, 1.0
        if self.standardize_target:
            mean, scale = float(np.mean(y)), float(np.std(y))
            if not scale > 0.0 or not np.isfinite(scale):
                scale = 1.0
        self.target_mean_, self.target_scale_ = mean, scale
        dtype = np.dtype(self.dtype)
        targets = ((y - mean) / scale).astype(dtype).reshape(-1, 1)
        if validation is not None:
            X_val, y_val = validation
            y_val = np.asarray(y_val, dtype=np.float64)
            validation = (X_val, ((y_val - mean) / scale).astype(dtype).reshape(-1, 1))
        return self._fit_targets(
            X, targets, Objective.REGRESSION, 1, optimizer, validation, loss_scale=scale**2
        )

    def _target_affine(self) -> tuple[float, float]:
        return self.target_mean_, self.target_scale_

    def predict(self, X) -> np.ndarray:
        """Network output in the units of ``y``, shape (n_samples,)."""
        return self._to_target_units(self._decision(self._validate_eval(X)))[:, 0]


class _TelescopingClassifier(
    ClassifierMixin, ScaledLensMixin, TelescopingLensMixin, _TelescopingEstimator
):
    def fit(self, X, y, X_val=None, y_val=None):
        """Train the network on ``(X, y)`` with cross-entropy.

        Binary problems use one logit (binary cross-entropy with logits), multiclass
        problems one logit per class (softmax cross-entropy).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        X_val : array-like of shape (n_val, n_features), default=None
            Validation inputs for early stopping (see ``early_stopping``).
        y_val : array-like of shape (n_val,), default=None
            Validation labels, among those of ``y``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad inputs, or training diverged (a non-finite loss, naming the step and
            the learning rate).
        """
        optimizer = self._check_parameters()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        validation = self._validation_inputs(X_val, y_val)
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; got 1 "
                f"class ({classes[0]!r})"
            )
        self.classes_ = classes
        binary = len(classes) == 2

        def encode(codes):
            if binary:
                return codes.astype(np.dtype(self.dtype)).reshape(-1, 1)
            return codes.astype(np.int64)

        if validation is not None:
            X_val, y_val = validation
            unknown = ~np.isin(y_val, classes)
            if unknown.any():
                raise ValueError(
                    f"y_val has labels absent from y: {np.unique(y_val[unknown])!r}"
                )
            validation = (X_val, encode(np.searchsorted(classes, y_val)))
        objective = Objective.BINARY if binary else Objective.MULTICLASS
        return self._fit_targets(
            X, encode(encoded), objective, 1 if binary else len(classes), optimizer,
            validation,
        )

    def decision_function(self, X) -> np.ndarray:
        """Logits: shape (n_samples,) for binary problems, (n_samples, n_classes) else."""
        return self._as_units(self._decision(self._validate_eval(X)))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes)."""
        logits = self._decision(self._validate_eval(X))
        if self.n_outputs_ == 1:
            positive = expit(logits[:, 0])
            return np.column_stack([1.0 - positive, positive])
        return softmax(logits, axis=1)

    def predict(self, X) -> np.ndarray:
        """Most probable class, shape (n_samples,)."""
        logits = self._decision(self._validate_eval(X))
        if self.n_outputs_ == 1:
            return self.classes_[(logits[:, 0] > 0).astype(np.int64)]
        return self.classes_[np.argmax(logits, axis=1)]
