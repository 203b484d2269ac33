"""Docstring fragments shared by the four telescoping network estimators.

Kept apart from :mod:`tabscope.models.networks` so the estimators' module holds code; the
fragments are spliced into each class's numpydoc ``Parameters`` and ``Attributes``.
"""

__all__ = [
    "COMMON_ATTRIBUTES_DOC",
    "COMMON_PARAMETERS_DOC",
    "NET_PARAMETERS_DOC",
    "REGRESSOR_ATTRIBUTES_DOC",
    "REGRESSOR_PARAMETERS_DOC",
]

COMMON_PARAMETERS_DOC = """\
    optimizer : {"sgd", "momentum", "nesterov", "adam", "adamw"}, default="adamw"
        Update rule, with :mod:`torch.optim` semantics (no dampening). The part of each
        update that the current batch's gradient contributes through the optimiser's
        preconditioner is attributed to the batch's examples; the rest (momentum carried
        over, weight decay) is the kernel view's ``unattributed`` term.
    learning_rate : float, default=1e-3
    weight_decay : float, default=0.0
        L2 penalty added to the gradient ("sgd", "momentum", "nesterov", "adam") or
        decoupled decay ("adamw").
    momentum : float, default=0.9
        Momentum of "momentum" and "nesterov".
    beta_1, beta_2 : float, default=0.9, 0.999
        Moment decay rates of "adam" and "adamw".
    epsilon : float, default=1e-8
        Denominator offset of "adam" and "adamw".
    batch_size : int or None, default=128
        Minibatch size; None (or a value >= n_samples) trains full batch. Batches are
        consecutive slices of a fresh seeded permutation each epoch.
    max_steps : int, default=1000
        Number of optimisation steps (not epochs).
    telescope : {"first_order", "trapezoid"}, default="trapezoid"
        Default telescoping model of the lens methods.
    n_checkpoints : int or None, default=None
        Number of steps, evenly spread, at which :meth:`kernel_view` takes kernel norms;
        at most ``max_steps``. None takes 10 (every step when ``max_steps`` is smaller).
    dtype : {"float32", "float64"}, default="float32"
        Training (and replay) precision. Predictions are evaluated in float64.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and batch order through private torch generators.
    device : str, default="cpu"
        Torch device. Bitwise reproducibility is guaranteed on CPU.
    lr_schedule : {"constant", "cosine", "linear"}, default="constant"
        Learning-rate schedule over ``max_steps`` after the warm-up
        (:class:`~tabscope.vocabulary.LearningRateSchedule`); the lens replays each step
        with its own rate ``gamma_t`` (docs/design.md §1.2).
    warmup_fraction : float in [0, 1), default=0.0
        Share of ``max_steps`` over which the rate rises linearly from
        ``learning_rate / W`` to ``learning_rate`` (``W`` the number of warm-up steps).
    early_stopping : bool or "auto", default="auto"
        Keep the model of the step with the best validation score and stop after
        ``n_iter_no_change`` scorings without improvement. "auto" stops early exactly
        when ``fit`` is given ``X_val`` and ``y_val``; True without them holds out
        ``validation_fraction`` of the training rows (stratified for classifiers), which
        then are not training examples of the lens; False ignores ``X_val``/``y_val``.
        The lens describes the kept model: it replays ``best_step_`` steps.
    validation_fraction : float in (0, 1), default=0.1
        Held-out share when ``early_stopping=True`` and no validation set is passed.
    validation_interval : int, default=20
        Steps between two validation scorings (the last step is always scored).
    n_iter_no_change : int, default=10
        Scorings without a strictly better score before training stops.
"""

COMMON_ATTRIBUTES_DOC = """\
    module_ : torch.nn.Module
        The trained network (in eval mode).
    initial_parameters_ : list of ndarray
        Parameters at initialisation, in the order of ``module_.parameters()``.
    X_train_ : ndarray of shape (n_samples, n_features)
        Training inputs, kept for replays.
    y_train_ : ndarray
        Training targets as the loss sees them (encoded classes for classifiers).
    training_config_ : TrainingConfig
        Optimiser, batch schedule seed, number of steps, dtype and differentiation route
        (``kernel_method``: "structured" or "functional") used in fit.
    n_outputs_ : int
        Number of network outputs ``K`` (1 for regression and binary problems).
    loss_curve_ : ndarray of shape (n_iter_,)
        Training loss of each step's batch.
    n_iter_ : int
        Number of optimisation steps taken (fewer than ``max_steps`` when training
        stopped early).
    best_step_ : int
        The step whose parameters the estimator keeps: ``n_iter_`` without early
        stopping, else the best-scoring step. The lens replays this many steps.
    validation_scores_ : ndarray of shape (n_scorings,)
        Negated mean training loss on the validation set at each scoring (higher is
        better; in target units for regressors); empty without early stopping.
    validation_steps_ : ndarray of shape (n_scorings,)
        The steps at which ``validation_scores_`` were taken.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
"""


NET_PARAMETERS_DOC = """\
    module : torch.nn.Module or callable
        The network, mapping ``(n, n_features)`` to ``(n, K)`` (or ``(n,)`` when
        ``K == 1``); all of its parameters are trained. A module is deep-copied and
        trained from its current parameters (``random_state`` then only seeds the batch
        order; lazy layers are materialised from it); a callable is called as
        ``module(n_features, n_outputs)`` with torch's global generator seeded from
        ``random_state`` (inside a fork, so the caller's state is unchanged). The module
        is used in eval mode (dropout off, batch norm on its running statistics, which
        are never updated): the lens needs the network to be a fixed function of its
        parameters.
    kernel_method : {"auto", "structured", "functional"}, default="auto"
        Differentiation route (a :class:`~tabscope.vocabulary.KernelMethod`) for
        training and for the lens: "structured" for a ``torch.nn.Sequential`` of Linear
        layers and elementwise activations (ValueError for anything else), "functional"
        (torch.func) for any module, "auto" the first that applies.
"""


REGRESSOR_PARAMETERS_DOC = """\
    standardize_target : bool, default=True
        Train on ``(y - mu) / sigma`` (``mu``, ``sigma``: the training target's mean and
        standard deviation; ``sigma = 1`` for a constant target), as scikit-learn's
        ``TransformedTargetRegressor`` with a ``StandardScaler`` would, so the usual
        learning rates suit any target scale. ``predict`` and every lens method answer
        in the target's own units (docs/design.md §1.3).
"""

REGRESSOR_ATTRIBUTES_DOC = """\
    target_mean_, target_scale_ : float
        ``mu`` and ``sigma`` (0 and 1 with ``standardize_target=False``):
        ``predict(x) = mu + sigma f(x)`` for the network output ``f``.
"""
