"""Identity appearance of SynthReID: an outfit drawn from parts, painted into a texture atlas.

An identity's full texture (SAN's texture target) is a DensePose-layout atlas (``dense.atlas``):
24 tiles of ``N x N``; inside the tile of chart ``p`` the texel ``(y, x)`` holds the colour at
``U = x / (N - 1)``, ``V = 1 - y / (N - 1)``. The body (``body.py``) maps U around each primitive
(increasing left to right as a viewer facing that chart sees it) and V along it (1 at the top).

Clothing is built from parts (issue 3): upper garment (solid, stripes, checks, colour block, open
jacket), lower garment (trousers or shorts), shoes, skin and hair/head, plus localised marks that
only show from some viewpoints: a logo on the chest front, a stripe on one sleeve, a print on the
back, a bag strap across one shoulder.
"""
import functools
from dataclasses import dataclass

import numpy as np

from ...dense.atlas import atlas_shape
from .body import chart
from .palette import GARMENT, HAIR, LOWER_WEIGHTS, SHOES, SKIN

__all__ = ["Outfit", "sample_outfit", "make_atlas", "atlas_coordinates"]

UPPER_PATTERNS = ("solid", "hstripes", "vstripes", "checks", "block", "jacket")


@dataclass(frozen=True)
class Outfit:
    """Everything that decides an identity's texture (colours are palette indices)."""

    upper: int
    upper2: int
    pattern: str
    period: float
    long_sleeves: bool
    lower: int
    trousers: bool
    shorts_len: float
    waist: float
    shoes: int
    skin: int
    hair: int
    hair_long: bool
    logo: tuple      # () or (colour, u, v, half_w, half_h, round)
    sleeve: tuple    # () or (colour, side 'left'/'right', v0, width, on_lower_arm)
    back: tuple      # () or (colour, v, half_w, half_h, striped)
    strap: tuple     # () or (colour, over 'left'/'right' shoulder)
    seed: int


def _other(rng, avoid, n=len(GARMENT)):
    c = int(rng.integers(n - 1))
    return c + 1 if c >= avoid else c


def sample_outfit(rng):
    """A random outfit: few colours, and pattern/mark placement that differs between identities."""
    upper = int(rng.integers(len(GARMENT)))
    pattern = UPPER_PATTERNS[int(rng.choice(len(UPPER_PATTERNS), p=[0.34, 0.16, 0.1, 0.12, 0.12, 0.16]))]
    lower = int(rng.choice(len(GARMENT), p=LOWER_WEIGHTS))
    logo = ()
    if rng.random() < 0.5:
        logo = (_other(rng, upper), float(rng.choice([0.3, 0.5, 0.7])), float(rng.uniform(0.55, 0.8)),
                float(rng.uniform(0.07, 0.16)), float(rng.uniform(0.06, 0.12)), bool(rng.random() < 0.4))
    sleeve = ()
    long_sleeves = bool(rng.random() < 0.55)
    if rng.random() < 0.4:
        sleeve = (_other(rng, upper), "left" if rng.random() < 0.5 else "right", float(rng.uniform(0.2, 0.7)),
                  float(rng.uniform(0.12, 0.3)), bool(long_sleeves and rng.random() < 0.5))
    back = ()
    if rng.random() < 0.45:
        back = (_other(rng, upper), float(rng.uniform(0.35, 0.75)), float(rng.uniform(0.15, 0.35)),
                float(rng.uniform(0.08, 0.2)), bool(rng.random() < 0.3))
    strap = ()
    if rng.random() < 0.25:
        strap = (int(rng.choice([0, 8, 2, 3])), "left" if rng.random() < 0.5 else "right")
    trousers = bool(rng.random() < 0.75)
    return Outfit(
        upper=upper, upper2=_other(rng, upper), pattern=pattern, period=float(rng.choice([0.1, 0.16, 0.24])),
        long_sleeves=long_sleeves, lower=lower, trousers=trousers, shorts_len=float(rng.uniform(0.25, 0.6)),
        waist=float(rng.uniform(0.08, 0.2)), shoes=int(rng.integers(len(SHOES))), skin=int(rng.integers(len(SKIN))),
        hair=int(rng.integers(len(HAIR))), hair_long=bool(rng.random() < 0.3), logo=logo, sleeve=sleeve,
        back=back, strap=strap, seed=int(rng.integers(2 ** 31)),
    )


