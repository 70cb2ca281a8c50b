"""DensePose IUV maps in the quantized chart format (REFERENCE 1.1).

An IUV map is a ``[3, H, W]`` uint8 array holding, per pixel, the chart label ``I`` (0 =
background, 1..24 = body-surface charts) and ``floor(U * 255)``, ``floor(V * 255)``, exactly as
DensePose's ``DensePoseChartResultQuantized``. On disk it is a 3-channel 8-bit PNG whose channels,
in order, are I, U, V.
"""
import os

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..utils.io import atomic_write, encode_png
from .parts import NUM_CHARTS

__all__ = ["IUVFormatError", "quantize_iuv", "dequantize_iuv", "unpack_iuv", "uv_floor", "resize_iuv_nearest", "validate_iuv", "read_iuv", "write_iuv", "encode_iuv_png"]


class IUVFormatError(ValueError):
    """An IUV map (array or file) that does not follow the quantized DensePose format."""


def _numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def quantize_iuv(labels, u, v):
    """Pack labels ``[H, W]`` (0..24) and ``u``, ``v`` ``[H, W]`` in [0, 1] into a ``[3, H, W]`` uint8 map.

    U and V are stored as ``floor(clamp(x * 255, 0, 255))`` like DensePose; background pixels
    (label 0) get U = V = 0.
    """
    labels, u, v = _numpy(labels), _numpy(u), _numpy(v)
    if labels.shape != u.shape or labels.shape != v.shape or labels.ndim != 2:
        raise IUVFormatError(
            f"labels, u and v must be [H, W] arrays of one shape, got {labels.shape}, {u.shape}, {v.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > NUM_CHARTS):
        raise IUVFormatError(f"chart labels must lie in 0..{NUM_CHARTS}, got {labels.min()}..{labels.max()}")
    person = labels > 0
    out = np.empty((3,) + labels.shape, dtype=np.uint8)
    out[0] = labels
    out[1] = np.where(person, np.clip(u.astype(np.float32) * 255.0, 0, 255), 0).astype(np.uint8)
    out[2] = np.where(person, np.clip(v.astype(np.float32) * 255.0, 0, 255), 0).astype(np.uint8)
    return out


def dequantize_iuv(iuv):
    """Unpack a ``[..., 3, H, W]`` uint8 map into ``(labels int64, u float32, v float32)`` (u = U / 255).

    Works on numpy arrays and torch tensors and returns the same kind.
    """
    if isinstance(iuv, torch.Tensor):
        return iuv[..., 0, :, :].long(), iuv[..., 1, :, :].float() / 255.0, iuv[..., 2, :, :].float() / 255.0
    iuv = np.asarray(iuv)
    return (
        iuv[..., 0, :, :].astype(np.int64),
        iuv[..., 1, :, :].astype(np.float32) / 255.0,
        iuv[..., 2, :, :].astype(np.float32) / 255.0,
    )


def unpack_iuv(iuv):
    """Split a ``[B, 3, H, W]`` tensor into ``(labels, u, v)`` for the batched dense operations.

    A uint8 tensor is the quantized format and gives integer ``u``, ``v`` in 0..255 (so cell
    indices can be computed exactly in integer arithmetic); a floating tensor holds the label as a
    float and ``u``, ``v`` in [0, 1] and gives float ``u``, ``v``.
    """
    if not isinstance(iuv, torch.Tensor) or iuv.dim() != 4 or iuv.shape[1] != 3:
        raise IUVFormatError(f"expected an IUV tensor of shape [B, 3, H, W], got {getattr(iuv, 'shape', type(iuv))}")
    if iuv.dtype == torch.uint8:
        return iuv[:, 0].long(), iuv[:, 1].long(), iuv[:, 2].long()
    if not iuv.is_floating_point():
        raise IUVFormatError(f"an IUV tensor is uint8 (quantized) or floating point, got {iuv.dtype}")
    return iuv[:, 0].round().long(), iuv[:, 1].clamp(0, 1), iuv[:, 2].clamp(0, 1)


def uv_floor(x, m, flip=False):
    """``floor(x * m)`` for a U or V coordinate (``floor((1 - x) * m)`` with ``flip``), as int64.

    ``x`` is an integer tensor of quantized values (0..255, meaning x / 255), computed exactly in
    integer arithmetic, or a float tensor in [0, 1].
    """
    if not x.is_floating_point():
        x = 255 - x if flip else x
        return (x * m) // 255
    x = 1.0 - x if flip else x
    return torch.floor(x * m).long()


def validate_iuv(iuv, source="<array>", size=None):
    """Check ``iuv`` is a ``[3, H, W]`` uint8 map with labels 0..24 (and ``(H, W) == size`` if given)."""
    if not isinstance(iuv, np.ndarray) or iuv.dtype != np.uint8:
        raise IUVFormatError(f"{source}: an IUV map must be a uint8 array, got {type(iuv).__name__} "
                             f"{getattr(iuv, 'dtype', '')}")
    if iuv.ndim != 3 or iuv.shape[0] != 3:
        raise IUVFormatError(f"{source}: an IUV map has 3 channels (I, U, V) as [3, H, W], got shape "
                             f"{tuple(iuv.shape)}")
    top = int(iuv[0].max()) if iuv[0].size else 0
    if top > NUM_CHARTS:
        raise IUVFormatError(
            f"{source}: chart labels must lie in 0..{NUM_CHARTS} but the I channel holds {top}; "
            "is this a DensePose IUV map with channels in I, U, V order (not BGR)?"
        )
    if size is not None and tuple(iuv.shape[1:]) != tuple(size):
        raise IUVFormatError(
            f"{source}: IUV map is {iuv.shape[1]}x{iuv.shape[2]} (HxW) but its image is {size[0]}x{size[1]}; "
            "regenerate the sidecar for this image or load it with resize=True (nearest-neighbour)"
        )
    return iuv


def encode_iuv_png(iuv, source="<array>"):
    """Validate ``iuv`` and return its PNG bytes (channels I, U, V as the PNG's R, G, B)."""
    iuv = _numpy(iuv)
    validate_iuv(iuv, source=source)
    return encode_png(iuv.transpose(1, 2, 0))


def write_iuv(path, iuv):
    """Validate ``iuv`` and write it atomically as an I, U, V PNG (parent folders are created)."""
    data = encode_iuv_png(iuv, source=str(path))
    with atomic_write(path) as f:
        f.write(data)


def resize_iuv_nearest(iuv, size):
    """Resize a ``[3, H, W]`` IUV map to ``size = (H', W')`` with nearest-neighbour (I, U, V together)."""
    h, w = iuv.shape[1:]
    rows = np.minimum((np.arange(size[0]) * h) // size[0], h - 1)
    cols = np.minimum((np.arange(size[1]) * w) // size[1], w - 1)
    return np.ascontiguousarray(iuv[:, rows[:, None], cols[None, :]])


def read_iuv(path, size=None, resize=False):
    """Read and validate an IUV PNG as a ``[3, H, W]`` uint8 array.

    Args:
        path: the PNG file.
        size: ``(H, W)`` of the image the map belongs to, or None to skip the check.
        resize: resize a map of another size to ``size`` with nearest-neighbour instead of raising.

    Raises:
        IUVFormatError: naming ``path``, when the file is unreadable, not 3-channel 8-bit, holds labels
            above 24, or has the wrong size (and ``resize`` is False).
        FileNotFoundError: when ``path`` does not exist.
    """
    path = os.fspath(path)
    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.asarray(im.convert("RGB") if mode == "P" else im)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise IUVFormatError(f"{path}: cannot read the IUV map ({e}); the file is corrupt or not a PNG, "
                             "regenerate it (tools/import_densepose.py or tools/extract_densepose.py)") from e
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise IUVFormatError(f"{path}: an IUV map is a 3-channel 8-bit PNG (I, U, V), got mode {mode} with "
                             f"shape {arr.shape}")
    iuv = np.ascontiguousarray(arr.transpose(2, 0, 1))
    if iuv[0].size and int(iuv[0].max()) > NUM_CHARTS and int(iuv[2].max()) <= NUM_CHARTS:
        raise IUVFormatError(
            f"{path}: the first channel holds {int(iuv[0].max())} (labels are 0..{NUM_CHARTS}) but the third "
            "looks like labels: this is a classic Caffe2 DensePose <name>_IUV.png (written by cv2, channels V, U, I); "
            "import such files with python tools/import_densepose.py --legacy-iuv-dir DIR --dataset-dir DATASET_DIR")
    if size is not None and resize and tuple(iuv.shape[1:]) != tuple(size):
        iuv = resize_iuv_nearest(iuv, size)
    return validate_iuv(iuv, source=path, size=size)
