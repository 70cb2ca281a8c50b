"""Fused CPU kernels of k-reciprocal re-ranking (Zhong et al., CVPR 2017), compiled with Numba.

With torch ops, the two steps that touch every distance make several passes over memory; these
kernels make one each. The torch path of :mod:`torchreid_dense.metrics.reranking` stays the
reference and the GPU path; the kernels are used on CPU when Numba is installed (tested equal).

* :class:`NearestTracker`: each item's few nearest neighbours and its largest distance (torchreid's
  normaliser of its row) from a stream of distance tiles, reading each distance once. Every item
  keeps its ``K`` smallest magnitudes seen so far (a max-heap: a smaller one replaces the largest)
  and its largest one; a segment of distances is first tested
  as a whole, so the common case (nothing to insert) is a vectorised integer compare. A tile
  ``T[r, c] = D[row_base + r, col_base + c]`` is offered to its columns' items (neighbour
  ``row_base + r``), to its rows' items (neighbour ``col_base + c``), or both for symmetric
  distances. Among ties at the K-th magnitude the first one seen stays; callers rely only on the
  set of magnitudes.
* :func:`final_distances`: for a block of queries, the Jaccard overlap with every gallery item summed
  from an inverted index straight into the output row (in float32 and in torchreid's order, column by
  column), then ``(1 - lambda) * Jaccard + lambda * normalised distance`` in the same pass.

The kernels are serial and release the GIL; the wrappers split the items over Python threads
(Numba's own thread pool is not safe across ``fork``, which DataLoader workers use).
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..utils.jit import available, jit

__all__ = ["available", "NearestTracker", "final_distances"]

_SEGMENT = 64  # elements tested together before any insertion (keeps the common path vectorised)


@jit
def _sift_down(item, pos, nb_idx, nb_key):
    """Restore the max-heap order of ``item``'s kept keys below ``pos``."""
    size = nb_key.shape[1]
    key, idx = nb_key[item, pos], nb_idx[item, pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and nb_key[item, child + 1] > nb_key[item, child]:
            child += 1
        if nb_key[item, child] <= key:
            break
        nb_key[item, pos], nb_idx[item, pos] = nb_key[item, child], nb_idx[item, child]
        pos = child
    nb_key[item, pos], nb_idx[item, pos] = key, idx


@jit
def _insert(item, neighbour, key, nb_idx, nb_key, thresh, fill):
    """Put ``key`` at ``neighbour`` into ``item``'s kept set (the caller checked ``key < thresh[item]``).

    The kept keys fill up in arrival order, then form a max-heap: a new key replaces the largest.
    """
    size = nb_idx.shape[1]
    f = fill[item]
    if f < size:
        nb_idx[item, f], nb_key[item, f] = neighbour, key
        fill[item] = f + 1
        if f + 1 < size:
            return
        for pos in range(size // 2 - 1, -1, -1):  # heapify
            _sift_down(item, pos, nb_idx, nb_key)
    else:
        nb_idx[item, 0], nb_key[item, 0] = neighbour, key
        _sift_down(item, 0, nb_idx, nb_key)
    thresh[item] = nb_key[item, 0]


@jit
def _insert_columns(tile, mask, r, s0, s1, neighbour, nb_idx, nb_key, thresh, fill):
    """Insert row r's keys of items [s0, s1) that beat their thresholds (the slow path, kept out of line)."""
    for c in range(s0, s1):
        key = tile[r, c] & mask
        if key < thresh[c]:
            _insert(c, neighbour, key, nb_idx, nb_key, thresh, fill)


@jit
def _offer_columns(tile, mask, row_base, c0, c1, nb_idx, nb_key, thresh, fill, col_max):
    """Items c in [c0, c1) (the state arrays are views at the tile's first column) see neighbours
    ``row_base + r`` at key ``tile[r, c] & mask``."""
    c0 = max(c0, 0)  # non-negative indices: no wrap-around code, so the segment loop vectorises
    c1 = max(c1, c0)
    full = c1 - (c1 - c0) % _SEGMENT
    for r in range(tile.shape[0]):
        s0 = c0
        while s0 < full:  # full segments: constant trip count
            hits = 0
            for j in range(_SEGMENT):
                c = s0 + j
                key = tile[r, c] & mask
                top = col_max[c]
                col_max[c] = key if key > top else top
                hits += np.int32(key < thresh[c])
            if hits:
                _insert_columns(tile, mask, r, s0, s0 + _SEGMENT, row_base + r, nb_idx, nb_key, thresh, fill)
            s0 += _SEGMENT
        for c in range(full, c1):
            key = tile[r, c] & mask
            top = col_max[c]
            col_max[c] = key if key > top else top
        _insert_columns(tile, mask, r, full, c1, row_base + r, nb_idx, nb_key, thresh, fill)


@jit
def _insert_row(tile, mask, r, s0, s1, col_base, nb_idx, nb_key, thresh, fill):
    """Insert the keys of row r's columns [s0, s1) that beat item r's threshold (the slow path)."""
    for c in range(s0, s1):
        key = tile[r, c] & mask
        if key < thresh[r]:
            _insert(r, col_base + c, key, nb_idx, nb_key, thresh, fill)


@jit
def _offer_rows(tile, mask, col_base, r0, r1, nb_idx, nb_key, thresh, fill, col_max):
    """Items r in [r0, r1) (the state arrays are views at the tile's first row) see neighbours
    ``col_base + c`` at key ``tile[r, c] & mask``."""
    r0 = max(r0, 0)
    cols = tile.shape[1]
    full = cols - cols % _SEGMENT
    for r in range(r0, r1):
        top = col_max[r]
        s0 = 0
        while s0 < full:
            limit = thresh[r]
            hits = 0
            for j in range(_SEGMENT):
                key = tile[r, s0 + j] & mask
                top = key if key > top else top
                hits += np.int32(key < limit)
            if hits:
                _insert_row(tile, mask, r, s0, s0 + _SEGMENT, col_base, nb_idx, nb_key, thresh, fill)
            s0 += _SEGMENT
        for c in range(full, cols):
            key = tile[r, c] & mask
            top = key if key > top else top
        _insert_row(tile, mask, r, full, cols, col_base, nb_idx, nb_key, thresh, fill)
        col_max[r] = top


class NearestTracker:
    """The ``size`` smallest distance magnitudes of each of ``num_items`` items, and the largest.

    Magnitudes are compared as keys: the IEEE bits with the sign cleared, read as integers, which
    order non-negative floats exactly as their values (+0 and -0 alike), put NaN above infinity and
    let the common path (no insertion) run as vectorised integer compares.

    Args:
        num_items (int): items (rows of the final result).
        size (int): neighbours kept per item (<= the number of distances each item is offered).
        dtype (numpy.dtype): float32 or float64, the tiles' dtype.
        workers (int): threads sharing each tile's items.
    """

    def __init__(self, num_items, size, dtype, workers=1):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"NearestTracker: tiles must be float32 or float64, got {self.dtype}")
        keys = np.int32 if self.dtype == np.float32 else np.int64
        self.mask = keys(np.iinfo(keys).max)  # clears the sign bit
        self.nb_idx = np.zeros((num_items, size), dtype=np.int64)
        self.nb_key = np.zeros((num_items, size), dtype=keys)
        self.thresh = np.full(num_items, np.iinfo(keys).max, dtype=keys)  # above every key, NaN included
        self.fill = np.zeros(num_items, dtype=np.int64)
        self.col_max = np.zeros(num_items, dtype=keys)
        self.workers = max(1, int(workers))
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None

    def close(self):
        """Stop the worker threads (also done by :meth:`result`)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _state(self):
        return self.nb_idx, self.nb_key, self.thresh, self.fill, self.col_max

    def offer(self, tile, row_base, col_base, columns=True, rows=False):
        """Offer ``tile[r, c] = D[row_base + r, col_base + c]`` to its column items and/or its row items.

        The column and row item ranges must not overlap when both are offered.
        """
        tile = np.ascontiguousarray(tile, dtype=self.dtype).view(self.nb_key.dtype)
        tasks = []
        for kernel, extent, base, other, wanted in ((_offer_columns, tile.shape[1], col_base, row_base, columns),
                                                    (_offer_rows, tile.shape[0], row_base, col_base, rows)):
            if wanted and extent:
                # the kernels index their items from 0: views of the state at the first one
                state = tuple(a[base:base + extent] for a in self._state())
                bounds = np.linspace(0, extent, min(self.workers, extent) + 1).astype(np.int64)
                tasks += [(kernel, other, int(a), int(b), state) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

        def run(task):
            kernel, other, a, b, state = task
            kernel(tile, self.mask, other, a, b, *state)

        if self._pool is None or len(tasks) == 1:
            for task in tasks:
                run(task)
        else:
            list(self._pool.map(run, tasks))

    def result(self):
        """(neighbour indices ``[num_items, size]``, their magnitudes, largest magnitude ``[num_items]``).

        A NaN among an item's distances makes its largest magnitude NaN.

        Raises:
            RuntimeError: when some item was offered fewer than ``size`` distances that are not NaN.
        """
        self.close()
        col_max = self.col_max.view(self.dtype)
        if np.any((self.fill < self.nb_idx.shape[1]) & ~np.isnan(col_max)):
            raise RuntimeError("NearestTracker: an item was offered fewer distances than neighbours to keep")
        return self.nb_idx, self.nb_key.view(self.dtype), col_max


@jit
def _final_rows(dist, squared, col_max, q_ptr, q_cols, q_vals, col_ptr, g_items, g_vals, keep, mix, out, r0, r1):
    """Rows [r0, r1) of ``out``: ``(1 - t / (2 - t)) * keep + d^2 / col_max * mix`` (float32), where
    ``t[j] = sum_k min(V[r, k], V[j, k])`` over the row's entries (``q_ptr``/``q_cols``/``q_vals``)
    and the gallery entries of each column (``col_ptr``/``g_items``/``g_vals``). ``out`` may be ``dist``."""
    one, two = np.float32(1.0), np.float32(2.0)
    r0 = max(r0, 0)
    g = out.shape[1]
    shared = np.zeros(g, dtype=np.float32)
    for r in range(r0, r1):
        shared[:] = 0
        for e in range(q_ptr[r], q_ptr[r + 1]):
            k, v = q_cols[e], q_vals[e]
            for p in range(col_ptr[k], col_ptr[k + 1]):
                j = g_items[p]
                w = g_vals[p]
                shared[j] += v if v < w else w
        scale = col_max[r]
        for j in range(g):
            t = shared[j]
            d = dist[r, j]
            original = (np.float32(d) if squared else np.float32(d * d)) / scale
            out[r, j] = (one - t / (two - t)) * keep + original * mix


def final_distances(dist, squared, col_max, q_ptr, q_cols, q_vals, col_ptr, g_items, g_vals, keep, mix, out, workers=1):
    """Fill ``out [C, g]`` (float32) with the re-ranked distances of C queries (see :func:`_final_rows`).

    Args:
        dist (numpy.ndarray): the queries' original distances to the gallery ``[C, g]`` (float32/64).
        squared (bool): whether ``dist`` holds the squared distances already (float32).
        col_max (numpy.ndarray): float32 ``[C]``, the normaliser of each query's row.
        q_ptr, q_cols, q_vals: the queries' encodings as CSR (``q_ptr [C + 1]``, values float32).
        col_ptr, g_items, g_vals: the gallery items' encodings by column (``col_ptr [n + 1]``).
        keep, mix (float): ``1 - lambda`` and ``lambda``, rounded to float32 by the kernel.
        out (numpy.ndarray): float32 ``[C, g]``; may be ``dist`` itself (updated in place).
        workers (int): threads sharing the rows.
    """
    keep, mix = np.float32(keep), np.float32(mix)
    args = (dist, squared, col_max, q_ptr, q_cols, q_vals, col_ptr, g_items, g_vals, keep, mix, out)
    rows = out.shape[0]
    bounds = np.linspace(0, rows, max(1, min(int(workers), rows)) + 1).astype(np.int64)
    if len(bounds) <= 2:
        _final_rows(*args, 0, rows)
        return
    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        list(pool.map(lambda i: _final_rows(*args, int(bounds[i]), int(bounds[i + 1])), range(len(bounds) - 1)))
