"""The image plan of a SynthReID generation: every image to render, its identity and camera, and the random
draws of each identity, all keyed by what is drawn so that they do not depend on the order of rendering."""
import numpy as np

from .body import sample_shape
from .cameras import NUM_CAMERAS
from .textures import make_atlas, sample_outfit

__all__ = ["identity", "plan_images"]

_SPLIT_CODE = {"bounding_box_train": 1, "query": 2, "bounding_box_test": 2, "distractor": 3, "pit": 4}


def identity(seed, kind, index, tile=32):
    """Body shape, outfit and atlas of a re-ID identity, distractor or PIT texture (deterministic)."""
    rng = np.random.default_rng([seed, 10 + _SPLIT_CODE[kind], index])
    shape = sample_shape(rng)
    outfit = sample_outfit(rng)
    return shape, outfit, make_atlas(outfit, tile)


def plan_images(config, seed):
    """Every image to render: (rel path, (kind, index), camera 0-based, rng key)."""
    rng = np.random.default_rng([seed, 0])
    jobs = []
    frame = [0]

    def name(pid, cam):
        frame[0] += 1
        return f"{pid:04d}_c{cam + 1}s1_{frame[0] * 7:06d}_{1 + frame[0] % 6:02d}.jpg"

    def cameras(lo_hi):
        n = int(rng.integers(lo_hi[0], min(lo_hi[1], NUM_CAMERAS) + 1))
        return np.sort(rng.choice(NUM_CAMERAS, size=n, replace=False))

    ntr, nte = config.num_train_ids, config.num_test_ids
    if ntr + nte > 1501:
        raise ValueError(f"Market-1501 names allow at most 1501 identities, asked for {ntr} + {nte}")
    for pid in range(1, ntr + 1):
        cams = cameras(config.train_cameras)
        n = int(rng.integers(config.train_images[0], config.train_images[1] + 1))
        per_image = np.concatenate([cams, rng.choice(cams, size=max(0, n - len(cams)))])[:n]
        for i, cam in enumerate(per_image):
            jobs.append((f"bounding_box_train/{name(pid, cam)}", ("bounding_box_train", pid), int(cam),
                         (seed, 1, pid, i)))
    for pid in range(ntr + 1, ntr + nte + 1):
        i = 0
        for cam in cameras(config.test_cameras):
            m = int(rng.integers(config.test_images_per_camera[0], config.test_images_per_camera[1] + 1))
            for j in range(max(2, m)):
                split = "query" if j == 0 else "bounding_box_test"
                jobs.append((f"{split}/{name(pid, cam)}", ("bounding_box_test", pid), int(cam), (seed, 2, pid, i)))
                i += 1
    for d in range(config.distractors):
        cam = int(rng.integers(NUM_CAMERAS))
        jobs.append((f"bounding_box_test/{name(0, cam)}", ("distractor", d), cam, (seed, 3, d)))
    for t in range(1, config.pit_textures + 1):
        for vw in range(1, config.pit_views + 1):
            jobs.append((f"pit/t{t:04d}_v{vw:02d}.jpg", ("pit", t), int(rng.integers(NUM_CAMERAS)), (seed, 4, t, vw)))
    return jobs
