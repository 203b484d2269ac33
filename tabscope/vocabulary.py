"""tabscope's vocabulary: every fixed set of names, defined once as a string-valued enum.

Each set of alternatives (tasks, metrics, kernel algorithms, telescope orders, norms,
optimisers, irregularity scores, analyses) is one :class:`enum.StrEnum`. Members compare
equal to their plain strings, so suite files, ``get_params`` and the results store keep
plain strings, while code names a member instead of retyping a literal. A member's docstring
says what it means and, for algorithms, what it costs (docs/design.md §1.7 for the symbols).
"""

from __future__ import annotations

import enum
import math

__all__ = [
    "Analysis",
    "CellJob",
    "IrregularityMethod",
    "KernelMethod",
    "KernelNorm",
    "LearningRateSchedule",
    "Loss",
    "Metric",
    "Objective",
    "OptimizerName",
    "Preprocessing",
    "Sampler",
    "Task",
    "TelescopeOrder",
    "TrialStatus",
    "choices",
]


def choices(vocabulary: type[enum.StrEnum]) -> tuple[str, ...]:
    """The plain-string values of a vocabulary, in definition order."""
    return tuple(member.value for member in vocabulary)


class Task(enum.StrEnum):
    """The supervised tasks tabscope benchmarks."""

    REGRESSION = "regression"
    CLASSIFICATION = "classification"


class Metric(enum.StrEnum):
    """Test-set scores stored for every cell, in the order tables show them."""

    RMSE = "rmse"
    MAE = "mae"
    R2 = "r2"
    ACCURACY = "accuracy"
    LOG_LOSS = "log_loss"
    ROC_AUC = "roc_auc"

    @property
    def task(self) -> Task:
        """The task whose cells carry this metric."""
        if self in (Metric.RMSE, Metric.MAE, Metric.R2):
            return Task.REGRESSION
        return Task.CLASSIFICATION

    @property
    def greater_is_better(self) -> bool:
        """Whether a larger value is a better model."""
        return self in (Metric.R2, Metric.ACCURACY, Metric.ROC_AUC)

    @classmethod
    def of_task(cls, task: str) -> tuple[Metric, ...]:
        """The metrics of ``task``, in table order."""
        return tuple(metric for metric in cls if metric.task == task)

    @classmethod
    def primary(cls, task: str) -> Metric:
        """The metric a task's models are ranked by."""
        return {Task.REGRESSION: cls.RMSE, Task.CLASSIFICATION: cls.ACCURACY}[Task(task)]


class KernelMethod(enum.StrEnum):
    """How a network's Jacobian factors, and so its tangent kernels, are computed."""

    AUTO = "auto"
    """``structured`` when the module allows it, else ``functional``."""
    STRUCTURED = "structured"
    """Layer inputs ``a`` and backpropagated deltas ``delta`` from one forward and one
    backward pass; a Linear layer's kernel share costs ``m n (in + out)``. Needs a
    Sequential of Linear layers and elementwise activations."""
    FUNCTIONAL = "functional"
    """Per-example Jacobians through ``torch.func`` (jacrev, vmap); any torch module;
    ``m n P`` per kernel and ``(m + n) P`` memory for the Jacobians."""


class TelescopeOrder(enum.StrEnum):
    """How each training step's change of the prediction is linearised (design §1.1)."""

    FIRST_ORDER = "first_order"
    """``J_{t-1}(x) Delta theta_t``: one JVP per step and evaluation point."""
    TRAPEZOID = "trapezoid"
    """``(J_{t-1}(x) + J_t(x)) Delta theta_t / 2``: two JVPs per step; exact for a model
    quadratic in its parameters."""


class KernelNorm(enum.StrEnum):
    """The norm over training examples in the kernel weight norm kappa (design §1.5)."""

    L1 = "l1"
    """Sum of the weights' magnitudes: bounds the update, ``|Delta f_t| <= kappa_t max|g|``."""
    L2 = "l2"
    """Euclidean norm of the weights; grows as ``1/sqrt(n_leaf)`` on a tree's small leaves."""


class OptimizerName(enum.StrEnum):
    """The closed-form optimisers a telescoping network trains with."""

    SGD = "sgd"
    MOMENTUM = "momentum"
    NESTEROV = "nesterov"
    ADAM = "adam"
    ADAMW = "adamw"

    @property
    def diagonal(self) -> bool:
        """Whether the optimiser has a per-parameter (diagonal) preconditioner."""
        return self in (OptimizerName.ADAM, OptimizerName.ADAMW)


