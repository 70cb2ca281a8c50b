"""Backgrounds with clutter and occluders in front of the person (issue 3, "Cameras").

Both are drawn at the output size with a handful of vectorised rectangle/ellipse fills (a loop
over a few objects, never over pixels).
"""
import cv2
import numpy as np

from .palette import GARMENT

__all__ = ["background", "occluder"]


def background(rng, style, height, width):
    """A cluttered street/indoor background of camera ``style``: ``[H, W, 3]`` float32 (0..255)."""
    wall = np.array(style.wall, np.float32)
    coarse = wall[rng.integers(0, 2, size=(6, 3))] + rng.normal(0.0, 18.0, size=(6, 3, 3))
    img = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(int(rng.integers(1, style.clutter + 1))):  # poles, doors, windows, signs
        kind = rng.random()
        if kind < 0.35:
            w, h = rng.uniform(0.04, 0.14) * width, height
        elif kind < 0.8:
            w, h = rng.uniform(0.15, 0.6) * width, rng.uniform(0.1, 0.45) * height
        else:
            w, h = rng.uniform(0.1, 0.3) * width, rng.uniform(0.05, 0.12) * height
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 0.7) * height
        col = wall[int(rng.integers(2))] * rng.uniform(0.5, 1.3) if rng.random() < 0.7 else GARMENT[
            int(rng.integers(len(GARMENT)))] * 0.8
        r0, r1 = max(0, int(y0)), min(height, int(y0 + h))
        c0, c1 = max(0, int(x0)), min(width, int(x0 + w))
        if r1 > r0 and c1 > c0:
            ramp = 0.05 * np.arange(r1 - r0, dtype=np.float32)[:, None, None]
            img[r0:r1, c0:c1] = col.astype(np.float32) + ramp
    top = int(np.clip(rng.uniform(*style.horizon) * height, 0, height))
    ground = np.array(style.ground, np.float32) * rng.uniform(0.85, 1.15)
    shade = 0.75 + 0.45 * np.arange(height - top, dtype=np.float32)[:, None, None] / height
    img[top:] = ground * shade
    return img


def occluder(rng, height, width, prob):
    """With probability ``prob``, an object in front of the person.

    Returns:
        ``(mask [H, W] bool, colour [H, W, 3] float32)``, or ``(None, None)`` when there is none.
    """
    if rng.random() >= prob:
        return None, None
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    kind = rng.random()
    if kind < 0.4:  # a bench, car or bag from the bottom
        top = rng.uniform(0.6, 0.85) * height
        x0, x1 = sorted(rng.uniform(-0.3, 1.3, 2) * width)
        mask = (rows >= top) & (cols >= x0) & (cols <= max(x1, x0 + 0.3 * width))
    elif kind < 0.75:  # another pedestrian or a pole at one side
        w = rng.uniform(0.15, 0.35) * width
        left = rng.random() < 0.5
        mask = (cols < w) if left else (cols >= width - w)
        mask = np.broadcast_to(mask & (rows >= rng.uniform(0, 0.3) * height), (height, width))
    else:  # a round object (umbrella, head, bag)
        cy, cx = rng.uniform(0.2, 0.9) * height, rng.uniform(0.0, 1.0) * width
        ry, rx = rng.uniform(0.08, 0.2) * height, rng.uniform(0.15, 0.35) * width
        mask = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.0
    mask = np.ascontiguousarray(mask)
    base = GARMENT[int(rng.integers(len(GARMENT)))] * rng.uniform(0.6, 1.0)
    colour = base[None, None, :] * (0.8 + 0.3 * (rows / height))[..., None] + np.zeros((1, width, 1), np.float32)
    return mask, colour.astype(np.float32)
