"""Multilayer perceptrons with torch's default initialisation, drawn from a private seed."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import skip_init

__all__ = ["ACTIVATIONS", "build_mlp"]

ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "softplus": nn.Softplus,
}


def build_mlp(
    n_features: int,
    hidden_layer_sizes: tuple[int, ...],
    n_outputs: int,
    activation: str,
    seed: int,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """An MLP with torch's default ``Linear`` initialisation, drawn from a private generator.

    Weights and biases are uniform on ``(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (what
    ``nn.Linear.reset_parameters`` gives) but sampled from ``torch.Generator(seed)``, so
    initialisation neither reads nor advances torch's global random state.
    """
    generator = torch.Generator().manual_seed(int(seed))
    sizes = [n_features, *hidden_layer_sizes, n_outputs]
    modules: list[nn.Module] = []
    for position, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = skip_init(nn.Linear, fan_in, fan_out, dtype=dtype)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        modules.append(linear)
        if position < len(sizes) - 2:
            modules.append(ACTIVATIONS[activation]())
    return nn.Sequential(*modules)