class LearningRateSchedule(enum.StrEnum):
    """How a network's learning rate changes over its ``max_steps`` steps, after an optional
    linear warm-up (docs/design.md §1.2: the step's ``gamma_t``)."""

    CONSTANT = "constant"
    """``gamma_t = gamma`` after the warm-up."""
    COSINE = "cosine"
    """Half a cosine from ``gamma`` down towards 0 at ``max_steps``."""
    LINEAR = "linear"
    """A straight line from ``gamma`` down towards 0 at ``max_steps``."""

    def factor(self, step: int, n_steps: int, warmup_steps: int) -> float:
        """``gamma_t / gamma`` at 1-based ``step`` of ``n_steps``, warm-up included.

        The warm-up rises as ``t / W`` over the first ``W = warmup_steps`` steps; the decay
        then runs over the remaining ``n_steps - W`` steps, starting at 1 and staying
        positive (the last step still moves), so a schedule never stalls training.
        """
        if step <= warmup_steps:
            return step / warmup_steps
        if self is LearningRateSchedule.CONSTANT:
            return 1.0
        progress = (step - warmup_steps - 1) / max(n_steps - warmup_steps, 1)
        if self is LearningRateSchedule.COSINE:
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress


class IrregularityMethod(enum.StrEnum):
    """Model-agnostic scores of how unlike the training data an example is (design §1.5)."""

    KNN = "knn"
    """Mean distance to the ``k`` nearest training examples: ``O(m n d)``."""
    MAHALANOBIS = "mahalanobis"
    """Mahalanobis distance to the training mean: ``O((m + n) d^2 + d^3)``."""
    ISOLATION_FOREST = "isolation_forest"
    """Negated IsolationForest score fitted on the training set."""


class Preprocessing(enum.StrEnum):
    """Which inputs a model gets (Grinsztajn et al. 2022, design §3)."""

    NETWORK = "network"
    """Quantile-transformed numbers, one-hot categories, imputed values."""
    TREE = "tree"
    """Raw features; categories stay categorical."""


class Analysis(enum.StrEnum):
    """The lens analyses a suite can ask for (suite key ``analyses``)."""

    IRREGULARITY = "irregularity"
    """Irregularity scores, kernel norms and the gap curve of each compared pair (§1.5)."""
    EFFECTIVE_PARAMETERS = "effective_parameters"
    """p_train and p_test from each lens's linear-smoother weights (§1.6)."""
    FIDELITY = "fidelity"
    """How closely the telescoping models follow the trained network (§1.1)."""

    @property
    def cell_job(self) -> CellJob:
        """The per-cell job each cell of the suite runs for this analysis: the whole of it
        for a per-model analysis, the per-cell half (:attr:`CellJob.KERNEL_NORMS`) of the
        pairwise :attr:`IRREGULARITY`."""
        return {
            Analysis.IRREGULARITY: CellJob.KERNEL_NORMS,
            Analysis.EFFECTIVE_PARAMETERS: CellJob.EFFECTIVE_PARAMETERS,
            Analysis.FIDELITY: CellJob.FIDELITY,
        }[self]


class CellJob(enum.StrEnum):
    """The per-cell pieces of work the analyses above are made of, as stored rows."""

    KERNEL_NORMS = "kernel_norms"
    """Each model's normalised kernel norms (kappa-bar): the per-cell half of
    :attr:`Analysis.IRREGULARITY` (``Analysis.IRREGULARITY.cell_job``); the pair's curve is
    computed from two of these. The network side of a compared pair also stores here the
    irregularity scores of its evaluation rows, so the pair analysis reads every per-example
    array it needs and never preprocesses data again."""
    EFFECTIVE_PARAMETERS = "effective_parameters"
    FIDELITY = "fidelity"


class Loss(enum.StrEnum):
    """The training losses whose gradients a kernel view's contributions carry."""

    SQUARED_ERROR = "squared_error"
    """``1/2 (f - y)^2``: gradient ``f - y``, hessian 1."""
    LOG_LOSS = "log_loss"
    """Cross-entropy on logits: binary on one logit, softmax on ``K``."""


class Objective(enum.StrEnum):
    """What a telescoping network is trained for: the task, with classification split by
    the number of logits."""

    REGRESSION = "regression"
    """Squared error on one output."""
    BINARY = "binary"
    """Binary cross-entropy on one logit."""
    MULTICLASS = "multiclass"
    """Softmax cross-entropy on ``K`` logits."""

    @property
    def loss(self) -> Loss:
        """The loss this objective trains with."""
        return Loss.SQUARED_ERROR if self is Objective.REGRESSION else Loss.LOG_LOSS


class Sampler(enum.StrEnum):
    """How a tuning study proposes its next configuration (``[tuning] sampler``)."""

    TPE = "tpe"
    """Optuna's tree-structured Parzen estimator: random for the first trials, then
    proposals modelled on the better ones. Cost per proposal grows with the trials seen."""
    RANDOM = "random"
    """Independent draws from the search space, as in Grinsztajn et al. (2022)."""


class TrialStatus(enum.StrEnum):
    """How a tuning trial ended (the ``status`` column of the ``trials`` table)."""

    COMPLETE = "complete"
    """Fitted and scored on the validation part."""
    PRUNED = "pruned"
    """Stopped early: its intermediate validation scores were hopeless."""
    FAILED = "failed"
    """The configuration could not be fitted (diverged, invalid combination)."""
