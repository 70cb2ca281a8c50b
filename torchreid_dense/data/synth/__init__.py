"""SynthReID: the embedded procedural person re-ID data set with ground-truth dense semantics.

Identities are DensePose-layout texture atlases plus body shapes (``textures``, ``body``), rendered
by a z-buffered ray caster that writes the image and its exact IUV map in one pass (``render``)
through six cameras (``cameras``, ``scene``); ``degrade`` turns the ground truth into DensePose-like
estimates and ``generate`` writes the Market-1501-style directory.
"""
from .body import BodyShape, Pose, build_body, sample_pose, sample_shape
from .cameras import CAMERAS, NUM_CAMERAS, sample_view
from .degrade import DegradeParams, estimate_iuv
from .generate import (GENERATOR_VERSION, PRESETS, ManifestMismatchError, SynthConfig, dataset_dir, ensure_dataset,
                       generate_dataset, make_config, read_manifest, render_sample)
from .render import Rendering, rasterize
from .textures import Outfit, make_atlas, sample_outfit