@functools.lru_cache(maxsize=4)
def atlas_coordinates(tile):
    """Per texel of the atlas: ``(chart [6N, 4N] int, u, v [6N, 4N] float)`` (see module doc)."""
    h, w = atlas_shape(tile)
    rows, cols = np.mgrid[0:h, 0:w]
    charts = (cols // tile) * 6 + rows // tile + 1
    u = (cols % tile) / (tile - 1.0)
    v = 1.0 - (rows % tile) / (tile - 1.0)
    for a in (charts, u, v):
        a.setflags(write=False)  # shared by every call (cached)
    return charts, u, v


def _in(charts, *names):
    return np.isin(charts, [chart(n) for n in names])


def make_atlas(outfit, tile=32):
    """Paint ``outfit`` into a ``[6N, 4N, 3]`` uint8 atlas (DensePose layout, ``dense.atlas``)."""
    c, u, v = atlas_coordinates(tile)
    rng = np.random.default_rng(outfit.seed)
    img = np.empty(c.shape + (3,), np.float32)
    skin, hair = SKIN[outfit.skin], HAIR[outfit.hair]
    up, up2, low = GARMENT[outfit.upper], GARMENT[outfit.upper2], GARMENT[outfit.lower]

    torso = _in(c, "torso front", "torso back")
    front = c == chart("torso front")
    back = c == chart("torso back")
    uarm = _in(c, "upper arm left front", "upper arm right front", "upper arm left back", "upper arm right back")
    larm = _in(c, "lower arm left front", "lower arm right front", "lower arm left back", "lower arm right back")
    uleg = _in(c, "upper leg left front", "upper leg right front", "upper leg left back", "upper leg right back")
    lleg = _in(c, "lower leg left front", "lower leg right front", "lower leg left back", "lower leg right back")
    feet = _in(c, "left foot", "right foot")
    head = _in(c, "head right", "head left")

    # upper garment with its pattern (torso above the waist, sleeves)
    sleeves = uarm | (larm & outfit.long_sleeves)
    upper = (torso & (v >= outfit.waist)) | sleeves
    p = outfit.period
    if outfit.pattern == "hstripes":
        second = (v % p) < p * 0.45
    elif outfit.pattern == "vstripes":
        second = torso & ((u % (p * 1.2)) < p * 0.5)
    elif outfit.pattern == "checks":
        second = ((u % p) < p / 2) ^ ((v % p) < p / 2)
    elif outfit.pattern == "block":
        second = torso & (v > 0.62) | uarm
    elif outfit.pattern == "jacket":  # open jacket: shirt of another colour in the middle of the front
        second = front & (np.abs(u - 0.5) < 0.16)
    else:
        second = np.zeros_like(upper)
    img[:] = skin
    img[upper] = up
    img[upper & second] = up2

    # lower garment: the torso below the waist, the legs (trousers reach the ankles)
    lower = (torso & (v < outfit.waist)) | uleg & (outfit.trousers | (v > outfit.shorts_len))
    lower |= lleg & outfit.trousers & (v > 0.06)
    img[lower] = low
    img[torso & (np.abs(v - outfit.waist) < 0.025)] = low * 0.6  # belt line
    img[feet | (lleg & (v <= 0.06))] = SHOES[outfit.shoes]
    img[feet & (v < 0.25)] *= 0.7  # soles

    # localised marks: each shows only from some viewpoints
    if outfit.logo:
        col, lu, lv, hw, hh, rnd = outfit.logo
        du, dv = (u - lu) / hw, (v - lv) / hh
        inside = (du ** 2 + dv ** 2 <= 1) if rnd else (np.abs(du) <= 1) & (np.abs(dv) <= 1)
        img[front & inside] = GARMENT[col]
    if outfit.back:
        col, bv, hw, hh, striped = outfit.back
        inside = (np.abs(u - 0.5) <= hw) & (np.abs(v - bv) <= hh)
        if striped:
            inside &= ((v - bv) % 0.08) < 0.04
        img[back & inside] = GARMENT[col]
    if outfit.sleeve:
        col, side, v0, width, on_lower = outfit.sleeve
        part = "lower arm" if on_lower else "upper arm"
        arm = _in(c, f"{part} {side} front", f"{part} {side} back")
        img[arm & (v >= v0) & (v <= v0 + width)] = GARMENT[col]
    if outfit.strap:
        col, side = outfit.strap
        # a diagonal band from one shoulder to the opposite hip, seen on the front and the back;
        # U runs to the person's left on the front chart and to the right on the back chart
        mirror = 1.0 if side == "left" else -1.0
        along_front = 0.5 + mirror * (u - 0.5)
        along_back = 0.5 - mirror * (u - 0.5)
        on_front = np.abs(v - (1.0 - 1.25 * (0.8 - along_front))) < 0.06
        on_back = np.abs(v - (1.0 - 1.25 * (0.8 - along_back))) < 0.06
        img[(front & on_front) | (back & on_back)] = GARMENT[col] * 0.8

    # head: the face toward the front of each half, hair on top and at the back
    right = c == chart("head right")
    toward_front = np.where(right, u, 1.0 - u)  # 1 at the face, 0 at the back of the head
    hairline = 0.7
    hair_mask = head & ((v > hairline) | ((toward_front < 0.5) & (v > (0.12 if outfit.hair_long else 0.42))))
    hair_mask |= head & (toward_front < 0.62) & (v > 0.76)
    img[head] = skin
    img[hair_mask] = hair
    eyes = head & (np.abs(toward_front - 0.86) < 0.05) & (np.abs(v - 0.56) < 0.04)
    img[eyes] = skin * 0.3
    mouth = head & (toward_front > 0.93) & (np.abs(v - 0.3) < 0.025)
    img[mouth] = skin * 0.6

    # a faint per-chart tone: fabric panels catch the light differently (keeps the PNG small)
    img *= (1.0 + rng.uniform(-0.04, 0.04, size=25).astype(np.float32))[c][..., None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
