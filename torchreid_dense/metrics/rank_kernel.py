"""CPU kernel for the rank of every positive gallery item of a query, by counting instead of sorting (Numba).

CMC, AP and INP need only where each positive (same identity, other camera) stands among the kept
gallery items. For each positive, this kernel counts the items before it in the order (distance,
gallery index) with a vectorised compare over the query's row (which stays in cache across the
positives), then takes away the removed items (same identity and camera) that come before it. A
row with many positives is value-sorted once instead and looked up by binary search. The torch
path of :mod:`torchreid_dense.metrics.rank` stays the reference and the GPU path.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..utils.jit import available, jit

__all__ = ["available", "positive_ranks"]

# Above this many positives in a row, sorting the row once beats one counting pass per positive.
_MAX_COUNTED = 128


@jit
def _before(row, value, index):
    """Items of ``row`` before ``(value, index)`` in the order (distance, index): nearer, or as near and earlier.

    Two loops from 0 (nearer over the row, as near over the prefix): LLVM vectorises loops of this form.
    """
    count = np.int32(0)
    for x in range(row.shape[0]):
        count += np.int32(row[x] < value)
    for x in range(max(index, 0)):
        count += np.int32(row[x] == value)
    return count


@jit
def _ranks_rows(dist, pos_ptr, pos_cols, rem_ptr, rem_cols, ranks, has_nan, r0, r1):
    g = dist.shape[1]
    for r in range(max(r0, 0), r1):
        row = dist[r]
        nan = np.int32(0)
        for x in range(g):
            nan += np.int32(row[x] != row[x])
        if nan:
            has_nan[r] = True
            continue
        p0, p1 = pos_ptr[r], pos_ptr[r + 1]
        num = p1 - p0
        if num == 0:
            continue
        rank = np.empty(num, dtype=np.int64)
        if num <= _MAX_COUNTED:
            for a in range(num):
                ix = pos_cols[p0 + a]
                rank[a] = _before(row, row[ix], ix) + 1
        else:
            ordered = np.sort(row)
            for a in range(num):
                ix = pos_cols[p0 + a]
                value = row[ix]
                nearer = np.searchsorted(ordered, value)
                if np.searchsorted(ordered, value, side="right") - nearer > 1:  # tied: earlier indices first
                    for x in range(ix):
                        nearer += row[x] == value
                rank[a] = nearer + 1
        for b in range(rem_ptr[r], rem_ptr[r + 1]):  # removed items counted above
            x = rem_cols[b]
            value = row[x]
            for a in range(num):
                ix = pos_cols[p0 + a]
                if value < row[ix] or (value == row[ix] and x < ix):
                    rank[a] -= 1
        rank.sort()
        for a in range(num):
            ranks[r, a] = rank[a]


def positive_ranks(dist, pos_ptr, pos_cols, rem_ptr, rem_cols, ranks, workers=1):
    """Fill ``ranks [C, P]`` with each row's positives' 1-based ranks among its kept items, ascending.

    Args:
        dist (numpy.ndarray): distances ``[C, G]`` (float32 or float64).
        pos_ptr, pos_cols: the positives per row as CSR (``pos_ptr [C + 1]``, gallery indices).
        rem_ptr, rem_cols: the removed items per row as CSR.
        ranks (numpy.ndarray): int64 ``[C, P]``, prefilled with the padding; row i's first
            ``pos_ptr[i + 1] - pos_ptr[i]`` entries are written.
        workers (int): threads sharing the rows.

    Returns:
        numpy.ndarray: bool ``[C]``, the rows holding NaN (their ranks are not written).
    """
    rows = dist.shape[0]
    has_nan = np.zeros(rows, dtype=np.bool_)
    args = (dist, pos_ptr, pos_cols, rem_ptr, rem_cols, ranks, has_nan)
    bounds = np.linspace(0, rows, max(1, min(int(workers), rows)) + 1).astype(np.int64)
    if len(bounds) <= 2:
        _ranks_rows(*args, 0, rows)
    else:
        with ThreadPoolExecutor(len(bounds) - 1) as pool:
            list(pool.map(lambda i: _ranks_rows(*args, int(bounds[i]), int(bounds[i + 1])), range(len(bounds) - 1)))
    return has_nan
