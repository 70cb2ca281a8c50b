"""Memory planning of the re-ranking: the working-memory sizes per element, and chunks that stay within the
budget and in cache."""
import torch

__all__ = ["TOPK_BYTES", "TRIPLE_BYTES", "TILE_BYTES", "CHUNK_BYTES", "chunk_rows", "chunk_bounds"]

# torch path: working memory per element of a block of distance columns beyond two copies of it (topk's output
# and scratch)
TOPK_BYTES = 8
# Working memory per query-gallery-item triple of the Jaccard step, in bytes (indices and values).
TRIPLE_BYTES = 64
# Largest distance tile offered to the CPU kernel, and largest working set of the sparse steps' chunks: small
# enough to stay in cache (each is also capped by the memory budget).
TILE_BYTES = 16 * 2 ** 20
CHUNK_BYTES = 16 * 2 ** 20


def chunk_rows(memory_budget, bytes_per_row):
    """Rows per chunk: within the budget and small enough for the working set to stay in cache."""
    return max(1, min(int(memory_budget), CHUNK_BYTES) // max(1, int(bytes_per_row)))


def chunk_bounds(cost, budget):
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
