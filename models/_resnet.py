"""The tabular ResNet of Gorishniy et al. (2021), with LayerNorm, as a torch module.

``(in) -> Linear -> Block x n_blocks -> Head -> (out)``, each block
``h + Linear(ReLU(Linear(LayerNorm(h))))`` and the head ``Linear(ReLU(LayerNorm(h)))``:
the architecture of "Revisiting Deep Learning Models for Tabular Data" (rtdl's ``ResNet``),
with two changes that keep the telescoping lens exact (docs/design.md §1.1-1.3):
LayerNorm instead of BatchNorm, so each example's output depends on that example alone, and
no dropout, so a replay of training is deterministic. Every Linear layer is applied once
per example, which is what the structured kernels of ``_structured_resnet`` need (§1.7).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

__all__ = ["ResNetBlock", "TabularResNet", "build_resnet"]


class ResNetBlock(nn.Module):
    """``h + linear_second(relu(linear_first(norm(h))))``."""

    def __init__(self, d_main: int, d_hidden: int, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.norm = nn.LayerNorm(d_main, dtype=dtype)
        self.linear_first = skip_init(nn.Linear, d_main, d_hidden, dtype=dtype)
        self.linear_second = skip_init(nn.Linear, d_hidden, d_main, dtype=dtype)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.linear_second(torch.relu(self.linear_first(self.norm(h))))


class TabularResNet(nn.Module):
    """The tabular ResNet: first layer, residual blocks, normalised head.

    Build it with :func:`build_resnet`, which draws the initialisation from a seed.

    Parameters
    ----------
    n_features : int
    n_outputs : int
    n_blocks : int
        Number of residual blocks (0 gives ``Linear -> LayerNorm -> ReLU -> Linear``).
    d_main : int
        Width of the residual stream.
    d_hidden : int
        Width inside each block.
    dtype : torch.dtype, default=torch.float32
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        n_blocks: int,
        d_main: int,
        d_hidden: int,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        self.first = skip_init(nn.Linear, n_features, d_main, dtype=dtype)
        self.blocks = nn.ModuleList(
            ResNetBlock(d_main, d_hidden, dtype) for _ in range(n_blocks)
        )
        self.head_norm = nn.LayerNorm(d_main, dtype=dtype)
        self.head = skip_init(nn.Linear, d_main, n_outputs, dtype=dtype)

    def forward(self, X: Tensor) -> Tensor:
        h = self.first(X)
        for block in self.blocks:
            h = block(h)
        return self.head(torch.relu(self.head_norm(h)))

    def linear_layers(self) -> list[nn.Linear]:
        """The Linear layers in the order of the forward pass."""
        layers = [self.first]
        for block in self.blocks:
            layers += [block.linear_first, block.linear_second]
        return layers + [self.head]


def build_resnet(
    n_features: int,
    n_outputs: int,
    *,
    n_blocks: int,
    d_main: int,
    d_hidden: int,
    seed: int,
    dtype: torch.dtype = torch.float32,
) -> TabularResNet:
    """A :class:`TabularResNet` with torch's default initialisation, drawn from ``seed``.

    Linear weights and biases are uniform on ``(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (what
    ``nn.Linear.reset_parameters`` gives, as in rtdl), sampled from a private
    ``torch.Generator``, so initialisation neither reads nor advances torch's global random
    state; LayerNorm starts at ``gamma = 1``, ``beta = 0``.
    """
    generator = torch.Generator().manual_seed(int(seed))
    module = TabularResNet(n_features, n_outputs, n_blocks, d_main, d_hidden, dtype)
    with torch.no_grad():
        for linear in module.linear_layers():
            bound = 1.0 / math.sqrt(linear.in_features)
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
    return module
