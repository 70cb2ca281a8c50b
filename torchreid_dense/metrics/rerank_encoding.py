"""The k-reciprocal encodings ``V`` on sparse (row, column) pairs, their query expansion, and the final
distance: the Jaccard distance through an inverted index of the gallery items' entries, mixed with the original."""
import numpy as np
import torch

from . import rerank_kernel
from .rerank_memory import CHUNK_BYTES, TRIPLE_BYTES, chunk_bounds, chunk_rows
from .rerank_sources import square32, to_numpy

__all__ = ["encoding_weights", "query_expansion", "inverted_index", "final_distances"]


def segments(counts):
    """For segments of the given lengths: each element's segment and its position inside it."""
    seg = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    start = torch.cumsum(counts, 0) - counts
    return seg, torch.arange(seg.numel(), device=counts.device) - start[seg]


def query_expansion(rows, cols, vals, near, n, memory_budget):
    """torchreid's ``V_qe[i] = mean(V[initial_rank[i, :k2]], axis=0)`` on sparse rows, bit for bit.

    numpy adds the k2 rows one after the other in float32, in ``initial_rank``'s order, then divides
    by k2; so does this (absent entries are zeros, which leave a float32 sum unchanged).
    """
    device = rows.device
    m3 = near.shape[1]
    nnz = torch.bincount(rows, minlength=n)
    ptr = torch.cumsum(nnz, 0) - nnz
    per_row = nnz[near].sum(1)  # entries gathered for each row
    bounds = chunk_bounds(per_row, min(int(memory_budget), CHUNK_BYTES) // 64)
    out_rows, out_cols, out_vals = [], [], []
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        src = near[r0:r1].reshape(-1)
        entry, offset = segments(nnz[src])
        pos = ptr[src][entry] + offset
        # generated row by row, then in initial_rank's order: each key's terms arrive in summation order
        keys = (torch.div(entry, m3, rounding_mode="floor") + r0) * n + cols[pos]
        unique, inverse = torch.unique(keys, return_inverse=True)
        inverse, order = torch.sort(inverse, stable=True)
        terms = vals[pos][order]
        count = torch.bincount(inverse, minlength=unique.numel())
        rank = torch.arange(inverse.numel(), device=device) - (torch.cumsum(count, 0) - count)[inverse]
        sums = torch.zeros(unique.numel(), dtype=torch.float32, device=device)
        for t in range(int(count.max()) if count.numel() else 0):  # term t of every key at once
            at = rank == t
            sums.index_add_(0, inverse[at], terms[at])
        out_rows.append(unique // n)
        out_cols.append(unique % n)
        out_vals.append(sums / m3)
    return torch.cat(out_rows), torch.cat(out_cols), torch.cat(out_vals)


def encoding_weights(dist, rows, n):
    """torchreid's ``V[i, R*(i)] = exp(-d) / sum(exp(-d))`` in float32, bit for bit: numpy's ``exp`` and numpy's
    pairwise summation order, per row (pairs sorted by row, then column)."""
    weight = torch.from_numpy(np.exp(-dist.cpu().numpy())).to(dist.device)
    count = torch.bincount(rows, minlength=n)
    start = torch.cumsum(count, 0) - count
    total = torch.zeros(n, dtype=torch.float32, device=dist.device)
    for length in torch.unique(count).tolist():
        if length:
            which = (count == length).nonzero().squeeze(1)
            block = weight[start[which][:, None] + torch.arange(length, device=dist.device)]
            total[which] = numpy_pairwise_sum(block)
    return weight / total[rows]


def numpy_pairwise_sum(x):
    """Row sums of ``x [S, m]`` (float32) with the additions of numpy's ``np.sum`` (its pairwise summation:
    8 interleaved partial sums per block of up to 128, halves above)."""
    m = x.shape[1]
    if m < 8:
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(m):
            total = total + x[:, i]
        return total
    if m <= 128:
        part = x[:, :8].clone()
        full = m - m % 8
        for i in range(8, full, 8):
            part = part + x[:, i:i + 8]
        total = ((part[:, 0] + part[:, 1]) + (part[:, 2] + part[:, 3])) + \
                ((part[:, 4] + part[:, 5]) + (part[:, 6] + part[:, 7]))
        for i in range(full, m):
            total = total + x[:, i]
        return total
    half = m // 2
    half -= half % 8
    return numpy_pairwise_sum(x[:, :half]) + numpy_pairwise_sum(x[:, half:])


def inverted_index(rows, cols, vals, q, n):
    """The encodings ``V`` (pairs sorted by row) split for the Jaccard step.

    Returns:
        dict: the queries' entries as CSR (``q_ptr [q + 1]``, ``q_cols``, ``q_vals``) and the gallery
        items' entries by column (``col_ptr [n + 1]``, ``g_items`` (gallery positions), ``g_vals``).
    """
    num_q_entries = int((rows < q).sum())  # rows are sorted: the queries' entries come first
    gal = slice(num_q_entries, None)
    g_cols, order = torch.sort(cols[gal], stable=True)
    zero = torch.zeros(1, dtype=torch.int64, device=rows.device)
    return {
        "q_ptr": torch.cat([zero, torch.cumsum(torch.bincount(rows[:num_q_entries], minlength=q), 0)]),
        "q_cols": cols[:num_q_entries], "q_vals": vals[:num_q_entries],
        "col_ptr": torch.cat([zero, torch.cumsum(torch.bincount(g_cols, minlength=n), 0)]),
        "g_items": (rows[gal] - q)[order], "g_vals": vals[gal][order],
    }


def final_distances(source, index, col_max, lambda_value, memory_budget, device, out_device, kernel,
                    workers=1):
    """``(1 - lambda) * Jaccard + lambda * normalised distance`` for every query-gallery pair, chunk by chunk.

    Jaccard: ``1 - t / (2 - t)`` with ``t[i, j] = sum_k min(V[i, k], V[j, k])``, summed over the
    inverted index of the gallery items' entries (column k -> the gallery items with an entry there); on CPU
    with ``kernel``, by :func:`~torchreid_dense.metrics.rerank_kernel.final_distances` on ``workers`` threads.
    """
    q, g = source.q, source.g
    keep, mix = float(np.float32(1 - lambda_value)), float(np.float32(lambda_value))  # numpy's float32 scalars
    q_ptr, col_ptr = index["q_ptr"].cpu(), index["col_ptr"]
    if kernel:
        result = getattr(source, "store", None)  # the query-gallery distances, re-ranked in place
        result = torch.empty((q, g), dtype=torch.float32) if result is None else result
        arrays = {k: v.numpy() for k, v in index.items()}
        step = chunk_rows(memory_budget, 8 * g)
        for a in range(0, q, step):
            b = min(a + step, q)
            dist, squared = source.query_gallery(a, b), False
            if dist.dtype not in (torch.float32, torch.float64):  # half precision: squared as torchreid does
                dist, squared = square32(dist), True
            e0 = int(q_ptr[a])
            rerank_kernel.final_distances(
                to_numpy(dist, dist.dtype), squared, col_max[a:b].numpy(), (q_ptr[a:b + 1] - e0).numpy(),
                arrays["q_cols"][e0:], arrays["q_vals"][e0:], arrays["col_ptr"], arrays["g_items"],
                arrays["g_vals"], keep, mix, result[a:b].numpy(), workers=workers)
        return result.to(out_device)
    col_count = col_ptr[1:] - col_ptr[:-1]
    q_count = q_ptr[1:] - q_ptr[:-1]
    q_rows = torch.repeat_interleave(torch.arange(q, device=device), q_count.to(device))
    triples = torch.zeros(q, dtype=torch.int64, device=device).index_add_(0, q_rows, col_count[index["q_cols"]])
    bounds = chunk_bounds(triples, min(int(memory_budget), CHUNK_BYTES) // TRIPLE_BYTES)
    bounds = sorted(set(bounds) | set(range(0, q, chunk_rows(memory_budget, 16 * g))) | {q})
    out = torch.empty((q, g), dtype=torch.float32, device=out_device)
    for a, b in zip(bounds[:-1], bounds[1:]):
        e0, e1 = int(q_ptr[a]), int(q_ptr[b])
        i, k, v = q_rows[e0:e1], index["q_cols"][e0:e1], index["q_vals"][e0:e1]
        entry, offset = segments(col_count[k])
        pos = col_ptr[k][entry] + offset
        shared = torch.zeros((b - a) * g, dtype=torch.float32, device=device)
        shared.index_add_(0, (i[entry] - a) * g + index["g_items"][pos], torch.minimum(v[entry], index["g_vals"][pos]))
        del entry, offset, pos
        shared = shared.view(b - a, g)
        jaccard = 1 - shared / (2.0 - shared)
        original = square32(source.query_gallery(a, b)) / col_max[a:b, None]
        out[a:b] = (jaccard * keep + original * mix).to(out_device)
    return out
