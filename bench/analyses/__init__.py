"""The lens analyses run per benchmark cell and per compared pair, as pure functions.

Everything here takes :class:`~tabscope.models.KernelView` objects, fitted estimators or
plain arrays and returns numbers, arrays or tidy data frames; nothing trains a model or
touches a results store, so the runner can call these on whatever the lenses produce
(docs/design.md §1.1, §1.5, §1.6). One module per quantity:

- :mod:`.irregularity` -- :func:`irregularity_scores`, how unlike the training data each
  evaluation example is, model-agnostically (k-NN distance, Mahalanobis distance,
  IsolationForest).
- :mod:`.kernel_norms` -- :func:`normalized_kernel_norms` and :func:`kernel_norm_summary`,
  the normalised kernel weight norm ``kappa_bar(x) = kappa(x) / mean_{i in train}
  kappa(x_i)``.
- :mod:`.curves` -- :func:`irregularity_curve`, the paper's figure 5: the network-vs-GBDT
  metric gap and each model's mean ``kappa_bar`` on test subsets with a growing share of
  irregular examples (its per-example losses in :mod:`._losses`).
- :mod:`.effective_parameters` -- :func:`effective_parameters`, ``p_E = (n / |E|) sum_{x in
  E} ||s_T(x)||^2`` from a squared-loss view's smoother.
- :mod:`.fidelity` -- :func:`fidelity_summary`, the telescoping network's fidelity on an
  evaluation set.

Scalar parameters are checked against declarative constraint tables
(:func:`tabscope.validation.validate_parameters`); array inputs by :mod:`._inputs`.
"""

from ._losses import CLASSIFICATION_METRICS, REGRESSION_METRICS
from .curves import DEFAULT_PROPORTIONS, irregularity_curve
from .effective_parameters import effective_parameters
from .fidelity import fidelity_summary
from .irregularity import IRREGULARITY_METHODS, irregularity_scores
from .kernel_norms import kernel_norm_summary, normalized_kernel_norms, spearman

__all__ = [
    "CLASSIFICATION_METRICS",
    "DEFAULT_PROPORTIONS",
    "IRREGULARITY_METHODS",
    "REGRESSION_METRICS",
    "effective_parameters",
    "fidelity_summary",
    "irregularity_curve",
    "irregularity_scores",
    "kernel_norm_summary",
    "normalized_kernel_norms",
    "spearman",
]
