"""Fast exact CMC / mAP / mINP evaluation with torchreid's ranking protocol, by counting instead of argsorting.

torchreid's ``eval_market1501`` argsorts every row of the distance matrix and walks the queries in
Python. The metrics only need the rank position of each *positive* gallery item (same identity, other
camera) among the *kept* items (all but same-identity same-camera ones). On CPU a compiled kernel
(:mod:`~torchreid_dense.metrics.rank_kernel`) counts, for each positive, the gallery items before it
with one vectorised pass over the query's row, which stays in cache across the positives: the
distance matrix is read about once. Elsewhere (GPU; CPU without Numba) each row's distance *values*
are sorted (no index permutation) and a batched binary search finds how many items are nearer
than each positive. Either count is corrected for exact ties and for the removed items (a handful
per query). CMC (first positive), AP (``mean_j (j+1) / rank_j`` over the positives in rank order, as
torchreid) and mINP (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook",
TPAMI 2021: ``num_pos / rank_hardest``) follow from those ranks with torch ops on the input's device.

Parts: :mod:`~torchreid_dense.metrics.positives` (the positives' ranks), :mod:`~torchreid_dense.metrics.cuhk03`
(the CUHK03 draws), :mod:`~torchreid_dense.metrics.device_ops` (row sorts and threads per device).
"""
import numpy as np
import torch

from . import device_ops
from .cuhk03 import CUHK03_REPEATS, cuhk03_cmc
from .device_ops import RowSorter, as_tensor, serial_torch
from .positives import MatchIndex, positive_ranks

__all__ = ["evaluate_rank", "CUHK03_REPEATS"]

# Default working-memory budget of one query chunk, in bytes.
DEFAULT_MEMORY_BUDGET = 256 * 2 ** 20

# Working memory per (query, gallery) element of a chunk, in bytes, besides a dtype conversion copy:
# a sorted copy of the row (one distance; numpy sorts in place on CPU), plus with torch.sort (GPU)
# its int64 index output and scratch.
_EXTRA_BYTES_PER_ELEMENT = {"numpy": 1, "torch": 8 + 8}
# CUHK03 mode also argsorts each row and regroups it by identity (about six int64 [C, G] buffers).
_EXTRA_BYTES_PER_ELEMENT_CUHK03 = 56


