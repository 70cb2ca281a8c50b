"""SynthReID's settings: :class:`SynthConfig`, the presets, and the directory a configuration is written to."""
import dataclasses
import json
import os
import os.path as osp
from dataclasses import dataclass, field

from .degrade import DegradeParams

__all__ = ["SynthConfig", "PRESETS", "make_config", "dataset_dir"]


@dataclass(frozen=True)
class SynthConfig:
    """Every setting of a SynthReID generation (recorded in ``manifest.json``)."""

    num_train_ids: int = 300
    num_test_ids: int = 300
    train_images: tuple = (12, 16)          # images per training identity
    train_cameras: tuple = (2, 6)           # cameras a training identity is seen by
    test_cameras: tuple = (2, 4)            # cameras a test identity is seen by
    test_images_per_camera: tuple = (2, 4)  # per camera: one query, the rest gallery
    distractors: int = 200                  # gallery images of people who are no test identity (pid 0)
    pit_textures: int = 200                 # PIT textures, disjoint from the re-ID identities
    pit_views: int = 4                      # renderings of every PIT texture
    height: int = 128
    width: int = 64
    tile: int = 32                          # texture atlas tile N (atlas 6N x 4N)
    occluder: float = 0.15                  # probability of an occluder in front of the person
    box_jitter: float = 1.0                 # scale of the detector's box errors
    misalignment: float = 1.0               # scales pose and viewpoint spread, box jitter and occluder odds
    degrade: DegradeParams = field(default_factory=DegradeParams)

    def to_dict(self):
        d = dataclasses.asdict(self)
        return json.loads(json.dumps(d))  # tuples -> lists, as stored in the manifest


PRESETS = {
    "tiny": SynthConfig(num_train_ids=20, num_test_ids=20, train_images=(6, 8), train_cameras=(2, 4),
                        test_cameras=(2, 3), test_images_per_camera=(2, 3), distractors=10, pit_textures=8,
                        pit_views=3),
    "small": SynthConfig(),
    "full": SynthConfig(num_train_ids=751, num_test_ids=750, train_images=(12, 22), train_cameras=(2, 6),
                        test_cameras=(2, 6), test_images_per_camera=(2, 6), distractors=2000,
                        pit_textures=1000, pit_views=4),
}


def make_config(preset="small", height=None, width=None, **overrides):
    """The preset's configuration with the image size and any other field replaced."""
    if preset not in PRESETS:
        raise KeyError(f"unknown SynthReID preset '{preset}'; choose one of {sorted(PRESETS)}")
    cfg = PRESETS[preset]
    if height is not None:
        overrides["height"] = int(height)
    if width is not None:
        overrides["width"] = int(width)
    return dataclasses.replace(cfg, **overrides)


def dataset_dir(root, preset="small", seed=0, config=None):
    """``<root>/synthreid/<preset>_s<seed>`` (with ``_<H>x<W>`` when the size differs from the preset's and
    ``_m<misalignment>`` when that is not the preset's)."""
    name = f"{preset}_s{seed}"
    if config is not None and preset in PRESETS:
        base = PRESETS[preset]
        if (config.height, config.width) != (base.height, base.width):
            name += f"_{config.height}x{config.width}"
        if config.misalignment != base.misalignment:
            name += f"_m{config.misalignment:g}"
    return osp.join(osp.abspath(osp.expanduser(os.fspath(root))), "synthreid", name)
