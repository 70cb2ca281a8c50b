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

from . import rerank_kernel
from .device_ops import as_tensor, serial_torch
from .rank import DEFAULT_MEMORY_BUDGET
from .rerank_encoding import encoding_weights, final_distances, inverted_index, query_expansion
from .rerank_neighbours import expansion, neighbourhoods
from .rerank_sources import DenseDistances, FeatureDistances, square32

__all__ = ["rerank", "rerank_features"]


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
    qg, qq, gg = (as_tensor(x) for x in (q_g_dist, q_q_dist, g_g_dist))
    if qg.dim() != 2 or qq.dim() != 2 or gg.dim() != 2:
        raise ValueError(f"rerank: distances must be 2-D, got q_g_dist {tuple(qg.shape)}, q_q_dist "
                         f"{tuple(qq.shape)}, g_g_dist {tuple(gg.shape)}")
    q, g = qg.shape
    if tuple(qq.shape) != (q, q) or tuple(gg.shape) != (g, g):
        raise ValueError(f"rerank: q_g_dist is {q} x {g}, so q_q_dist must be {q} x {q} and g_g_dist {g} x {g}; "
                         f"got {tuple(qq.shape)} and {tuple(gg.shape)}")
    out_device = qg.device
    device = torch.device(device) if device is not None else out_device
    out = _rerank(DenseDistances(qg, qq, gg, device), k1, k2, lambda_value, memory_budget, device, out_device)
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
    qf, gf = as_tensor(qf), as_tensor(gf)
    if qf.dim() != 2 or gf.dim() != 2 or qf.shape[1] != gf.shape[1]:
        raise ValueError(f"rerank_features: features must be 2-D with one dimension, got qf {tuple(qf.shape)} and "
                         f"gf {tuple(gf.shape)}")
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"rerank_features: unknown metric {metric!r}; choose 'euclidean' or 'cosine'")
    out_device = qf.device
    device = torch.device(device) if device is not None else out_device
    return _rerank(FeatureDistances(qf, gf, metric, device), k1, k2, lambda_value, memory_budget, device,
                   out_device)


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
    kernel = _use_kernel(device)
    if kernel and hasattr(source, "keep_query_gallery"):
        source.keep_query_gallery()
    top, col_max = neighbourhoods(source, (m1, m2, m3), memory_budget, device, kernel, expansion_order=k2 != 1)
    with serial_torch(device) as workers:  # cache-sized chunks of small torch ops; kernels on `workers` threads
        rows, cols = expansion(top, m1, m2, memory_budget)
        dist = square32(source.pairs(rows, cols, memory_budget)) / col_max[rows]
        vals = encoding_weights(dist, rows, n)
        if k2 != 1:
            rows, cols, vals = query_expansion(rows, cols, vals, top[:, :m3], n, memory_budget)
        index = inverted_index(rows, cols, vals, q, n)
        return final_distances(source, index, col_max, lambda_value, memory_budget, device, out_device, kernel,
                               workers)


def _use_kernel(device):
    """Whether the Numba kernels do the candidate pass and the final distances (CPU, Numba installed)."""
    return device.type == "cpu" and rerank_kernel.available()
