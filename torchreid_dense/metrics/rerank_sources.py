"""Where the re-ranking reads its distances: the three input matrices, or features (distances computed tile by
tile, the symmetric matrix's upper triangle only), both seen as the columns of the concatenated matrix ``D``."""
import numpy as np
import torch
import torch.nn.functional as F

from .rerank_memory import TILE_BYTES, chunk_rows

__all__ = ["DenseDistances", "FeatureDistances", "square32", "to_numpy", "kernel_dtype"]


def distance_dtype(*tensors):
    """The dtype numpy's concatenation gives (integers: float64, which squares them exactly below 2^26)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype.is_complex or dtype == torch.bool:
        raise ValueError(f"rerank: unsupported distance dtype {dtype}")
    return dtype if dtype.is_floating_point else torch.float64


class DenseDistances:
    """Columns of the concatenated ``[[qq, qg], [qg^T, gg]]`` matrix ``D``, read from the three inputs."""

    symmetric = False

    def __init__(self, qg, qq, gg, device):
        self.qg, self.qq, self.gg = qg, qq, gg
        self.q, self.g = qg.shape
        self.n = self.q + self.g
        self.dtype = distance_dtype(qg, qq, gg)
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
            step = max(1, min(int(memory_budget), TILE_BYTES) // max(1, matrix.shape[1] * 8))
            for r0 in range(0, matrix.shape[0], step):
                # qg's rows are also the query items' distances to the gallery (D[q + j, i] = qg[i, j])
                yield to_numpy(matrix[r0:r0 + step], kernel_dtype(self.dtype)), row_base + r0, col_base, True, rows

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


class FeatureDistances:
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
        side = max(1, int(np.sqrt(min(int(memory_budget), TILE_BYTES) / 8)))
        for r0 in range(0, self.n, side):
            for c0 in range(r0, self.n, side):
                tile = self._block(slice(r0, r0 + side), slice(c0, c0 + side))
                q_rows, g_col = min(side, self.q - r0), max(c0, self.q)
                if self.store is not None and q_rows > 0 and g_col < c0 + tile.shape[1]:
                    self.store[r0:r0 + q_rows, g_col - self.q:c0 + tile.shape[1] - self.q] = tile[:q_rows, g_col - c0:]
                yield to_numpy(tile, kernel_dtype(self.dtype)), r0, c0, True, c0 != r0

    def pairs(self, cols, items, memory_budget):
        """The distance of each item to each column's item, in cache-sized chunks of pairs."""
        step = chunk_rows(memory_budget, 2 * 4 * self.left.shape[1])
        out = [(self.left[cols[s:s + step].to(self.device)] * self.right[items[s:s + step].to(self.device)]).sum(1)
               for s in range(0, cols.numel(), step)]
        return torch.cat(out) if out else self.left.new_zeros(0)

    def query_gallery(self, a, b):
        if self.store is not None:
            return self.store[a:b]
        return self._block(slice(a, b), slice(self.q, None))


def to_numpy(tensor, dtype):
    """A C-contiguous numpy array of ``tensor`` in ``dtype`` (a view where nothing needs converting)."""
    return tensor.to(device="cpu", dtype=dtype).contiguous().numpy()


def kernel_dtype(dtype):
    """float64 stays; float32 and half precision (widened exactly) go to the kernels as float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def square32(x):
    """torchreid's ``np.power(d, 2).astype(np.float32)``: squared in the distances' dtype, then float32."""
    return (x * x).to(torch.float32)