def evaluate_rank(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank=50,
    use_metric_cuhk03=False,
    use_cython=True,
    *,
    return_minp=False,
    chunk_size=None,
    memory_budget=DEFAULT_MEMORY_BUDGET,
):
    """CMC and mAP (and optionally mINP) with torchreid's exact protocol, vectorised and chunked.

    Drop-in for ``torchreid.metrics.evaluate_rank``: same positional and keyword arguments, and by
    default the same ``(cmc, mAP)`` return value (``cmc, mAP = evaluate_rank(...)`` as torchreid's
    engine does). For each query the gallery items with the query's identity *and* camera are
    removed, queries without any remaining match are skipped, and CMC, AP (and INP) are averaged
    over the remaining ("valid") queries.

    Tie rule: gallery items at equal distance are ranked by ascending gallery index (the order of a
    stable sort). torchreid uses ``np.argsort`` (quicksort, not stable), whose order among ties is
    unspecified, so results agree with torchreid whenever they do not depend on the order of tied
    items -- in particular whenever the distances are distinct.

    CUHK03 mode (``use_metric_cuhk03=True``, single-gallery-shot): CMC is averaged over
    ``CUHK03_REPEATS`` = 10 random draws of one gallery image per identity, exactly as torchreid's
    ``eval_cuhk03`` does, and consumes the global ``np.random`` stream in exactly the same way: one
    ``np.random.randint`` call over all draws of a chunk, equivalent to torchreid's
    ``np.random.choice(idxs)`` per identity (a ``randint(0, len(idxs))``; nothing is drawn for an
    identity with one kept image), in its order: valid queries in order, 10 repeats each, identities
    in order of first appearance in the query's ranking. With the same ``np.random`` seed and distinct
    distances the CMC therefore equals torchreid's. This mode also argsorts each gallery row (stably;
    CUHK03 galleries are small); mAP and mINP are the same as in the default mode.

    Cost: on CPU, one vectorised counting pass over each query's row per positive (the row in cache;
    split over ``torch.get_num_threads()`` threads; rows with more than 128 positives are value-sorted
    instead); on GPU one ``torch.sort`` of each row's values; plus work proportional to the number of
    positives and removed items. No index permutation is built. The small torch ops run on one
    thread meanwhile (restored afterwards).

    The CMC has as many entries as torchreid's: ``max_rank`` capped at the number of gallery items
    (in CUHK03 mode: identities) that the valid queries keep after the removal, taking the largest
    such number over the valid queries. Where queries keep different numbers below ``max_rank`` --
    a case in which torchreid fails on a ragged array -- the shorter curves are continued with 1, the
    value they have reached.

    Args:
        distmat (numpy.ndarray or torch.Tensor): distances ``[num_query, num_gallery]`` (smaller is
            more similar); NaN is rejected. CUDA tensors are evaluated on their device.
        q_pids, g_pids (array-like): integer identities of the query / gallery items.
        q_camids, g_camids (array-like): integer camera ids of the query / gallery items.
        max_rank (int): length of the CMC curve (capped at ``num_gallery``). Default 50.
        use_metric_cuhk03 (bool): CUHK03 single-gallery-shot CMC (classic CUHK03 split).
        use_cython (bool): accepted for signature compatibility with torchreid; has no effect.
        return_minp (bool): also return mINP (keyword only). Default False.
        chunk_size (int, optional): queries per chunk; by default derived from ``memory_budget``.
        memory_budget (int): working-memory budget of one chunk in bytes (default 256 MiB: where rows
            are sorted, one sorted float32 copy of up to ~16M distances, e.g. all of Market-1501's;
            the CPU counting kernel needs no copy). The input
            distance matrix itself is not copied unless its dtype must be converted, which happens
            chunk by chunk (half precision to float32, integers to float64).

    Returns:
        tuple: ``(cmc, mAP)``, or ``(cmc, mAP, mINP)`` with ``return_minp=True``, where ``cmc`` is a
        float32 ``numpy.ndarray`` with ``cmc[r-1]`` the rank-r matching rate, and ``mAP`` and ``mINP``
        are Python floats in [0, 1].

    Raises:
        ValueError: on inconsistent shapes or NaN distances.
        AssertionError: when no query has a match in the gallery (as torchreid).

    Examples::

        >>> import numpy as np
        >>> d = np.array([[0.1, 0.5, 0.3], [0.4, 0.2, 0.9]], dtype=np.float32)
        >>> cmc, mAP, mINP = evaluate_rank(d, np.array([1, 2]), np.array([2, 1, 1]),
        ...                                np.array([0, 0]), np.array([1, 1, 1]), max_rank=3,
        ...                                return_minp=True)
        >>> cmc.tolist(), round(mAP, 4), round(mINP, 4)  # positives at ranks (2, 3) and (2,)
        ([0.0, 1.0, 1.0], 0.5417, 0.5833)
    """
    del use_cython
    dist, q_pids, g_pids, q_camids, g_camids = _prepare(distmat, q_pids, g_pids, q_camids, g_camids)
    with serial_torch(dist.device) as workers:
        return _evaluate(dist, q_pids, g_pids, q_camids, g_camids, max_rank, use_metric_cuhk03, return_minp,
                         chunk_size, memory_budget, workers)


