"""Elementwise activations with closed-form derivatives, for the structured route.

The derivatives follow torch's autograd conventions at kinks (ReLU has derivative 0 at 0),
so the structured and functional routes agree exactly (docs/design.md §1.7).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["ElementwiseActivation", "elementwise_activation"]


@dataclass(frozen=True)
class ElementwiseActivation:
    """An elementwise activation ``phi`` together with its derivative ``phi'``.

    Parameters
    ----------
    name : str
        Human-readable name (used in error messages and reprs).
    function : callable
        ``phi``, applied out of place.
    derivative : callable
        ``phi'``, with the same conventions as torch's autograd at kinks (e.g. ReLU has
        derivative 0 at 0), so that the structured and functional paths agree exactly.
    """

    name: str
    function: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]

    def __call__(self, z: Tensor) -> Tensor:
        return self.function(z)


_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_derivative(z: Tensor) -> Tensor:
    cdf = 0.5 * (1.0 + torch.erf(z * _SQRT_HALF))
    return cdf + z * torch.exp(-0.5 * z * z) * _INV_SQRT_TWO_PI


def _gelu_tanh_derivative(z: Tensor) -> Tensor:
    inner = _SQRT_TWO_OVER_PI * (z + 0.044715 * z**3)
    t = torch.tanh(inner)
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _SQRT_TWO_OVER_PI * (
        1.0 + 3.0 * 0.044715 * z * z
    )


def _silu_derivative(z: Tensor) -> Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def _sigmoid_derivative(z: Tensor) -> Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 - s)


def _tanh_derivative(z: Tensor) -> Tensor:
    t = torch.tanh(z)
    return 1.0 - t * t


def elementwise_activation(module: nn.Module) -> ElementwiseActivation | None:
    """The :class:`ElementwiseActivation` equivalent to ``module``, or None if unsupported.

    Supported: ``Identity``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``GELU`` (both
    approximations), ``SiLU``, ``Tanh``, ``Sigmoid`` and ``Softplus``.
    """
    if isinstance(module, nn.Identity):
        return ElementwiseActivation("identity", lambda z: z, torch.ones_like)
    if isinstance(module, nn.ReLU):
        return ElementwiseActivation(
            "relu", torch.relu, lambda z: (z > 0).to(z.dtype)
        )
    if isinstance(module, nn.LeakyReLU):
        slope = float(module.negative_slope)
        return ElementwiseActivation(
            "leaky_relu",
            lambda z: nn.functional.leaky_relu(z, slope),
            lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, slope)),
        )
    if isinstance(module, nn.ELU):
        alpha = float(module.alpha)
        return ElementwiseActivation(
            "elu",
            lambda z: nn.functional.elu(z, alpha),
            lambda z: torch.where(z > 0, torch.ones_like(z), alpha * torch.exp(z)),
        )
    if isinstance(module, nn.GELU):
        if module.approximate == "tanh":
            return ElementwiseActivation(
                "gelu_tanh",
                lambda z: nn.functional.gelu(z, approximate="tanh"),
                _gelu_tanh_derivative,
            )
        return ElementwiseActivation("gelu", nn.functional.gelu, _gelu_derivative)
    if isinstance(module, nn.SiLU):
        return ElementwiseActivation("silu", nn.functional.silu, _silu_derivative)
    if isinstance(module, nn.Tanh):
        return ElementwiseActivation("tanh", torch.tanh, _tanh_derivative)
    if isinstance(module, nn.Sigmoid):
        return ElementwiseActivation("sigmoid", torch.sigmoid, _sigmoid_derivative)
    if isinstance(module, nn.Softplus):
        beta, threshold = float(module.beta), float(module.threshold)
        return ElementwiseActivation(
            "softplus",
            lambda z: nn.functional.softplus(z, beta, threshold),
            lambda z: torch.where(
                z * beta > threshold, torch.ones_like(z), torch.sigmoid(z * beta)
            ),
        )
    return None


_SUPPORTED_ACTIVATIONS = (
    "Identity, ReLU, LeakyReLU, ELU, GELU, SiLU, Tanh, Sigmoid, Softplus"
)
