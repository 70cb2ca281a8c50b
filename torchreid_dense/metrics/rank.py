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
"""
import contextlib
from concurrent.futures import ThreadPoolExecutor
import warnings

import numpy as np
import torch

from . import rank_kernel

__all__ = ["evaluate_rank", "CUHK03_REPEATS"]

# Random single-gallery-shot draws per query in CUHK03 mode (torchreid's ``num_repeats``).
CUHK03_REPEATS = 10

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
        per_element += _EXTRA_BYTES_PER_ELEMENT["numpy" if _numpy_sorts(dist.device) else "torch"]
        if use_metric_cuhk03:
            per_element += _EXTRA_BYTES_PER_ELEMENT_CUHK03
        chunk_size = max(1, int(memory_budget) // (per_element * num_g))
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"evaluate_rank: chunk_size must be >= 1, got {chunk_size}")

    matches = _MatchIndex(g_pids)
    sorter = _RowSorter(workers)
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
        ranks, num_pos = _positive_ranks(d, rows[~removed], cols[~removed], rows[removed], cols[removed],
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
            cmc_sum32, num_ids = _cuhk03_cmc(d, valid, g_labels, matches.label_of(qp), rows[removed], cols[removed],
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


@contextlib.contextmanager
def serial_torch(device):
    """One torch thread on CPU inside the block; yields the thread count before it, for the caller's own workers.

    The evaluation's torch ops are small (chunked), and with more threads each waits for all of them:
    several times slower on a busy machine. The CPU kernels and sorts run on Python threads instead.
    Restored on exit. On other devices nothing changes.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu":
        yield threads
        return
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)


def _prepare(distmat, q_pids, g_pids, q_camids, g_camids):
    """Distance matrix as a tensor and the ids as int64 tensors on its device, with shape checks."""
    dist = _as_tensor(distmat)
    if dist.dim() != 2:
        raise ValueError(f"evaluate_rank: distmat must be 2-D [num_query, num_gallery], got shape {tuple(dist.shape)}")
    num_q, num_g = dist.shape
    out = [dist]
    for name, ids, size in (("q_pids", q_pids, num_q), ("g_pids", g_pids, num_g),
                            ("q_camids", q_camids, num_q), ("g_camids", g_camids, num_g)):
        t = _as_tensor(ids).reshape(-1)
        if t.numel() != size:
            raise ValueError(f"evaluate_rank: {name} has {t.numel()} entries but distmat {tuple(dist.shape)} "
                             f"needs {size}")
        if t.is_floating_point() or t.is_complex():
            raise ValueError(f"evaluate_rank: {name} must hold integers, got dtype {t.dtype}")
        out.append(t.to(device=dist.device, dtype=torch.int64))
    return tuple(out)


def _as_tensor(x):
    if isinstance(x, torch.Tensor):
        return x.detach()
    array = np.asarray(x)
    if any(stride < 0 for stride in array.strides) or not array.dtype.isnative:
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))  # torch cannot view these
    with warnings.catch_warnings():
        # read-only arrays (e.g. memory maps) are only read here
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _compute_dtype(dtype):
    """float32/float64 stay; half precision widens to float32 and integers to float64 (exact, same order)."""
    if dtype in (torch.float32, torch.float64):
        return dtype
    if dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    if dtype.is_floating_point or dtype.is_complex:
        raise ValueError(f"evaluate_rank: unsupported distmat dtype {dtype}")
    return torch.float64


class _MatchIndex:
    """Gallery indices grouped by identity, to list each query's same-identity gallery items without a [Q, G] compare."""

    def __init__(self, g_pids):
        self.order = _argsort_rows(g_pids[None])[0]
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


