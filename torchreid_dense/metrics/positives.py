"""Rank positions of each query's positives among its kept gallery items (the core of :func:`evaluate_rank`).

On CPU a compiled kernel (:mod:`~torchreid_dense.metrics.rank_kernel`) counts, for each positive, the gallery
items before it; elsewhere each row's distance values are sorted and a batched binary search finds how many
items are nearer. Either count is corrected for exact ties and for the removed items.
"""
import numpy as np
import torch

from . import rank_kernel
from .device_ops import argsort_rows, sort_rows

__all__ = ["MatchIndex", "positive_ranks", "counts_on_cpu"]


class MatchIndex:
    """Gallery indices grouped by identity, to list each query's same-identity gallery items without a [Q, G] compare."""

    def __init__(self, g_pids):
        self.order = argsort_rows(g_pids[None])[0]
        self.sorted_pids = g_pids[self.order]
        self.unique = torch.unique_consecutive(self.sorted_pids)
        self.labels = torch.searchsorted(self.unique, g_pids)  # gallery identity -> 0..U-1

    def pairs(self, q_pids):
        """(row, gallery index) of every same-identity pair, rows ascending, gallery indices ascending per row."""
        lo = torch.searchsorted(self.sorted_pids, q_pids)
        count = torch.searchsorted(self.sorted_pids, q_pids, right=True) - lo
        rows = torch.repeat_interleave(torch.arange(q_pids.numel(), device=q_pids.device), count)
        slot = torch.arange(rows.numel(), device=q_pids.device) - (torch.cumsum(count, 0) - count)[rows]
        return rows, self.order[lo[rows] + slot]

    def label_of(self, q_pids):
        """Identity label (0..U-1) of each query pid (meaningless for pids absent from the gallery)."""
        return torch.searchsorted(self.unique, q_pids).clamp_(max=max(self.unique.numel() - 1, 0))


def positive_ranks(d, pos_rows, pos_cols, rem_rows, rem_cols, sorter, memory_budget, workers=1):
    """1-based ranks of each row's positives among its kept gallery items, in ascending order.

    Args:
        d (torch.Tensor): distances ``[C, G]`` (float32 or float64).
        pos_rows, pos_cols: positives (kept same-identity items), rows ascending.
        rem_rows, rem_cols: removed items (same identity and camera as the query).
        sorter (RowSorter): sorts the rows of ``d``.
        memory_budget (int): bytes for the tie-resolution buffers.
        workers (int): threads of the CPU counting kernel.

    Returns:
        (ranks ``[C, P]`` int64, num_pos ``[C]`` int64): ``ranks[i, :num_pos[i]]`` are the positions
        (1-based) of row i's positives among its kept items ordered by (distance, gallery index),
        ascending; the entries past ``num_pos[i]`` are padding.

    Raises:
        ValueError: when ``d`` holds NaN.
    """
    c, g = d.shape
    device = d.device
    num_pos = torch.bincount(pos_rows, minlength=c)
    p = int(num_pos.max()) if pos_rows.numel() else 0
    if counts_on_cpu(device):
        ranks = np.full((c, p), g + 1, dtype=np.int64)
        has_nan = rank_kernel.positive_ranks(
            np.ascontiguousarray(d.numpy()), _row_pointers(pos_rows, c), pos_cols.numpy(), _row_pointers(rem_rows, c),
            rem_cols.numpy(), ranks, workers=workers)
        if has_nan.any():
            raise ValueError(_NAN_MESSAGE)
        return torch.from_numpy(ranks), num_pos
    sorted_d = sorter(d)
    if torch.isnan(sorted_d[:, -1]).any():  # sorting puts NaN last
        raise ValueError(_NAN_MESSAGE)
    if p == 0:
        return torch.zeros((c, 0), dtype=torch.int64, device=device), num_pos
    slot = torch.arange(pos_rows.numel(), device=device) - (torch.cumsum(num_pos, 0) - num_pos)[pos_rows]
    pos_d = d[pos_rows, pos_cols]
    pad_d = torch.full((c, p), float("inf"), dtype=d.dtype, device=device)
    pad_d[pos_rows, slot] = pos_d
    pad_idx = torch.full((c, p), g, dtype=torch.int64, device=device)
    pad_idx[pos_rows, slot] = pos_cols
    # gallery items strictly nearer than each positive, and those at exactly its distance
    nearer = torch.searchsorted(sorted_d, pad_d)[pos_rows, slot]
    level = torch.searchsorted(sorted_d, pad_d, right=True)[pos_rows, slot] - nearer
    del sorted_d
    rank = nearer + 1
    tied = (level > 1).nonzero().squeeze(1)  # the positive shares its distance with other items
    if tied.numel():
        rank[tied] += _tied_before(d, pos_rows[tied], pos_cols[tied], pos_d[tied], memory_budget)
    if rem_rows.numel():
        # removed items that the (distance, index) order puts before a positive of their row
        rem_d = d[rem_rows, rem_cols][:, None]
        row_d, row_idx = pad_d[rem_rows], pad_idx[rem_rows]
        ahead = (rem_d < row_d) | ((rem_d == row_d) & (rem_cols[:, None] < row_idx))
        rem_before = torch.zeros((c, p), dtype=torch.int64, device=device).index_add_(0, rem_rows, ahead.long())
        rank -= rem_before[pos_rows, slot]
    ranks = torch.full((c, p), g + 1, dtype=torch.int64, device=device)
    ranks[pos_rows, slot] = rank
    return sort_rows(ranks), num_pos


_NAN_MESSAGE = ("evaluate_rank: distmat has NaN distances; fix the features or the distance computation that "
                "produced them")


def counts_on_cpu(device):
    """Whether positives are ranked by the counting kernel (CPU tensors, Numba installed) rather than by sorting."""
    return device.type == "cpu" and rank_kernel.available()


def _row_pointers(rows, num_rows):
    """CSR row pointers ``[num_rows + 1]`` of ascending row indices."""
    counts = np.bincount(rows.numpy(), minlength=num_rows)
    return np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(counts)])


def _tied_before(d, rows, cols, values, memory_budget):
    """For each (row, gallery index, distance): items of that row at exactly that distance with a smaller index."""
    g = d.shape[1]
    arange = torch.arange(g, device=d.device)
    step = max(1, int(memory_budget) // ((d.element_size() + 2) * g))
    counts = []
    for s in range(0, rows.numel(), step):
        same = d[rows[s:s + step]] == values[s:s + step, None]
        same &= arange[None, :] < cols[s:s + step, None]
        counts.append(same.sum(1))
    return torch.cat(counts)
