"""Tangent-kernel blocks ``sum_j w_j J_j(x) P J(x')^T`` in memory-bounded pieces.

One dispatch chooses how a block is contracted (docs/design.md §1.7): from the structured
route's layer factors under a scalar preconditioner (``m n (in + out)`` per layer), from the
same factors under a diagonal preconditioner (the batch side preconditioned explicitly,
layer by layer), or from explicit Jacobian rows (the functional route, ``m n P``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from ._differentiation import Coefficient, JacobianFactors, Params
from ._structured import StructuredFactors

__all__ = ["MAX_BLOCK_ELEMENTS", "assemble_kernel", "kernel_blocks"]

# Largest number of elements one block of explicit Jacobian rows (or of kernel values)
# may hold: 2**24 float32 values are 64 MiB, so the peak stays in the low hundreds of MiB.
MAX_BLOCK_ELEMENTS = 1 << 24


def _chunk_slices(n: int, size: int) -> Iterator[slice]:
    size = max(1, int(size))
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _flat_coefficient(coefficient: Coefficient) -> float | Tensor:
    if isinstance(coefficient, (int, float)):
        return float(coefficient)
    return torch.cat([c.reshape(-1) for c in coefficient])


def kernel_blocks(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: JacobianFactors,
    coefficient: Coefficient = 1.0,
    *,
    max_elements: int = MAX_BLOCK_ELEMENTS,
) -> Iterator[tuple[slice, slice, Tensor]]:
    """Blocks of ``sum_j w_j J_j(x) P J(x')^T`` over evaluation and batch points.

    Parameters
    ----------
    eval_terms : sequence of (float, factors)
        Weighted Jacobian factors of the same evaluation points, e.g. ``[(1.0, F)]`` for a
        first-order kernel or ``[(0.5, F_prev), (0.5, F_next)]`` for the trapezoid rule.
    batch : factors
        Jacobian factors of the second set of points (training examples).
    coefficient : float or tuple of Tensor
        Scalar or diagonal preconditioner ``P``.
    max_elements : int
        Bound on the elements of each block and of each set of explicit Jacobian rows.

    Yields
    ------
    eval_slice, batch_slice : slice
        Which evaluation and batch points the block covers.
    block : Tensor of shape (n_eval_block, n_batch_block, k_eval, k_batch)
    """
    first = eval_terms[0][1]
    own = getattr(first, "kernel_blocks", None)
    if own is not None:  # a route with its own contraction (the ResNet's LayerNorm shares)
        yield from own(eval_terms, batch, coefficient, max_elements=max_elements)
        return
    structured = isinstance(first, StructuredFactors) and isinstance(batch, StructuredFactors)
    if structured and isinstance(coefficient, (int, float)):
        yield from _structured_blocks(eval_terms, batch, float(coefficient), max_elements)
    elif structured and len(first) * first.n_rows_per_point < len(batch) * batch.n_rows_per_point:
        # Few evaluation rows (the displayed examples): precondition their side instead.
        yield from _eval_preconditioned_blocks(eval_terms, batch, coefficient, max_elements)
    elif structured:
        yield from _preconditioned_blocks(eval_terms, batch, coefficient, max_elements)
    else:
        yield from _row_blocks(eval_terms, batch, coefficient, max_elements)


def _row_blocks(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: JacobianFactors,
    coefficient: Coefficient,
    max_elements: int,
) -> Iterator[tuple[slice, slice, Tensor]]:
    n_eval, n_batch = len(eval_terms[0][1]), len(batch)
    k_eval, k_batch = eval_terms[0][1].n_rows_per_point, batch.n_rows_per_point
    n_params = batch.n_columns
    flat_coefficient = _flat_coefficient(coefficient)
    eval_chunk = max(1, max_elements // (k_eval * n_params))
    batch_chunk = max(1, max_elements // (k_batch * n_params))
    batch_slices = list(_chunk_slices(n_batch, batch_chunk))
    # Rows cost a jacrev per point on the functional path: when the batch side fits in
    # one block, build it once; otherwise it is rebuilt for every chunk of evaluation rows.
    cached = None
    if len(batch_slices) == 1:
        cached = _preconditioned_rows(batch, batch_slices[0], flat_coefficient, k_batch)
    for eval_slice in _chunk_slices(n_eval, eval_chunk):
        rows = None
        for weight, factors in eval_terms:
            term = factors.rows(eval_slice)
            rows = term * weight if rows is None else rows.add_(term, alpha=weight)
        n1 = rows.shape[0]
        left = rows.reshape(n1 * k_eval, n_params)
        for batch_slice in batch_slices:
            right = cached
            if right is None:
                right = _preconditioned_rows(batch, batch_slice, flat_coefficient, k_batch)
            n2 = right.shape[0] // k_batch
            block = left @ right.T
            yield eval_slice, batch_slice, block.reshape(n1, k_eval, n2, k_batch).transpose(
                1, 2
            )


def _preconditioned_rows(
    batch: JacobianFactors, index: slice, coefficient: float | Tensor, k_batch: int
) -> Tensor:
    rows = batch.rows(index)
    if isinstance(coefficient, Tensor):
        rows = rows * coefficient
    elif coefficient != 1.0:  # rows() returns fresh tensors: scale in place
        rows = rows.mul_(coefficient)
    return rows.reshape(rows.shape[0] * k_batch, rows.shape[-1])


def _structured_blocks(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: StructuredFactors,
    coefficient: float,
    max_elements: int,
) -> Iterator[tuple[slice, slice, Tensor]]:
    n_eval, n_batch = len(eval_terms[0][1]), len(batch)
    k_eval, k_batch = eval_terms[0][1].n_rows_per_point, batch.n_rows_per_point
    # a block, one layer's product of deltas (same size) and one of inputs, per pair
    per_pair = 2 * k_eval * k_batch + 1
    batch_chunk = min(n_batch, max(1, max_elements // per_pair))
    eval_chunk = max(1, max_elements // (per_pair * batch_chunk))
    for eval_slice in _chunk_slices(n_eval, eval_chunk):
        for batch_slice in _chunk_slices(n_batch, batch_chunk):
            block = None
            for weight, factors in eval_terms:
                term = _structured_block(factors, batch, eval_slice, batch_slice)
                if block is None:
                    block = term.mul_(weight * coefficient)
                else:
                    block.add_(term, alpha=weight * coefficient)
            yield eval_slice, batch_slice, block


def _preconditioned_blocks(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: StructuredFactors,
    coefficient: Params,
    max_elements: int,
) -> Iterator[tuple[slice, slice, Tensor]]:
    """Structured kernel under a diagonal preconditioner, layer by layer.

    The batch side is preconditioned explicitly, ``G_i = D * (delta_i a_i^T)`` (one
    ``out x in`` matrix per example and output), and each evaluation point contracts it
    as ``delta(x)^T G_i a(x)``: one matrix product ``a(x) G^T`` per layer, so the
    ``m x P`` Jacobian rows of the evaluation points are never built.
    """
    network = batch.network
    n_eval, n_batch = len(eval_terms[0][1]), len(batch)
    k_eval, k_batch = eval_terms[0][1].n_rows_per_point, batch.n_rows_per_point
    widest = max(d.shape[-1] for d in batch.deltas)
    batch_chunk = max(1, max_elements // (k_batch * batch.n_columns))
    for batch_slice in _chunk_slices(n_batch, batch_chunk):
        preconditioned = []
        for layer_index, layer in enumerate(network.layers):
            a = batch.inputs[layer_index][batch_slice]
            d = batch.deltas[layer_index][batch_slice]
            g_weight = d[:, :, :, None] * a[:, None, None, :] * coefficient[layer.weight]
            g_bias = None if layer.bias is None else d * coefficient[layer.bias]
            preconditioned.append((g_weight, g_bias))
        n2 = batch_slice.stop - batch_slice.start
        columns = n2 * k_batch
        eval_chunk = max(1, max_elements // (columns * widest))
        for eval_slice in _chunk_slices(n_eval, eval_chunk):
            block = None
            for weight, factors in eval_terms:
                for layer_index, (g_weight, g_bias) in enumerate(preconditioned):
                    a_x = factors.inputs[layer_index][eval_slice]
                    d_x = factors.deltas[layer_index][eval_slice]
                    n1, _, width = d_x.shape
                    # (n1, in) @ (in, columns * out): every example's G_i applied to a(x)
                    projected = a_x @ g_weight.reshape(columns * width, -1).T
                    if g_bias is not None:
                        projected += g_bias.reshape(1, columns * width)
                    projected = projected.reshape(n1, columns, width)
                    term = torch.bmm(d_x, projected.transpose(1, 2))
                    term = term.reshape(n1, k_eval, n2, k_batch).transpose(1, 2)
                    if block is None:
                        block = term * weight
                    else:
                        block.add_(term, alpha=weight)
            yield eval_slice, batch_slice, block


def _eval_preconditioned_blocks(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: StructuredFactors,
    coefficient: Params,
    max_elements: int,
) -> Iterator[tuple[slice, slice, Tensor]]:
    """The diagonal-preconditioner kernel with the evaluation side preconditioned.

    For ``m`` evaluation rows fewer than the batch's ``|B|``, each layer forms
    ``G_x = D * (delta(x) a(x)^T)`` (``m K P`` values rather than ``|B| P``) and contracts
    it with the whole batch in one matrix product, ``G_x a_B^T``, then with ``delta_B``:
    ``m |B| in out`` per layer and step, the same numbers as
    :func:`_preconditioned_blocks` since ``D`` is diagonal.
    """
    network = batch.network
    n_eval, n_batch = len(eval_terms[0][1]), len(batch)
    k_eval, k_batch = eval_terms[0][1].n_rows_per_point, batch.n_rows_per_point
    widest = max(d.shape[-1] for d in batch.deltas)
    eval_chunk = max(1, max_elements // (k_eval * batch.n_columns))
    batch_chunk = max(1, max_elements // (eval_chunk * k_eval * widest))
    for eval_slice in _chunk_slices(n_eval, eval_chunk):
        preconditioned = []
        for layer_index, layer in enumerate(network.layers):
            g_weight = g_bias = None
            for weight, factors in eval_terms:
                a = factors.inputs[layer_index][eval_slice]
                d = factors.deltas[layer_index][eval_slice] * weight
                term = d[:, :, :, None] * a[:, None, None, :]
                g_weight = term if g_weight is None else g_weight.add_(term)
                if layer.bias is not None:
                    g_bias = d if g_bias is None else g_bias + d
            g_weight.mul_(coefficient[layer.weight])
            if g_bias is not None:
                g_bias = g_bias * coefficient[layer.bias]
            preconditioned.append((g_weight, g_bias))
        n1 = eval_slice.stop - eval_slice.start
        for batch_slice in _chunk_slices(n_batch, batch_chunk):
            block = None
            for layer_index, (g_weight, g_bias) in enumerate(preconditioned):
                a_b = batch.inputs[layer_index][batch_slice]
                d_b = batch.deltas[layer_index][batch_slice]
                n2, _, width = d_b.shape
                # (n1 k1 out, in) @ (in, n2): every G_x applied to the batch's inputs
                projected = g_weight.reshape(n1 * k_eval * width, -1) @ a_b.T
                projected = projected.reshape(n1 * k_eval, width, n2)
                term = torch.einsum("pon,nko->pnk", projected, d_b)
                if g_bias is not None:
                    term += (g_bias.reshape(n1 * k_eval, width) @ d_b.reshape(n2 * k_batch, width).T
                             ).reshape(n1 * k_eval, n2, k_batch)
                term = term.reshape(n1, k_eval, n2, k_batch).transpose(1, 2)
                block = term if block is None else block.add_(term)
            yield eval_slice, batch_slice, block


def _structured_block(
    left: StructuredFactors, right: StructuredFactors, left_slice: slice, right_slice: slice
) -> Tensor:
    """``sum_l (delta_l(x) . delta_l(x')) (a_l(x) . a_l(x') [+ 1])`` for two slices."""
    network = left.network
    total = None
    inputs_product = deltas_product = None  # reused buffers: fewer large allocations
    for layer_index, layer in enumerate(network.layers):
        a1 = left.inputs[layer_index][left_slice]
        a2 = right.inputs[layer_index][right_slice]
        d1 = left.deltas[layer_index][left_slice]
        d2 = right.deltas[layer_index][right_slice]
        n1, k1, width = d1.shape
        n2, k2, _ = d2.shape
        if layer.bias is not None:
            # a column of ones turns a . a' + 1 into one matrix product
            a1 = torch.cat([a1, a1.new_ones(n1, 1)], dim=1)
            a2 = torch.cat([a2, a2.new_ones(n2, 1)], dim=1)
        if k1 == 1 and k2 == 1:
            inputs_product = torch.mm(a1, a2.T, out=inputs_product)
            if total is None:
                total = torch.mm(d1[:, 0, :], d2[:, 0, :].T).mul_(inputs_product)
            else:
                deltas_product = torch.mm(d1[:, 0, :], d2[:, 0, :].T, out=deltas_product)
                total.addcmul_(deltas_product, inputs_product)
            continue
        inputs_product = a1 @ a2.T
        deltas_product = d1.reshape(n1 * k1, width) @ d2.reshape(n2 * k2, width).T
        term = deltas_product.reshape(n1, k1, n2, k2).transpose(1, 2)
        term = term * inputs_product[:, :, None, None]
        total = term if total is None else total.add_(term)
    if total.ndim == 2:
        total = total[:, :, None, None]
    return total


def assemble_kernel(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: JacobianFactors,
    coefficient: Coefficient = 1.0,
    *,
    max_elements: int = MAX_BLOCK_ELEMENTS,
) -> Tensor:
    """The full kernel of :func:`kernel_blocks`, shape (n_eval, n_batch, k_eval, k_batch)."""
    first = eval_terms[0][1]
    out = None
    for eval_slice, batch_slice, block in kernel_blocks(
        eval_terms, batch, coefficient, max_elements=max_elements
    ):
        if block.shape[:2] == (len(first), len(batch)):
            return block  # one block covers everything: no copy
        if out is None:
            out = block.new_empty(
                (len(first), len(batch), first.n_rows_per_point, batch.n_rows_per_point)
            )
        out[eval_slice, batch_slice] = block
    return out

