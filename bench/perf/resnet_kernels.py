"""Cost of the ResNet's tangent kernel: its structured route against torch.func.

The ``m x n`` tangent kernel of the tabular ResNet (``models/_resnet.py``; LayerNorm, ReLU)
between ``m`` evaluation and ``n`` training points, at its initialisation, computed with the
structured route (Linear inputs and deltas plus elementwise LayerNorm shares,
docs/design.md §1.7) and with per-example Jacobians from :mod:`torch.func`: seconds (best of
``--repeats`` for the structured route, one call for torch.func), the speed-up, and the
relative difference ``max |K_s - K_f| / max |K_f|`` in float32.

Run with ``python -m tabscope.bench.perf.resnet_kernels`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import sys

import torch

from tabscope.models._resnet import build_resnet
from .kernels import compare_kernel_routes

__all__ = ["main", "time_resnet_kernel"]


def time_resnet_kernel(
    n_eval: int, n_train: int, n_features: int, n_blocks: int, d_main: int, d_hidden: int,
    repeats: int = 3, seed: int = 0,
) -> dict:
    """Seconds of both routes, their relative difference and the parameter count."""
    generator = torch.Generator().manual_seed(seed)
    X_eval = torch.randn(n_eval, n_features, generator=generator)
    X_train = torch.randn(n_train, n_features, generator=generator)
    module = build_resnet(
        n_features, 1, n_blocks=n_blocks, d_main=d_main, d_hidden=d_hidden, seed=seed
    )
    structured_seconds, functional_seconds, difference = compare_kernel_routes(
        module, X_eval, X_train, repeats
    )
    return {
        "n_parameters": sum(p.numel() for p in module.parameters()),
        "structured_seconds": structured_seconds,
        "functional_seconds": functional_seconds,
        "speedup": functional_seconds / structured_seconds,
        "relative_difference": difference,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tabscope.bench.perf.resnet_kernels", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n-eval", type=int, default=500)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-features", type=int, default=10)
    parser.add_argument("--n-blocks", type=int, default=2)
    parser.add_argument("--d-main", type=int, default=128)
    parser.add_argument("--d-hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    for name in ("n_eval", "n_train", "n_features", "d_main", "d_hidden", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.n_blocks < 0:
        parser.error("--n-blocks must be at least 0")
    torch.set_num_threads(args.threads)
    result = time_resnet_kernel(
        args.n_eval, args.n_train, args.n_features, args.n_blocks, args.d_main, args.d_hidden,
        args.repeats,
    )
    print(
        f"ResNet {args.n_blocks} blocks, d_main {args.d_main}, d_hidden {args.d_hidden} "
        f"({result['n_parameters']:,} parameters), m = {args.n_eval}, n = {args.n_train}\n"
        f"| route | seconds |\n|---|---:|\n"
        f"| structured | {result['structured_seconds']:.3f} |\n"
        f"| functional (torch.func) | {result['functional_seconds']:.2f} |\n"
        f"speed-up {result['speedup']:.0f}x, relative difference "
        f"{result['relative_difference']:.1e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