def _positive_ranks(d, pos_rows, pos_cols, rem_rows, rem_cols, sorter, memory_budget, workers=1):
    """1-based ranks of each row's positives among its kept gallery items, in ascending order.

    Args:
        d (torch.Tensor): distances ``[C, G]`` (float32 or float64).
        pos_rows, pos_cols: positives (kept same-identity items), rows ascending.
        rem_rows, rem_cols: removed items (same identity and camera as the query).
        sorter (_RowSorter): sorts the rows of ``d``.
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
    if _counts_on_cpu(device):
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
    return _sort_rows(ranks), num_pos


_NAN_MESSAGE = ("evaluate_rank: distmat has NaN distances; fix the features or the distance computation that "
                "produced them")


def _counts_on_cpu(device):
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


def _numpy_sorts(device):
    """Whether tensors on ``device`` are sorted by numpy (CPU) rather than torch (GPU and other devices)."""
    return device.type == "cpu"


def _sort_rows(x, out=None, workers=1):
    """Each row of a 2-D tensor sorted ascending (NaN last).

    On CPU numpy's SIMD sort (an order of magnitude faster than ``torch.sort`` there) into ``out``
    (a fresh array if None), the rows split over ``workers`` threads, numpy releasing
    the GIL while it sorts; on other devices ``torch.sort``.
    """
    if not _numpy_sorts(x.device):
        return torch.sort(x, dim=1).values
    src = x.numpy()
    out = np.empty_like(src) if out is None else out
    workers = min(int(workers), src.shape[0]) if src.size >= 2 ** 20 else 1
    bounds = np.linspace(0, src.shape[0], max(workers, 1) + 1).astype(np.int64)

    def sort_block(i):
        block = out[bounds[i]:bounds[i + 1]]
        np.copyto(block, src[bounds[i]:bounds[i + 1]])
        block.sort(axis=1)

    if workers <= 1:
        sort_block(0)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(sort_block, range(workers)))
    return torch.from_numpy(out)


class _RowSorter:
    """``_sort_rows`` for the distance chunks, reusing one CPU output buffer across chunks.

    A fresh buffer per chunk would cost its page faults (about a third of a sort) every time. The
    tensor returned by a call is overwritten by the next call.
    """

    def __init__(self, workers=1):
        self._buffer = None
        self.workers = workers

    def __call__(self, x):
        if not _numpy_sorts(x.device):
            return _sort_rows(x, workers=self.workers)
        rows, cols = x.shape
        dtype = torch.empty((), dtype=x.dtype).numpy().dtype
        if self._buffer is None or self._buffer.dtype != dtype or self._buffer.shape[1] != cols \
                or self._buffer.shape[0] < rows:
            self._buffer = np.empty((rows, cols), dtype=dtype)
        return _sort_rows(x, out=self._buffer[:rows], workers=self.workers)


def _argsort_rows(x):
    """Stable argsort of each row of a 2-D tensor (ties in index order): numpy on CPU, torch elsewhere."""
    if not _numpy_sorts(x.device):
        return torch.sort(x, dim=1, stable=True).indices
    return torch.from_numpy(np.argsort(x.numpy(), axis=1, kind="stable").astype(np.int64, copy=False))


def _cuhk03_cmc(d, valid, g_labels, q_labels, rem_rows, rem_cols, length, cmc_sum32):
    """Add the valid queries' CUHK03 single-gallery-shot CMC to ``cmc_sum32`` (torchreid's ``eval_cuhk03`` draws).

    Returns:
        (numpy.ndarray, int): the updated float32 running sum ``[length]``, and the largest number of
        gallery identities a valid query of the chunk keeps.
    """
    c, g = d.shape
    device = d.device
    num_labels = int(g_labels.max()) + 1
    order = _argsort_rows(d)
    removed = torch.zeros(c, g, dtype=torch.bool, device=device)
    removed[rem_rows, rem_cols] = True
    removed = removed.gather(1, order)
    kept_pos = torch.cumsum(~removed, 1) - 1  # position among the row's kept items
    # group each row's kept items by identity, ascending position inside a group; removed items last
    keys = torch.where(removed, num_labels * g, g_labels[order] * g + kept_pos)
    keys = _sort_rows(keys[valid])
    label, pos = keys // g, keys % g
    del keys, order, removed, kept_pos
    kept = label < num_labels
    is_start = kept.clone()
    is_start[:, 1:] &= label[:, 1:] != label[:, :-1]
    grp_row, grp_col = is_start.nonzero(as_tuple=True)  # one entry per (query, identity)
    next_col = torch.roll(grp_col, -1)
    last = torch.ones(grp_row.numel(), dtype=torch.bool, device=device)
    last[:-1] = grp_row[1:] != grp_row[:-1]
    grp_size = torch.where(last, kept.sum(1)[grp_row], next_col) - grp_col
    grp_first = pos[grp_row, grp_col]
    # torchreid's dict order: identities by first appearance in the ranking
    by_first = _argsort_rows((grp_row * g + grp_first)[None])[0]
    grp_row, grp_col, grp_size = grp_row[by_first], grp_col[by_first], grp_size[by_first]
    is_query_id = label[grp_row, grp_col] == q_labels[valid][grp_row]

    n_valid = int(valid.sum())
    per_row = torch.bincount(grp_row, minlength=n_valid)
    row_first = torch.cumsum(per_row, 0) - per_row
    # draw order: query, repeat, identity
    draw_row = torch.repeat_interleave(torch.arange(n_valid, device=device), per_row * CUHK03_REPEATS)
    e = torch.arange(draw_row.numel(), device=device) - (row_first * CUHK03_REPEATS)[draw_row]
    draw_grp = row_first[draw_row] + e % per_row[draw_row]
    draw_seg = draw_row * CUHK03_REPEATS + e // per_row[draw_row]
    picks = np.random.randint(0, grp_size[draw_grp].cpu().numpy())
    picks = torch.from_numpy(np.asarray(picks, dtype=np.int64)).to(device)
    chosen = pos[draw_row, grp_col[draw_grp] + picks]
    # rank of the query identity's drawn image among the drawn images of its (query, repeat)
    num_seg = n_valid * CUHK03_REPEATS
    hit = is_query_id[draw_grp]
    target = torch.zeros(num_seg, dtype=chosen.dtype, device=device)
    target[draw_seg[hit]] = chosen[hit]
    rank = torch.bincount(draw_seg, weights=(chosen < target[draw_seg]).double(), minlength=num_seg).long()
    rank = rank.clamp_(max=length).reshape(n_valid, CUHK03_REPEATS)
    hits = torch.zeros(n_valid, length + 1, dtype=torch.int64, device=device)
    hits.scatter_add_(1, rank, torch.ones_like(rank))
    per_query = (torch.cumsum(hits, 1)[:, :length].cpu().numpy().astype(np.float32) / np.float32(CUHK03_REPEATS))
    # torchreid sums the per-query float32 curves one after the other; a cumulative sum keeps that order
    cmc_sum32 = np.cumsum(np.vstack([cmc_sum32[None], per_query]), axis=0, dtype=np.float32)[-1]
    return cmc_sum32, int(per_row.max())
