"""The neighbourhoods of k-reciprocal re-ranking: each item's nearest candidates (one pass over ``D``), torchreid's
``initial_rank`` prefixes (ties resolved as numpy's argsort does), and the expanded k-reciprocal sets ``R*(i)``."""
import numpy as np
import torch

from . import rerank_kernel
from .rerank_memory import TOPK_BYTES, chunk_rows
from .rerank_sources import kernel_dtype, square32

__all__ = ["neighbourhoods", "expansion"]


def candidates(source, size, memory_budget, device, kernel):
    """Each item's ``size`` smallest distance magnitudes in its column of ``D`` (any choice among ties at the
    last one), and the column's largest magnitude: (indices ``[n, size]``, magnitudes, largest ``[n]``); on CPU
    with ``kernel``, by :class:`~torchreid_dense.metrics.rerank_kernel.NearestTracker`."""
    n = source.n
    if kernel:
        dtype = np.float64 if kernel_dtype(source.dtype) == torch.float64 else np.float32
        tracker = rerank_kernel.NearestTracker(n, size, dtype, workers=torch.get_num_threads())
        try:
            for tile, row_base, col_base, columns, rows in source.tiles(memory_budget):
                tracker.offer(tile, row_base, col_base, columns=columns, rows=rows)
        finally:
            tracker.close()
        idx, mag, col_max = (torch.from_numpy(a) for a in tracker.result())
        return idx, mag.to(source.dtype), col_max.to(source.dtype)
    itemsize = torch.empty((), dtype=source.dtype).element_size()
    step = max(1, int(memory_budget) // (n * (2 * itemsize + TOPK_BYTES)))
    idx = torch.empty((n, size), dtype=torch.int64, device=device)
    mag = torch.empty((n, size), dtype=source.dtype, device=device)
    col_max = torch.empty(n, dtype=source.dtype, device=device)
    for c0 in range(0, n, step):
        c1 = min(c0 + step, n)
        block = source.columns_at(torch.arange(c0, c1, device=device)).abs_()
        col_max[c0:c1] = block.amax(1)  # NaN propagates
        mag[c0:c1], idx[c0:c1] = torch.topk(block, size, dim=1, largest=False, sorted=False)
        del block
    return idx, mag, col_max


def neighbourhoods(source, sizes, memory_budget, device, kernel, expansion_order=True):
    """torchreid's ``initial_rank`` prefixes, and its row normalisers.

    Args:
        sizes (tuple): (m1, m2, m3), the prefixes' lengths: k-reciprocal sets, their expansion, the
            query expansion.
        kernel (bool): find the candidates with the CPU kernel (else torch ops).
        expansion_order (bool): whether the query-expansion prefix must also be in argsort's order.

    Returns:
        (top ``[n, L]`` int64, col_max ``[n]`` float32): ``top[i, :m]`` is the set of torchreid's
        ``initial_rank[i, :m]`` for m in ``sizes`` (L = max(sizes)), and ``top[i, :m3]`` its
        sequence when ``expansion_order``; ``col_max[i]`` the largest squared distance in column i of
        ``D``, torchreid's normaliser of item i's row.
    """
    n = source.n
    length = max(sizes)
    # one beyond the longest prefix: every other item is at least as far as the last candidate, so a
    # prefix is determined unless its last value ties the next candidate's
    idx, mag, col_max = (t.to(device) for t in candidates(source, min(n, length + 1), memory_budget, device, kernel))
    col_max = square32(col_max)  # max of the squares = square of the largest magnitude (rounding is monotone)
    check_columns(col_max)
    value, order = torch.sort(square32(mag) / col_max[:, None], dim=1, stable=True)
    top = idx.gather(1, order)[:, :length].contiguous()
    tied = torch.zeros(n, dtype=torch.bool, device=device)
    for m in sizes[:2]:
        if m < n:
            tied |= value[:, m - 1] == value[:, m]
    # the query expansion sums its rows in argsort order: a tie anywhere in that prefix changes the rounding
    last = min(sizes[2], n - 1)
    if last > 0 and expansion_order:
        tied |= (value[:, :last] == value[:, 1:last + 1]).any(1)
    tied = tied.nonzero().squeeze(1)
    # there numpy's argsort (not stable) picks among the tied items: call it on the row torchreid builds
    step = max(1, int(memory_budget) // (n * 16))
    for s in range(0, tied.numel(), step):
        items = tied[s:s + step]
        rows = (square32(source.columns_at(items)) / col_max[items, None]).cpu().numpy()
        top[items] = torch.from_numpy(np.argsort(rows)[:, :length].astype(np.int64)).to(device)
    return top, col_max


def check_columns(col_max):
    bad = ~torch.isfinite(col_max)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(f"rerank: the distances of item {i} (queries first, then gallery) are not all finite, or "
                         "too large to square in float32; fix the features or scale the distances")
    zero = col_max == 0
    if bool(zero.any()):
        i = int(zero.nonzero()[0])
        raise ValueError(f"rerank: every distance to item {i} (queries first, then gallery) is 0, so its "
                         "normalised distances are undefined (torchreid returns NaN); are all features equal?")


def reciprocal(near, chunk):
    """``mask[i, a]``: whether ``i`` is among the neighbours of its neighbour ``near[i, a]``."""
    n = near.shape[0]
    out = torch.empty(near.shape, dtype=torch.bool, device=near.device)
    for r0 in range(0, n, chunk):
        r1 = min(r0 + chunk, n)
        own = torch.arange(r0, r1, device=near.device)[:, None, None]
        out[r0:r1] = (near[near[r0:r1]] == own).any(-1)
    return out


def expansion(top, m1, m2, memory_budget):
    """Each item's expanded k-reciprocal set ``R*(i)`` as (row, column) pairs sorted by row then column.

    ``R(i)``: the ``m1`` nearest of i that have i among their ``m1`` nearest. Each ``c`` in ``R(i)``
    adds its own ``R_half(c)`` (same with ``m2``) when more than 2/3 of it lies in ``R(i)``
    (torchreid's float64 test ``|R_half(c) & R(i)| > 2/3 * |R_half(c)|``).
    """
    n = top.shape[0]
    near1, near2 = top[:, :m1], top[:, :m2]
    chunk = chunk_rows(memory_budget, m1 * m1 * 9)
    recip1, recip2 = reciprocal(near1, chunk), reciprocal(near2, chunk)
    in_r = torch.where(recip1, near1, -1)  # R(i), padded with -1
    half_size = recip2.sum(1).double()
    chunk = chunk_rows(memory_budget, m1 * m2 * (m1 + 40))
    pieces = []
    for r0 in range(0, n, chunk):
        r1 = min(r0 + chunk, n)
        i, a = recip1[r0:r1].nonzero(as_tuple=True)
        i = i + r0
        c = near1[i, a]  # c in R(i)
        members, in_half = near2[c], recip2[c]  # R_half(c): members[in_half]
        inter = ((members[:, :, None] == in_r[i][:, None, :]).any(-1) & in_half).sum(1)
        accept = inter.double() > (2.0 / 3.0) * half_size[c]
        extra = (i[accept][:, None] * n + members[accept])[in_half[accept]]
        pieces.append(torch.unique(torch.cat([i * n + c, extra])))
    keys = torch.cat(pieces)
    return keys // n, keys % n
