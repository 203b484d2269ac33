"""Cost of the network lens: structured vs torch.func kernels, tracking vs plain training.

Part 1 (docs/design.md §1.7): the ``m x n`` tangent kernel of an MLP ``d-w-w-1`` between ``m``
evaluation and ``n`` training points, computed with the structured per-layer factorisation
and with per-example Jacobians from :mod:`torch.func` (``vmap(jacrev)``), for each width
``w``: seconds, the speed-up, and the relative difference of the two kernels.

Part 2 (docs/design.md §1.1): training with telescoping tracking against plain training of the
same network. ``fit`` only trains; ``predict_telescoping`` replays the run and adds one
forward-mode JVP per step (first order) or two (trapezoid) over an evaluation set as large
as the training set, so its time over ``fit``'s time is the cost of tracking (1 would be
free). Measured full batch and with minibatches, because the tracking cost scales with the
evaluation set while a minibatch step only touches ``|B|`` rows. Then the same for
``kernel_view`` (contributions of every training example and kernel norms at two
checkpoints; no smoother), for SGD (scalar preconditioner, structured kernel) and AdamW
(diagonal preconditioner: ``m |B| P`` per step).

The functional kernel at width 1024 (about a million parameters) takes minutes and up to
about 2 GiB of memory; ``--widths 64 256`` skips it.

Times are wall clock (best of ``--repeats``) and CPU time (``time.process_time``, the
steadier measure on a shared machine).

Run with ``python -m tabscope.bench.perf.kernels`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import make_friedman1
from torch import nn

from tabscope.models import TelescopingMLPRegressor
from tabscope.models.tangent_kernels import tangent_kernel

__all__ = ["KernelTiming", "TrackingTiming", "main", "time_kernels", "time_tracking"]

# Blocks of 2**27 float32 elements (512 MiB): at width 1024 an MLP has about 1.06 million
# parameters, and the functional path needs its Jacobian rows in as few blocks as possible.
FUNCTIONAL_BLOCK_ELEMENTS = 1 << 27


@dataclass(frozen=True)
class KernelTiming:
    """One width of part 1."""

    width: int
    n_parameters: int
    structured_seconds: float
    functional_seconds: float
    relative_difference: float

    @property
    def speedup(self) -> float:
        return self.functional_seconds / self.structured_seconds


@dataclass(frozen=True)
class TrackingTiming:
    """One configuration of part 2: seconds of fit and of each lens call."""

    label: str
    n_steps: int
    fit_seconds: float
    fit_cpu_seconds: float
    lens_seconds: dict[str, float]
    lens_cpu_seconds: dict[str, float]

    def ratio(self, name: str) -> float:
        return self.lens_seconds[name] / self.fit_seconds

    def cpu_ratio(self, name: str) -> float:
        return self.lens_cpu_seconds[name] / self.fit_cpu_seconds


def _timed(function: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Best wall-clock and CPU seconds over ``repeats`` calls, and the last result."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(max(1, repeats)):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def _mlp(n_features: int, width: int, seed: int) -> nn.Sequential:
    generator = torch.Generator().manual_seed(seed)
    module = nn.Sequential(
        nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, 1),
    )
    with torch.no_grad():
        for parameter in module.parameters():
            bound = 1.0 / np.sqrt(parameter.shape[-1])
            parameter.uniform_(-bound, bound, generator=generator)
    return module


def compare_kernel_routes(
    module: torch.nn.Module, X_eval: torch.Tensor, X_train: torch.Tensor, repeats: int
) -> tuple[float, float, float]:
    """Seconds of the structured route (best of ``repeats``) and of torch.func (one call),
    and their relative difference ``max |K_s - K_f| / max |K_f|``."""
    with torch.no_grad():
        structured_seconds, _, structured = _timed(
            lambda: tangent_kernel(module, X_eval, X_train, kernel_method="structured"), repeats
        )
        # per-example Jacobians are the slow side: one timed call is enough
        functional_seconds, _, functional = _timed(
            lambda: tangent_kernel(
                module, X_eval, X_train, kernel_method="functional",
                max_block_elements=FUNCTIONAL_BLOCK_ELEMENTS,
            ),
            1,
        )
    difference = float(
        (structured.double() - functional.double()).abs().max()
        / functional.double().abs().max()
    )
    return structured_seconds, functional_seconds, difference


def time_kernels(
    widths: list[int], n_eval: int, n_train: int, n_features: int, repeats: int, seed: int
) -> list[KernelTiming]:
    """Part 1: structured against functional tangent kernels for each width."""
    generator = torch.Generator().manual_seed(seed)
    X_eval = torch.randn(n_eval, n_features, generator=generator)
    X_train = torch.randn(n_train, n_features, generator=generator)
    timings = []
    for width in widths:
        module = _mlp(n_features, width, seed)
        structured_seconds, functional_seconds, difference = compare_kernel_routes(
            module, X_eval, X_train, repeats
        )
        timings.append(
            KernelTiming(
                width=width,
                n_parameters=sum(p.numel() for p in module.parameters()),
                structured_seconds=structured_seconds,
                functional_seconds=functional_seconds,
                relative_difference=difference,
            )
        )
    return timings


def _regression_data(n: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_friedman1(n_samples=n, n_features=n_features, noise=0.5, random_state=seed)
    X = (X - 0.5) * np.sqrt(12.0)  # uniform on [0, 1] -> unit variance
    return X, (y - y.mean()) / y.std()


def time_tracking(
    n_train: int,
    n_eval: int,
    n_features: int,
    width: int,
    n_steps: int,
    batch_size: int | None,
    optimizer: str,
    learning_rate: float,
    lenses: dict[str, Callable[[TelescopingMLPRegressor, np.ndarray], object]],
    repeats: int,
    seed: int,
    label: str,
) -> TrackingTiming:
    """Part 2: ``fit`` against each lens call on an evaluation set of ``n_eval`` points."""
    X, y = _regression_data(n_train + n_eval, n_features, seed)
    X_train, y_train, X_eval = X[:n_train], y[:n_train], X[n_train:]
    model = TelescopingMLPRegressor(
        (width, width), optimizer=optimizer, learning_rate=learning_rate,
        batch_size=batch_size, max_steps=n_steps, n_checkpoints=2, random_state=seed,
    )
    fit_seconds, fit_cpu, _ = _timed(lambda: model.fit(X_train, y_train), repeats)
    lens_seconds, lens_cpu = {}, {}
    for name, lens in lenses.items():
        wall, cpu, _ = _timed(lambda: lens(model, X_eval), repeats)
        lens_seconds[name], lens_cpu[name] = wall, cpu
    return TrackingTiming(label, n_steps, fit_seconds, fit_cpu, lens_seconds, lens_cpu)


def _kernel_table(timings: list[KernelTiming], n_eval: int, n_train: int) -> str:
    lines = [
        f"Tangent kernel, m = {n_eval} x n = {n_train}, MLP d-w-w-1 (float32)",
        f"{'width':>6} {'params':>10} {'structured s':>13} {'torch.func s':>13} "
        f"{'speed-up':>9} {'rel. diff':>10}",
    ]
    for t in timings:
        lines.append(
            f"{t.width:>6} {t.n_parameters:>10,} {t.structured_seconds:>13.3f} "
            f"{t.functional_seconds:>13.3f} {t.speedup:>8.0f}x {t.relative_difference:>10.1e}"
        )
    return "\n".join(lines)


def _tracking_table(timings: list[TrackingTiming], title: str) -> str:
    lines = [
        title,
        f"{'configuration':<34} {'call':<24} {'wall s':>8} {'x fit':>7} {'cpu x fit':>9}",
    ]
    for t in timings:
        lines.append(
            f"{t.label:<34} {'fit (plain training)':<24} {t.fit_seconds:>8.2f} {1:>7.2f} {1:>9.2f}"
        )
        for name in t.lens_seconds:
            lines.append(
                f"{'':<34} {name:<24} {t.lens_seconds[name]:>8.2f} {t.ratio(name):>7.2f} "
                f"{t.cpu_ratio(name):>9.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints both tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--n-eval", type=int, default=500, help="m of part 1")
    parser.add_argument("--n-train", type=int, default=2000, help="n of both parts")
    parser.add_argument("--n-features", type=int, default=10)
    parser.add_argument("--width", type=int, default=256, help="MLP width of part 2")
    parser.add_argument("--steps", type=int, default=100, help="optimisation steps, part 2")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--view-eval", type=int, default=200, help="m of kernel_view timings")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-kernels", action="store_true")
    parser.add_argument("--skip-tracking", action="store_true")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")

    if not args.skip_kernels:
        timings = time_kernels(
            args.widths, args.n_eval, args.n_train, args.n_features, args.repeats, args.seed
        )
        print(_kernel_table(timings, args.n_eval, args.n_train), "\n", flush=True)

    if not args.skip_tracking:
        tracking = {
            "telescoping first order": lambda model, X: model.predict_telescoping(
                X, order="first_order"
            ),
            "telescoping trapezoid": lambda model, X: model.predict_telescoping(
                X, order="trapezoid"
            ),
        }
        common = dict(
            n_train=args.n_train, n_eval=args.n_train, n_features=args.n_features,
            width=args.width, n_steps=args.steps, lenses=tracking, repeats=args.repeats,
            seed=args.seed,
        )
        timings = [
            time_tracking(batch_size=None, optimizer="sgd", learning_rate=0.05,
                          label="SGD full batch", **common),
            time_tracking(batch_size=args.batch_size, optimizer="sgd", learning_rate=0.05,
                          label=f"SGD batch {args.batch_size}", **common),
            time_tracking(batch_size=args.batch_size, optimizer="adamw", learning_rate=1e-3,
                          label=f"AdamW batch {args.batch_size}", **common),
        ]
        title = (
            f"Training with telescoping tracking vs plain training: n = {args.n_train}, "
            f"evaluation set m = {args.n_train}, MLP {args.n_features}-{args.width}-"
            f"{args.width}-1, {args.steps} steps (lens time includes the replay's training)"
        )
        print(_tracking_table(timings, title), "\n", flush=True)

        views = {
            "kernel_view": lambda model, X: model.kernel_view(X[: args.view_eval], smoother=False),
        }
        common.update(lenses=views, repeats=1)
        timings = [
            time_tracking(batch_size=args.batch_size, optimizer="sgd", learning_rate=0.05,
                          label=f"SGD batch {args.batch_size}", **common),
            time_tracking(batch_size=args.batch_size, optimizer="adamw", learning_rate=1e-3,
                          label=f"AdamW batch {args.batch_size}", **common),
        ]
        title = (
            f"kernel_view (m = {args.view_eval}: contributions of all n = {args.n_train}, "
            "kernel norms at 2 checkpoints over the 'auto' sample, no smoother) vs plain "
            "training"
        )
        print(_tracking_table(timings, title), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
