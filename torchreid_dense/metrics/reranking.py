"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal Encoding",
CVPR 2017) on sparse top-k neighbourhoods, with the result of torchreid's ``re_ranking``.

torchreid's ``re_ranking`` builds the dense ``(q+g)^2`` matrices of the squared, column-normalised
distances, of their full argsort and of the encodings ``V``, and loops over rows in Python. Only a
few neighbours of each item matter: its ``k1 + 1`` nearest (the k-reciprocal set), the
``round(k1 / 2) + 1`` nearest (each member's own set, for the expansion) and the ``k2`` nearest
(query expansion). This module makes one pass over the distance matrix (a column of the
concatenated matrix, normalised by its maximum, is the item's row in torchreid's ranking) keeping
each item's nearest candidates and its maximum; from features it computes the symmetric matrix's
upper triangle only, tile by tile, never the whole. The rest works on sparse pairs with torch ops on
the chosen device: reciprocity and the 2/3 expansion test by comparisons within the neighbourhoods,
``V`` and its query expansion as sorted (row, column) pairs, and the Jaccard distance of each chunk
of queries through an inverted index of the gallery items' entries. On CPU two Numba kernels
(:mod:`~torchreid_dense.metrics.rerank_kernel`) do the pass and the Jaccard step; the torch ops alone
are the GPU path (and the CPU path without Numba).

Exactness: every value goes through torchreid's float32 operations in its order: squares in the
input dtype, then float32; division by the column maximum; numpy's own ``exp``; the weights' sum in
numpy's pairwise order; the query expansion's rows added one after another in argsort order; the
Jaccard overlaps accumulated column by column; ``1 - t / (2 - t)``; ``J * (1 - lambda) + d * lambda``.
So on CPU the result equals torchreid's bit for bit (tested, ties included; on GPU, where the
overlaps are accumulated in another order, to about 1e-7). The neighbourhoods are the same sets: a
prefix of torchreid's argsort is determined by the values alone unless the value at its boundary
ties the next one, and the query expansion's order unless two of its values tie. There numpy's
argsort (quicksort, not stable; SIMD-accelerated on some CPUs) orders the tied items its own way, so
for exactly those rows this module builds the row as torchreid does and calls ``numpy.argsort`` on
it, which reproduces torchreid's choice on the same machine.
"""
import numpy as np
import torch
import torch.nn.functional as F

from . import rerank_kernel
from .rank import DEFAULT_MEMORY_BUDGET, _as_tensor, serial_torch

__all__ = ["rerank", "rerank_features"]

# torch path: working memory per element of a block of distance columns beyond two copies of it (topk's output
# and scratch)
_TOPK_BYTES = 8
# Working memory per query-gallery-item triple of the Jaccard step, in bytes (indices and values).
_TRIPLE_BYTES = 64
# Largest distance tile offered to the CPU kernel, and largest working set of the sparse steps' chunks: small
# enough to stay in cache (each is also capped by the memory budget).
_TILE_BYTES = 16 * 2 ** 20
_CHUNK_BYTES = 16 * 2 ** 20


def rerank(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3, *, memory_budget=DEFAULT_MEMORY_BUDGET,
           device=None):
    """k-reciprocal re-ranking with torchreid's ``re_ranking`` signature and result, in bounded memory.

    The distances are squared, each column of the concatenated ``[[q_q, q_g], [q_g^T, g_g]]``
    matrix is divided by its maximum, and the final distance is
    ``(1 - lambda_value) * Jaccard + lambda_value * normalised distance`` (torchreid's formulation of
    Zhong et al., CVPR 2017). On CPU the result equals torchreid's ``re_ranking`` bit for bit,
    including its choice among exactly tied neighbours (see the module docstring).

    Args:
        q_g_dist (numpy.ndarray or torch.Tensor): query-gallery distances ``[q, g]``.
        q_q_dist: query-query distances ``[q, q]``.
        g_g_dist: gallery-gallery distances ``[g, g]`` (a ``numpy.memmap`` is read block by block).
        k1 (int): size of the k-reciprocal neighbourhoods (``k1 + 1`` nearest, self included).
        k2 (int): number of nearest neighbours averaged in the query expansion (1: none).
        lambda_value (float): weight of the original distance.
        memory_budget (int): bytes of working memory per block of distance columns or chunk of
            queries, beyond the inputs, the output and the O((q+g) k1 k2) sparse neighbourhoods.
        device (str or torch.device, optional): where to compute (default: the device of
            ``q_g_dist``; numpy arrays: CPU).

    Returns:
        numpy.ndarray or torch.Tensor: float32 re-ranked distances ``[q, g]``, a numpy array for
        numpy input, else a tensor on ``q_g_dist``'s device.

    Raises:
        ValueError: on inconsistent shapes, non-finite distances, bad parameters, or an item at
            distance 0 from every item (torchreid would return NaN).

    Examples::

        >>> import numpy as np
        >>> f = np.random.default_rng(0).standard_normal((30, 4)).astype(np.float32)
        >>> d = ((f[:, None] - f[None]) ** 2).sum(-1)
        >>> rerank(d[:10, 10:], d[:10, :10], d[10:, 10:], k1=5, k2=2).shape
        (10, 20)
    """
    as_numpy = not isinstance(q_g_dist, torch.Tensor)
    qg, qq, gg = (_as_tensor(x) for x in (q_g_dist, q_q_dist, g_g_dist))
    if qg.dim() != 2 or qq.dim() != 2 or gg.dim() != 2:
        raise ValueError(f"rerank: distances must be 2-D, got q_g_dist {tuple(qg.shape)}, q_q_dist "
                         f"{tuple(qq.shape)}, g_g_dist {tuple(gg.shape)}")
    q, g = qg.shape
    if tuple(qq.shape) != (q, q) or tuple(gg.shape) != (g, g):
        raise ValueError(f"rerank: q_g_dist is {q} x {g}, so q_q_dist must be {q} x {q} and g_g_dist {g} x {g}; "
                         f"got {tuple(qq.shape)} and {tuple(gg.shape)}")
    out_device = qg.device
    device = torch.device(device) if device is not None else out_device
    out = _rerank(_DenseDistances(qg, qq, gg, device), k1, k2, lambda_value, memory_budget, device, out_device)
    return out.numpy() if as_numpy else out


def rerank_features(qf, gf, k1=20, k2=6, lambda_value=0.3, *, metric="euclidean",
                    memory_budget=DEFAULT_MEMORY_BUDGET, device=None):
    """:func:`rerank` of the distances between features, computed block by block, never as a whole.

    Equals ``rerank(D(qf, gf), D(qf, qf), D(gf, gf))`` with ``D`` torchreid's
    ``compute_distance_matrix`` up to the rounding of the distances, which here are computed per
    tile of items as one matrix product each (the symmetric matrix's upper triangle only). Memory: the features, the
    ``[q, g]`` output and the sparse neighbourhoods plus ``memory_budget``, so MSMT17-sized test
    sets (93,820 images, a 35 GB dense distance matrix) are re-ranked in a few GB.

    Args:
        qf (torch.Tensor): query features ``[q, d]``.
        gf (torch.Tensor): gallery features ``[g, d]``.
        k1, k2, lambda_value, memory_budget: as in :func:`rerank`.
        metric (str): ``'euclidean'`` (squared, as torchreid) or ``'cosine'``.
        device (str or torch.device, optional): where to compute (default: ``qf``'s device).

    Returns:
        torch.Tensor: float32 re-ranked distances ``[q, g]`` on ``qf``'s device.
    """
    qf, gf = _as_tensor(qf), _as_tensor(gf)
    if qf.dim() != 2 or gf.dim() != 2 or qf.shape[1] != gf.shape[1]:
        raise ValueError(f"rerank_features: features must be 2-D with one dimension, got qf {tuple(qf.shape)} and "
                         f"gf {tuple(gf.shape)}")
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"rerank_features: unknown metric {metric!r}; choose 'euclidean' or 'cosine'")
    out_device = qf.device
    device = torch.device(device) if device is not None else out_device
    return _rerank(_FeatureDistances(qf, gf, metric, device), k1, k2, lambda_value, memory_budget, device,
                   out_device)


# ---------------------------------------------------------------------------------------- sources

def _distance_dtype(*tensors):
    """The dtype numpy's concatenation gives (integers: float64, which squares them exactly below 2^26)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype.is_complex or dtype == torch.bool:
        raise ValueError(f"rerank: unsupported distance dtype {dtype}")
    return dtype if dtype.is_floating_point else torch.float64


class _DenseDistances:
    """Columns of the concatenated ``[[qq, qg], [qg^T, gg]]`` matrix ``D``, read from the three inputs."""

    symmetric = False

    def __init__(self, qg, qq, gg, device):
        self.qg, self.qq, self.gg = qg, qq, gg
        self.q, self.g = qg.shape
        self.n = self.q + self.g
        self.dtype = _distance_dtype(qg, qq, gg)
        self.device = device

    def columns_at(self, items):
        """``D[:, items]`` transposed: ``[len(items), n]``, row r the distances of every item to item ``items[r]``."""
        q, src = self.q, self.qg.device
        items = items.to(src)
        out = torch.empty((items.numel(), self.n), dtype=self.dtype, device=src)
        is_q = items < q
        if bool(is_q.any()):  # a query's column: qq's column, then qg's row
            a = items[is_q]
            out[is_q, :q] = self.qq.index_select(1, a).t().to(self.dtype)
            out[is_q, q:] = self.qg.index_select(0, a).to(self.dtype)
        if bool((~is_q).any()):  # a gallery item's column: qg's column, then gg's column
            b = items[~is_q] - q
            out[~is_q, :q] = self.qg.index_select(1, b).t().to(self.dtype)
            out[~is_q, q:] = self.gg.index_select(1, b).t().to(self.dtype)
        return out.to(self.device)

    def tiles(self, memory_budget):
        """Row blocks of the inputs for :class:`NearestTracker`: ``(tile, row_base, col_base, columns, rows)``."""
        q = self.q
        for matrix, row_base, col_base, rows in ((self.qq, 0, 0, False), (self.qg, 0, q, True),
                                                 (self.gg, q, q, False)):
            step = max(1, min(int(memory_budget), _TILE_BYTES) // max(1, matrix.shape[1] * 8))
            for r0 in range(0, matrix.shape[0], step):
                # qg's rows are also the query items' distances to the gallery (D[q + j, i] = qg[i, j])
                yield _numpy(matrix[r0:r0 + step], _kernel_dtype(self.dtype)), row_base + r0, col_base, True, rows

    def pairs(self, cols, items, memory_budget=None):
        """``D[items, cols]`` (the distance of each item to each column's item), on the compute device."""
        q, src = self.q, self.qg.device
        cols, items = cols.to(src), items.to(src)
        out = torch.empty(cols.numel(), dtype=self.dtype, device=src)
        qi, qc = items < q, cols < q
        for mask, matrix, rows, columns in (
                (qi & qc, self.qq, items, cols),
                (qi & ~qc, self.qg, items, cols - q),
                (~qi & qc, self.qg, cols, items - q),  # D[q + j, i] = qg[i, j]
                (~qi & ~qc, self.gg, items - q, cols - q)):
            if bool(mask.any()):
                out[mask] = matrix[rows[mask], columns[mask]].to(self.dtype)
        return out.to(self.device)

    def query_gallery(self, a, b):
        """``D[q:, a:b]`` transposed, i.e. ``qg[a:b]``: ``[b - a, g]``."""
        return self.qg[a:b].to(device=self.device, dtype=self.dtype)


class _FeatureDistances:
    """Columns of the distance matrix ``D`` of ``cat([qf, gf])``, computed block by block.

    torchreid's distances as one matrix product each: squared Euclidean ``|a|^2 + |b|^2 - 2 a.b`` is
    ``[a, |a|^2, 1] . [-2 b, 1, |b|^2]``, cosine ``1 - u.v`` (unit vectors) is ``[u, 1] . [-v, 1]``.
    """

    symmetric = True

    def __init__(self, qf, gf, metric, device):
        feats = torch.cat([qf, gf]).to(device)
        if not feats.is_floating_point() or feats.dtype in (torch.float16, torch.bfloat16):
            feats = feats.float()
        one = torch.ones(feats.shape[0], 1, dtype=feats.dtype, device=device)
        if metric == "cosine":
            unit = F.normalize(feats, p=2, dim=1)
            self.left, self.right = torch.cat([unit, one], 1), torch.cat([-unit, one], 1)
        else:
            norm = (feats * feats).sum(1, keepdim=True)
            self.left, self.right = torch.cat([feats, norm, one], 1), torch.cat([-2 * feats, one, norm], 1)
        self.q, self.g = qf.shape[0], gf.shape[0]
        self.n = self.q + self.g
        self.dtype = feats.dtype
        self.device = device
        self.store = None  # [q, g] float32: tiles() keeps the query-gallery distances there, for query_gallery

    def keep_query_gallery(self):
        """Have :meth:`tiles` keep the query-gallery distances it computes (float32 only); returns the store."""
        if self.dtype == torch.float32:
            self.store = torch.empty((self.q, self.g), dtype=torch.float32, device=self.device)
        return self.store

    def _block(self, rows, cols):
        return self.left[rows] @ self.right[cols].t()

    def columns_at(self, items):
        return self._block(items.to(self.device), slice(None))

    def tiles(self, memory_budget):
        """Upper-triangle tiles ``D[I, J]`` (I <= J), each offered to both its row and its column items."""
        side = max(1, int(np.sqrt(min(int(memory_budget), _TILE_BYTES) / 8)))
        for r0 in range(0, self.n, side):
            for c0 in range(r0, self.n, side):
                tile = self._block(slice(r0, r0 + side), slice(c0, c0 + side))
                q_rows, g_col = min(side, self.q - r0), max(c0, self.q)
                if self.store is not None and q_rows > 0 and g_col < c0 + tile.shape[1]:
                    self.store[r0:r0 + q_rows, g_col - self.q:c0 + tile.shape[1] - self.q] = tile[:q_rows, g_col - c0:]
                yield _numpy(tile, _kernel_dtype(self.dtype)), r0, c0, True, c0 != r0

    def pairs(self, cols, items, memory_budget):
        """The distance of each item to each column's item, in cache-sized chunks of pairs."""
        step = _chunk_rows(memory_budget, 2 * 4 * self.left.shape[1])
        out = [(self.left[cols[s:s + step].to(self.device)] * self.right[items[s:s + step].to(self.device)]).sum(1)
               for s in range(0, cols.numel(), step)]
        return torch.cat(out) if out else self.left.new_zeros(0)

    def query_gallery(self, a, b):
        if self.store is not None:
            return self.store[a:b]
        return self._block(slice(a, b), slice(self.q, None))


def _numpy(tensor, dtype):
    """A C-contiguous numpy array of ``tensor`` in ``dtype`` (a view where nothing needs converting)."""
    return tensor.to(device="cpu", dtype=dtype).contiguous().numpy()


def _kernel_dtype(dtype):
    """float64 stays; float32 and half precision (widened exactly) go to the kernels as float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# ---------------------------------------------------------------------------------------- algorithm

def _square32(x):
    """torchreid's ``np.power(d, 2).astype(np.float32)``: squared in the distances' dtype, then float32."""
    return (x * x).to(torch.float32)


def _rerank(source, k1, k2, lambda_value, memory_budget, device, out_device):
    k1, k2 = int(k1), int(k2)
    if k1 < 0 or k2 < 1:
        raise ValueError(f"rerank: need k1 >= 0 and k2 >= 1, got k1={k1}, k2={k2}")
    n, q = source.n, source.q
    if q == 0 or source.g == 0:
        raise ValueError(f"rerank: need at least one query and one gallery item, got {q} and {source.g}")
    m1 = min(k1 + 1, n)                          # k-reciprocal neighbourhood size (self included)
    m2 = min(int(np.around(k1 / 2.0)) + 1, n)    # the expansion's neighbourhood size
    m3 = min(k2, n)                              # query expansion size
    if _use_kernel(device) and hasattr(source, "keep_query_gallery"):
        source.keep_query_gallery()
    top, col_max = _neighbourhoods(source, (m1, m2, m3), memory_budget, device, expansion_order=k2 != 1)
    with serial_torch(device) as workers:  # cache-sized chunks of small torch ops; kernels on `workers` threads
        rows, cols = _expansion(top, m1, m2, memory_budget)
        dist = _square32(source.pairs(rows, cols, memory_budget)) / col_max[rows]
        vals = _encoding_weights(dist, rows, n)
        if k2 != 1:
            rows, cols, vals = _query_expansion(rows, cols, vals, top[:, :m3], n, memory_budget)
        index = _inverted_index(rows, cols, vals, q, n)
        return _final_distances(source, index, col_max, lambda_value, memory_budget, device, out_device, workers)


def _use_kernel(device):
    return device.type == "cpu" and rerank_kernel.available()


def _candidates(source, size, memory_budget, device):
    """Each item's ``size`` smallest distance magnitudes in its column of ``D`` (any choice among ties at the
    last one), and the column's largest magnitude: (indices ``[n, size]``, magnitudes, largest ``[n]``)."""
    n = source.n
    if _use_kernel(device):
        dtype = np.float64 if _kernel_dtype(source.dtype) == torch.float64 else np.float32
        tracker = rerank_kernel.NearestTracker(n, size, dtype, workers=torch.get_num_threads())
        try:
            for tile, row_base, col_base, columns, rows in source.tiles(memory_budget):
                tracker.offer(tile, row_base, col_base, columns=columns, rows=rows)
        finally:
            tracker.close()
        idx, mag, col_max = (torch.from_numpy(a) for a in tracker.result())
        return idx, mag.to(source.dtype), col_max.to(source.dtype)
    itemsize = torch.empty((), dtype=source.dtype).element_size()
    step = max(1, int(memory_budget) // (n * (2 * itemsize + _TOPK_BYTES)))
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


def _neighbourhoods(source, sizes, memory_budget, device, expansion_order=True):
    """torchreid's ``initial_rank`` prefixes, and its row normalisers.

    Args:
        sizes (tuple): (m1, m2, m3), the prefixes' lengths: k-reciprocal sets, their expansion, the
            query expansion.
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
    idx, mag, col_max = (t.to(device) for t in _candidates(source, min(n, length + 1), memory_budget, device))
    col_max = _square32(col_max)  # max of the squares = square of the largest magnitude (rounding is monotone)
    _check_columns(col_max)
    value, order = torch.sort(_square32(mag) / col_max[:, None], dim=1, stable=True)
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
        rows = (_square32(source.columns_at(items)) / col_max[items, None]).cpu().numpy()
        top[items] = torch.from_numpy(np.argsort(rows)[:, :length].astype(np.int64)).to(device)
    return top, col_max


def _check_columns(col_max):
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


def _reciprocal(near, chunk):
    """``mask[i, a]``: whether ``i`` is among the neighbours of its neighbour ``near[i, a]``."""
    n = near.shape[0]
    out = torch.empty(near.shape, dtype=torch.bool, device=near.device)
    for r0 in range(0, n, chunk):
        r1 = min(r0 + chunk, n)
        own = torch.arange(r0, r1, device=near.device)[:, None, None]
        out[r0:r1] = (near[near[r0:r1]] == own).any(-1)
    return out


def _expansion(top, m1, m2, memory_budget):
    """Each item's expanded k-reciprocal set ``R*(i)`` as (row, column) pairs sorted by row then column.

    ``R(i)``: the ``m1`` nearest of i that have i among their ``m1`` nearest. Each ``c`` in ``R(i)``
    adds its own ``R_half(c)`` (same with ``m2``) when more than 2/3 of it lies in ``R(i)``
    (torchreid's float64 test ``|R_half(c) & R(i)| > 2/3 * |R_half(c)|``).
    """
    n = top.shape[0]
    near1, near2 = top[:, :m1], top[:, :m2]
    chunk = _chunk_rows(memory_budget, m1 * m1 * 9)
    recip1, recip2 = _reciprocal(near1, chunk), _reciprocal(near2, chunk)
    in_r = torch.where(recip1, near1, -1)  # R(i), padded with -1
    half_size = recip2.sum(1).double()
    chunk = _chunk_rows(memory_budget, m1 * m2 * (m1 + 40))
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


def _chunk_rows(memory_budget, bytes_per_row):
    """Rows per chunk: within the budget and small enough for the working set to stay in cache."""
    return max(1, min(int(memory_budget), _CHUNK_BYTES) // max(1, int(bytes_per_row)))


def _segments(counts):
    """For segments of the given lengths: each element's segment and its position inside it."""
    seg = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    start = torch.cumsum(counts, 0) - counts
    return seg, torch.arange(seg.numel(), device=counts.device) - start[seg]


def _query_expansion(rows, cols, vals, near, n, memory_budget):
    """torchreid's ``V_qe[i] = mean(V[initial_rank[i, :k2]], axis=0)`` on sparse rows, bit for bit.

    numpy adds the k2 rows one after the other in float32, in ``initial_rank``'s order, then divides
    by k2; so does this (absent entries are zeros, which leave a float32 sum unchanged).
    """
    device = rows.device
    m3 = near.shape[1]
    nnz = torch.bincount(rows, minlength=n)
    ptr = torch.cumsum(nnz, 0) - nnz
    per_row = nnz[near].sum(1)  # entries gathered for each row
    bounds = _chunk_bounds(per_row, min(int(memory_budget), _CHUNK_BYTES) // 64)
    out_rows, out_cols, out_vals = [], [], []
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        src = near[r0:r1].reshape(-1)
        entry, offset = _segments(nnz[src])
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


def _encoding_weights(dist, rows, n):
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
            total[which] = _numpy_pairwise_sum(block)
    return weight / total[rows]


def _numpy_pairwise_sum(x):
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
    return _numpy_pairwise_sum(x[:, :half]) + _numpy_pairwise_sum(x[:, half:])


def _chunk_bounds(cost, budget):
    """Boundaries ``[0, ..., len(cost)]`` of consecutive chunks whose summed cost stays within ``budget``
    (a single item may exceed it)."""
    total = torch.cumsum(cost, 0).cpu()
    bounds, start, base = [0], 0, 0
    num = total.numel()
    while start < num:
        stop = int(torch.searchsorted(total, base + max(int(budget), 1), right=True))
        stop = max(stop, start + 1)
        bounds.append(stop)
        start, base = stop, int(total[stop - 1])
    return bounds


def _inverted_index(rows, cols, vals, q, n):
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


def _final_distances(source, index, col_max, lambda_value, memory_budget, device, out_device, workers=1):
    """``(1 - lambda) * Jaccard + lambda * normalised distance`` for every query-gallery pair, chunk by chunk.

    Jaccard: ``1 - t / (2 - t)`` with ``t[i, j] = sum_k min(V[i, k], V[j, k])``, summed over the
    inverted index of the gallery items' entries (column k -> the gallery items with an entry there).
    """
    q, g = source.q, source.g
    keep, mix = float(np.float32(1 - lambda_value)), float(np.float32(lambda_value))  # numpy's float32 scalars
    q_ptr, col_ptr = index["q_ptr"].cpu(), index["col_ptr"]
    if _use_kernel(device):
        result = getattr(source, "store", None)  # the query-gallery distances, re-ranked in place
        result = torch.empty((q, g), dtype=torch.float32) if result is None else result
        arrays = {k: v.numpy() for k, v in index.items()}
        step = _chunk_rows(memory_budget, 8 * g)
        for a in range(0, q, step):
            b = min(a + step, q)
            dist, squared = source.query_gallery(a, b), False
            if dist.dtype not in (torch.float32, torch.float64):  # half precision: squared as torchreid does
                dist, squared = _square32(dist), True
            e0 = int(q_ptr[a])
            rerank_kernel.final_distances(
                _numpy(dist, dist.dtype), squared, col_max[a:b].numpy(), (q_ptr[a:b + 1] - e0).numpy(),
                arrays["q_cols"][e0:], arrays["q_vals"][e0:], arrays["col_ptr"], arrays["g_items"],
                arrays["g_vals"], keep, mix, result[a:b].numpy(), workers=workers)
        return result.to(out_device)
    col_count = col_ptr[1:] - col_ptr[:-1]
    q_count = q_ptr[1:] - q_ptr[:-1]
    q_rows = torch.repeat_interleave(torch.arange(q, device=device), q_count.to(device))
    triples = torch.zeros(q, dtype=torch.int64, device=device).index_add_(0, q_rows, col_count[index["q_cols"]])
    bounds = _chunk_bounds(triples, min(int(memory_budget), _CHUNK_BYTES) // _TRIPLE_BYTES)
    bounds = sorted(set(bounds) | set(range(0, q, _chunk_rows(memory_budget, 16 * g))) | {q})
    out = torch.empty((q, g), dtype=torch.float32, device=out_device)
    for a, b in zip(bounds[:-1], bounds[1:]):
        e0, e1 = int(q_ptr[a]), int(q_ptr[b])
        i, k, v = q_rows[e0:e1], index["q_cols"][e0:e1], index["q_vals"][e0:e1]
        entry, offset = _segments(col_count[k])
        pos = col_ptr[k][entry] + offset
        shared = torch.zeros((b - a) * g, dtype=torch.float32, device=device)
        shared.index_add_(0, (i[entry] - a) * g + index["g_items"][pos], torch.minimum(v[entry], index["g_vals"][pos]))
        del entry, offset, pos
        shared = shared.view(b - a, g)
        jaccard = 1 - shared / (2.0 - shared)
        original = _square32(source.query_gallery(a, b)) / col_max[a:b, None]
        out[a:b] = (jaccard * keep + original * mix).to(out_device)
    return out
