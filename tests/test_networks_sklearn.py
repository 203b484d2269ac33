"""scikit-learn's estimator checks on the four telescoping network estimators."""

import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from tabscope.models import (
    TelescopingMLPClassifier,
    TelescopingMLPRegressor,
    TelescopingNetClassifier,
    TelescopingNetRegressor,
)


class ResidualNet(nn.Module):
    """A small module that is not a Sequential, so it trains through torch.func."""

    def __init__(self, n_features: int, n_outputs: int):
        super().__init__()
        self.first = nn.Linear(n_features, 16)
        self.second = nn.Linear(16, n_outputs)

    def forward(self, x):
        h = torch.tanh(self.first(x))
        return self.second(h + 0.5 * h**2)


@pytest.fixture(autouse=True)
def _one_thread():
    # Two shared cores: torch's spinning worker threads make small matmuls far slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Default architecture and optimiser, few steps: the checks fit dozens of times. The
# small custom module needs a larger step to reach the checks' score thresholds in 50.
@parametrize_with_checks(
    [
        TelescopingMLPRegressor(max_steps=50),
        TelescopingMLPClassifier(max_steps=50),
        TelescopingNetRegressor(ResidualNet, max_steps=50, learning_rate=1e-2),
        TelescopingNetClassifier(ResidualNet, max_steps=50, learning_rate=1e-2),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
