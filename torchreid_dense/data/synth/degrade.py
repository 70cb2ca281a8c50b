"""Estimated IUV: the ground truth corrupted the way DensePose fails on low-resolution re-ID crops.

Issue 3, "Estimated dense semantics": some images get no detection at all (real DensePose then
returns nothing, so no sidecar file is written), part and silhouette boundaries wobble, the
silhouette is eroded or dilated, left/right charts are occasionally swapped, U/V are noisy and the
map is computed at a lower resolution. Every rate is a field of :class:`DegradeParams`.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from ...dense.parts import FLIP_CHART
from .body import chart

__all__ = ["DegradeParams", "SWAP_GROUPS", "estimate_iuv"]

# Left/right confusions DensePose makes, by limb group (chart ids of both sides).
SWAP_GROUPS = {
    "arms": tuple(chart(f"{p} arm {s} {f}") for p in ("upper", "lower") for s in ("left", "right")
                  for f in ("front", "back")) + (chart("left hand"), chart("right hand")),
    "legs": tuple(chart(f"{p} leg {s} {f}") for p in ("upper", "lower") for s in ("left", "right")
                  for f in ("front", "back")) + (chart("left foot"), chart("right foot")),
    "head": (chart("head left"), chart("head right")),
}


@dataclass(frozen=True)
class DegradeParams:
    """Error model of the estimated IUV maps (all rates per image unless said otherwise)."""

    no_detection: float = 0.2        # probability that DensePose finds nobody (no sidecar file)
    swap: float = 0.1                # probability of a left/right swap of one or more limb groups
    boundary: int = 2                # silhouette eroded or dilated by up to this many pixels
    jitter: float = 1.5              # amplitude (pixels) of the smooth warp of all boundaries
    uv_noise: float = 0.03           # std of the U/V noise (in [0, 1] units)
    resolution: tuple = (0.3, 0.7)   # DensePose's output resolution relative to the image


def _pack(iuv):
    """One float32 key per pixel, label most significant (so a max filter keeps (I, U, V) together)."""
    return (iuv[0].astype(np.int32) * 65536 + iuv[1].astype(np.int32) * 256 + iuv[2]).astype(np.float32)


def _unpack(key):
    k = key.astype(np.int32)
    return np.stack([k >> 16, (k >> 8) & 255, k & 255]).astype(np.uint8)


def estimate_iuv(iuv, rng, params=DegradeParams()):
    """Corrupt a ground-truth quantized ``iuv`` ``[3, H, W]`` into a DensePose-like estimate.

    Returns:
        ``(estimate [3, H, W] uint8 or None, info)`` where ``estimate`` is None when the detection
        failed and ``info`` is a dict: ``detected`` (bool), ``swapped`` (tuple of SWAP_GROUPS names).
    """
    if rng.random() < params.no_detection:
        return None, {"detected": False, "swapped": ()}
    h, w = iuv.shape[1:]
    out = iuv.copy()
    swapped = ()
    if rng.random() < params.swap:
        names = tuple(SWAP_GROUPS)
        pick = rng.random(len(names)) < (0.6, 0.6, 0.3)
        if not pick.any():
            pick[int(rng.integers(2))] = True
        swapped = tuple(n for n, p in zip(names, pick) if p)
        flip = np.zeros(FLIP_CHART.shape[0], bool)
        flip[[c for n in swapped for c in SWAP_GROUPS[n]]] = True
        sel = flip[out[0]]
        out[0] = np.where(sel, FLIP_CHART[out[0]], out[0])
        out[1] = np.where(sel, 255 - out[1], out[1])  # the mirror surface runs the other way round
    key = _pack(out)
    # smooth warp of every boundary (coarse and fine scale)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    for cells, amp in (((4, 2), params.jitter), ((max(2, h // 8), max(2, w // 8)), params.jitter * 0.5)):
        field = amp * rng.standard_normal(size=(2,) + cells, dtype=np.float32)
        cols += cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC)
        rows += cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC)
    key = cv2.remap(key, cols, rows, interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # silhouette erosion or dilation
    grow = int(rng.integers(-params.boundary, params.boundary + 1)) if params.boundary else 0
    if grow:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(grow) + 1,) * 2)
        if grow > 0:
            key = np.where(key > 0, key, cv2.dilate(key, kernel))
        else:
            key = np.where(cv2.erode((key > 0).astype(np.uint8), kernel) > 0, key, 0).astype(np.float32)
    # DensePose's coarser output grid
    keep = rng.uniform(*params.resolution)
    small = cv2.resize(key, (max(2, int(round(w * keep))), max(2, int(round(h * keep)))),
                       interpolation=cv2.INTER_NEAREST)
    key = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    out = _unpack(key)
    body = out[0] > 0
    noise = (params.uv_noise * 255.0) * rng.standard_normal(size=(2, h, w), dtype=np.float32)
    out[1:] = np.where(body, np.clip(out[1:] + noise, 0, 255), 0).astype(np.uint8)
    return out, {"detected": True, "swapped": swapped}
