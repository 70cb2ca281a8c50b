"""Atomic file writes: a reader (or a killed writer) never sees a half-written file."""
import contextlib
import os
import os.path as osp
import tempfile

import numpy as np
from PIL import Image

__all__ = ["atomic_write", "save_png", "atomic_torch_save"]


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to ``path``; on success it replaces ``path`` in one rename.

    Examples::

        with atomic_write("out/x.bin") as f:
            f.write(b"...")
    """
    path = os.fspath(path)
    parent = osp.dirname(osp.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + osp.basename(path) + ".", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def save_png(path, array):
    """Write an ``[H, W]`` or ``[H, W, C]`` uint8 array as a PNG, atomically."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"save_png({path!r}): expected a uint8 array, got {array.dtype}")
    with atomic_write(path) as f:
        Image.fromarray(array).save(f, format="PNG")


def atomic_torch_save(obj, path):
    """``torch.save`` through a temporary file and a rename."""
    import torch

    with atomic_write(path) as f:
        torch.save(obj, f)
