"""The small colour palettes SynthReID draws clothing from (issue 3: "colours from a small palette").

Few colours on purpose: many identities share their colours and differ only in where patterns and
marks sit on the body, so a colour histogram cannot tell them apart.
"""
import numpy as np

__all__ = ["GARMENT", "GARMENT_NAMES", "LOWER_WEIGHTS", "SKIN", "HAIR", "SHOES"]

# name -> RGB
_GARMENT = {
    "black": (32, 32, 36),
    "white": (222, 222, 215),
    "grey": (125, 125, 128),
    "navy": (34, 44, 92),
    "red": (172, 36, 42),
    "blue": (52, 96, 172),
    "green": (48, 108, 62),
    "khaki": (182, 160, 112),
    "brown": (104, 70, 44),
    "yellow": (222, 188, 58),
}
GARMENT_NAMES = tuple(_GARMENT)
GARMENT = np.array(list(_GARMENT.values()), dtype=np.float32)

# Lower garments are mostly dark/neutral, as in street scenes (weights over GARMENT_NAMES).
LOWER_WEIGHTS = np.array([4, 1, 2, 3, 0.3, 3, 0.5, 2, 1.5, 0.2], dtype=np.float64)
LOWER_WEIGHTS = LOWER_WEIGHTS / LOWER_WEIGHTS.sum()

SKIN = np.array([(236, 196, 164), (210, 160, 120), (160, 112, 76), (98, 64, 44)], dtype=np.float32)
HAIR = np.array([(22, 18, 16), (58, 38, 24), (112, 78, 44), (196, 160, 96), (150, 150, 150)], dtype=np.float32)
SHOES = np.array([(24, 24, 26), (218, 218, 212), (92, 60, 38), (110, 110, 116)], dtype=np.float32)
