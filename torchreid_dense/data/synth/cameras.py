"""The six SynthReID cameras and the per-image view they sample (issue 3, "Cameras").

Each camera has its own viewpoint distribution (mostly front, mostly back, side, mixed, ...),
lighting and colour cast, background style, blur and resolution. Every image also gets the
detector's imperfection: box scale and offset jitter (the body may be cut off) and, sometimes, an
occluder in front of the person.
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["CameraStyle", "View", "CAMERAS", "NUM_CAMERAS", "sample_view"]


@dataclass(frozen=True)
class CameraStyle:
    """Fixed properties of one camera (angles in degrees, colours RGB 0..255)."""

    name: str
    yaw_mean: float            # preferred viewpoint: 0 = the person faces the camera, 180 = seen from the back
    yaw_std: float
    yaw_mirror: bool           # the viewpoint is as likely at -yaw_mean (side cameras)
    yaw_uniform: bool          # any viewpoint (overrides mean/std)
    gains: tuple               # colour cast (RGB multipliers)
    brightness: float
    ambient: float             # share of ambient light (the rest is directional)
    light_azimuth: float       # direction the light comes from, in the image plane (0 = from the left)
    blur: tuple                # gaussian sigma range, pixels at the output size
    resolution: tuple          # kept resolution range (fraction of the output size)
    noise: float               # sensor noise std (0..255 scale)
    wall: tuple                # two wall colours
    ground: tuple              # ground colour
    horizon: tuple             # horizon height range (fraction of the image height from the top)
    clutter: int               # number of clutter objects in the background


# The six cameras as a table: one row per CameraStyle field, one column per camera (c1 .. c6, in this order).
_CAMERA_TABLE = {
    "name": ("c1 entrance, mostly front", "c2 corridor, mostly back", "c3 street, side view",
             "c4 square, any view, low resolution", "c5 shop, front diagonal", "c6 parking, back diagonal, dim"),
    "yaw_mean": (0, 180, 90, 0, 40, 140),
    "yaw_std": (30, 30, 25, 0, 20, 20),
    "yaw_mirror": (False, False, True, False, True, True),
    "yaw_uniform": (False, False, False, True, False, False),
    "gains": ((1.08, 1.0, 0.86), (0.86, 0.97, 1.14), (0.92, 1.06, 0.9), (1.0, 1.0, 1.0), (1.06, 0.9, 1.06),
              (1.06, 1.0, 0.78)),
    "brightness": (1.05, 0.95, 0.82, 1.12, 0.98, 0.72),
    "ambient": (0.55, 0.6, 0.5, 0.7, 0.5, 0.45),
    "light_azimuth": (30, 150, 60, 90, 120, 20),
    "blur": ((0.0, 0.5), (0.3, 0.8), (0.4, 1.0), (0.3, 0.7), (0.2, 0.6), (0.4, 0.9)),
    "resolution": ((0.85, 1.0), (0.7, 0.9), (0.55, 0.75), (0.4, 0.6), (0.75, 0.95), (0.6, 0.85)),
    "noise": (3.0, 4.0, 5.0, 3.0, 3.5, 7.0),
    "wall": (((196, 186, 160), (150, 140, 118)), ((170, 178, 190), (96, 104, 120)), ((118, 130, 104), (80, 92, 72)),
             ((140, 160, 176), (200, 200, 196)), ((200, 170, 178), (120, 100, 110)), ((92, 88, 80), (60, 58, 52))),
    "ground": ((120, 116, 110), (84, 88, 96), (96, 96, 90), (150, 146, 138), (110, 100, 104), (70, 70, 66)),
    "horizon": ((0.55, 0.7), (0.6, 0.8), (0.5, 0.7), (0.45, 0.65), (0.55, 0.75), (0.5, 0.7)),
    "clutter": (4, 3, 6, 5, 5, 4),
}
CAMERAS = tuple(CameraStyle(**dict(zip(_CAMERA_TABLE, values))) for values in zip(*_CAMERA_TABLE.values()))
NUM_CAMERAS = len(CAMERAS)


@dataclass(frozen=True)
class View:
    """One image's camera-dependent draws: viewpoint, framing, lighting, degradation."""

    yaw: float          # radians
    scale: float        # pixels per body unit
    cx: float           # image x of the body's centre line
    ground: float       # image y of the ground under the person
    light: tuple        # unit vector towards the light (world, camera looks along -z)
    ambient: float
    gains: tuple
    blur: float
    resolution: float
    noise: float


def sample_view(rng, style, height, width, jitter=1.0, yaw_spread=1.0):
    """Draw one view of ``style`` for an output image of ``height x width``.

    ``jitter`` scales the detector's box scale/offset errors (0 = a perfect box); ``yaw_spread`` scales the
    viewpoint's spread around the camera's preferred one (the any-view camera's range is +-180 * yaw_spread,
    capped at +-180). ``yaw_spread`` leaves the random draws as they are (a scaled view of the same people).
    """
    if style.yaw_uniform:
        half = 180.0 * min(1.0, yaw_spread)
        yaw = rng.uniform(-half, half)
    else:
        mean = style.yaw_mean * (rng.choice([-1.0, 1.0]) if style.yaw_mirror else 1.0)
        yaw = mean + rng.normal(0.0, style.yaw_std * yaw_spread)
    # framing: a person of 1.75 units fills ~88% of the height; the detector's box is imperfect
    fill = 0.88 * np.exp(rng.normal(0.0, 0.07 * jitter))
    scale = fill * height / 1.75
    cx = width / 2.0 + rng.normal(0.0, 0.07 * jitter) * width
    ground = height * (0.5 + fill / 2.0) + rng.normal(0.0, 0.035 * jitter) * height
    if rng.random() < 0.12 * jitter:  # a badly placed box cuts the feet or the head off
        ground += rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.18) * height
    az = np.deg2rad(style.light_azimuth + rng.normal(0.0, 25.0))
    light = np.array([-np.cos(az), 0.55 + rng.uniform(-0.2, 0.2), 0.8])
    light = light / np.linalg.norm(light)
    gains = np.array(style.gains) * np.exp(rng.normal(0.0, 0.04, 3)) * style.brightness * np.exp(rng.normal(0.0, 0.1))
    return View(
        yaw=float(np.deg2rad(yaw)), scale=float(scale), cx=float(cx), ground=float(ground),
        light=tuple(float(x) for x in light), ambient=float(style.ambient), gains=tuple(float(g) for g in gains),
        blur=float(rng.uniform(*style.blur)), resolution=float(rng.uniform(*style.resolution)),
        noise=float(style.noise),
    )
