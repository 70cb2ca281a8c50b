"""Atomic file writes: a reader (or a killed writer) never sees a half-written file."""
import contextlib
import os
import os.path as osp
import shutil
import tempfile

import cv2
import numpy as np

__all__ = ["atomic_write", "atomic_copy", "encode_png", "save_png", "atomic_torch_save"]


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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_copy(src, dst):
    """Copy the file ``src`` to ``dst`` through a temporary file and a rename."""
    with open(src, "rb") as fin, atomic_write(dst) as fout:
        shutil.copyfileobj(fin, fout, 1 << 24)


def encode_png(array):
    """PNG bytes of an ``[H, W]`` grey or ``[H, W, 3]`` RGB uint8 array (channel order kept as R, G, B)."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise TypeError(f"encode_png: expected a uint8 [H, W] or [H, W, 3] array, got {array.dtype} {array.shape}")
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(array[..., ::-1] if array.ndim == 3 else array))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def save_png(path, array):
    """Write an ``[H, W]`` or ``[H, W, 3]`` uint8 array as a PNG, atomically."""
    data = encode_png(array)
    with atomic_write(path) as f:
        f.write(data)


def atomic_torch_save(obj, path):
    """``torch.save`` through a temporary file and a rename."""
    import torch

    with atomic_write(path) as f:
        torch.save(obj, f)