def _evaluate(dist, q_pids, g_pids, q_camids, g_camids, max_rank, use_metric_cuhk03, return_minp, chunk_size,
              memory_budget, workers):
    """The body of :func:`evaluate_rank` on prepared tensors; ``workers`` threads for the CPU kernels and sorts."""
    num_q, num_g = dist.shape
    length = min(int(max_rank), num_g)
    if length < 1:
        raise ValueError(f"evaluate_rank: max_rank must be >= 1 and the gallery non-empty, got max_rank={max_rank}, "
                         f"num_gallery={num_g}")
    compute_dtype = _compute_dtype(dist.dtype)
    if chunk_size is None:
        itemsize = torch.empty((), dtype=compute_dtype).element_size()
        per_element = itemsize * (2 if compute_dtype != dist.dtype else 1)
        per_element += _EXTRA_BYTES_PER_ELEMENT["numpy" if device_ops.numpy_sorts(dist.device) else "torch"]
        if use_metric_cuhk03:
            per_element += _EXTRA_BYTES_PER_ELEMENT_CUHK03
        chunk_size = max(1, int(memory_budget) // (per_element * num_g))
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"evaluate_rank: chunk_size must be >= 1, got {chunk_size}")

    matches = MatchIndex(g_pids)
    sorter = RowSorter(workers)
    g_labels = matches.labels if use_metric_cuhk03 else None
    num_valid = 0
    cmc_len = 0  # longest CMC a valid query supports (kept items, or kept identities in CUHK03 mode)
    ap_sum = 0.0
    inp_sum = 0.0
    # market mode: number of valid queries whose first positive is at each 0-based rank (last bin: >= length)
    first_hist = torch.zeros(length + 1, dtype=torch.int64, device=dist.device)
    cmc_sum32 = np.zeros(length, dtype=np.float32)  # CUHK03 mode: float32 running sum, as torchreid
    for start in range(0, num_q, chunk_size):
        stop = min(start + chunk_size, num_q)
        d = dist[start:stop].to(compute_dtype)
        qp, qc = q_pids[start:stop], q_camids[start:stop]
        rows, cols = matches.pairs(qp)
        removed = qc[rows] == g_camids[cols]
        ranks, num_pos = positive_ranks(d, rows[~removed], cols[~removed], rows[removed], cols[removed],
                                         sorter, memory_budget, workers)
        valid = num_pos > 0
        n_valid = int(valid.sum())
        if n_valid == 0:
            continue
        num_valid += n_valid
        ranks, n = ranks[valid].double(), num_pos[valid]
        j = torch.arange(1, ranks.shape[1] + 1, dtype=torch.float64, device=d.device)
        in_row = j[None, :] <= n[:, None]
        ap_sum += float(((j / ranks) * in_row).sum(1).div(n).sum())
        inp_sum += float((n / ranks.gather(1, (n - 1)[:, None]).squeeze(1)).sum())
        if use_metric_cuhk03:
            cmc_sum32, num_ids = cuhk03_cmc(d, valid, g_labels, matches.label_of(qp), rows[removed], cols[removed],
                                             length, cmc_sum32)
            cmc_len = max(cmc_len, num_ids)
        else:
            num_kept = num_g - torch.bincount(rows[removed], minlength=stop - start)
            cmc_len = max(cmc_len, int(num_kept[valid].max()))
            first = (ranks[:, 0].long() - 1).clamp_(max=length)
            first_hist += torch.bincount(first, minlength=length + 1)

    if num_valid == 0:
        raise AssertionError("Error: all query identities do not appear in gallery (no query has a gallery "
                             "item of its identity from another camera); check q_pids/g_pids and the camera ids")
    length = min(length, cmc_len)
    if use_metric_cuhk03:
        cmc = cmc_sum32[:length] / np.float32(num_valid)
    else:
        counts = torch.cumsum(first_hist, 0)[:length].cpu().numpy().astype(np.float32)
        cmc = counts / np.float32(num_valid)
    mAP = ap_sum / num_valid
    if return_minp:
        return cmc, mAP, inp_sum / num_valid
    return cmc, mAP


def _prepare(distmat, q_pids, g_pids, q_camids, g_camids):
    """Distance matrix as a tensor and the ids as int64 tensors on its device, with shape checks."""
    dist = as_tensor(distmat)
    if dist.dim() != 2:
        raise ValueError(f"evaluate_rank: distmat must be 2-D [num_query, num_gallery], got shape {tuple(dist.shape)}")
    num_q, num_g = dist.shape
    out = [dist]
    for name, ids, size in (("q_pids", q_pids, num_q), ("g_pids", g_pids, num_g),
                            ("q_camids", q_camids, num_q), ("g_camids", g_camids, num_g)):
        t = as_tensor(ids).reshape(-1)
        if t.numel() != size:
            raise ValueError(f"evaluate_rank: {name} has {t.numel()} entries but distmat {tuple(dist.shape)} "
                             f"needs {size}")
        if t.is_floating_point() or t.is_complex():
            raise ValueError(f"evaluate_rank: {name} must hold integers, got dtype {t.dtype}")
        out.append(t.to(device=dist.device, dtype=torch.int64))
    return tuple(out)


def _compute_dtype(dtype):
    """float32/float64 stay; half precision widens to float32 and integers to float64 (exact, same order)."""
    if dtype in (torch.float32, torch.float64):
        return dtype
    if dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    if dtype.is_floating_point or dtype.is_complex:
        raise ValueError(f"evaluate_rank: unsupported distmat dtype {dtype}")
    return torch.float64
