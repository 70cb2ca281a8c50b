"""What the evaluation does differently per device: row sorts (numpy's SIMD sort on CPU, ``torch.sort``
elsewhere), the torch thread count while it runs, and the conversion of its inputs to tensors."""
import contextlib
from concurrent.futures import ThreadPoolExecutor
import warnings

import numpy as np
import torch

__all__ = ["serial_torch", "as_tensor", "numpy_sorts", "sort_rows", "RowSorter", "argsort_rows"]


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


def as_tensor(x):
    if isinstance(x, torch.Tensor):
        return x.detach()
    array = np.asarray(x)
    if any(stride < 0 for stride in array.strides) or not array.dtype.isnative:
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))  # torch cannot view these
    with warnings.catch_warnings():
        # read-only arrays (e.g. memory maps) are only read here
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def numpy_sorts(device):
    """Whether tensors on ``device`` are sorted by numpy (CPU) rather than torch (GPU and other devices)."""
    return device.type == "cpu"


def sort_rows(x, out=None, workers=1):
    """Each row of a 2-D tensor sorted ascending (NaN last).

    On CPU numpy's SIMD sort (an order of magnitude faster than ``torch.sort`` there) into ``out``
    (a fresh array if None), the rows split over ``workers`` threads, numpy releasing
    the GIL while it sorts; on other devices ``torch.sort``.
    """
    if not numpy_sorts(x.device):
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


class RowSorter:
    """``_sort_rows`` for the distance chunks, reusing one CPU output buffer across chunks.

    A fresh buffer per chunk would cost its page faults (about a third of a sort) every time. The
    tensor returned by a call is overwritten by the next call.
    """

    def __init__(self, workers=1):
        self._buffer = None
        self.workers = workers

    def __call__(self, x):
        if not numpy_sorts(x.device):
            return sort_rows(x, workers=self.workers)
        rows, cols = x.shape
        dtype = torch.empty((), dtype=x.dtype).numpy().dtype
        if self._buffer is None or self._buffer.dtype != dtype or self._buffer.shape[1] != cols \
                or self._buffer.shape[0] < rows:
            self._buffer = np.empty((rows, cols), dtype=dtype)
        return sort_rows(x, out=self._buffer[:rows], workers=self.workers)


def argsort_rows(x):
    """Stable argsort of each row of a 2-D tensor (ties in index order): numpy on CPU, torch elsewhere."""
    if not numpy_sorts(x.device):
        return torch.sort(x, dim=1, stable=True).indices
    return torch.from_numpy(np.argsort(x.numpy(), axis=1, kind="stable").astype(np.int64, copy=False))
