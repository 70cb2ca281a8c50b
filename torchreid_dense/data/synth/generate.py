"""Writer of the SynthReID data set: presets, the image plan, parallel rendering, manifest.

Layout (issue 3, "Layout and integration")::

    <root>/synthreid/<preset>_s<seed>/          (+ "_<H>x<W>" when the size is not the preset's)
        bounding_box_train/  bounding_box_test/  query/     Market-1501 names PPPP_cCs1_FFFFFF_NN.jpg
        pit/tTTTT_vVV.jpg                                   SAN's (image, full texture) pairs, no labels
        densepose/<rel>/<stem>.png      estimated IUV (missing where the detection failed)
        densepose_gt/<rel>/<stem>.png   ground-truth IUV
        textures/<rel>/<stem>.png       the identity's full texture atlas
        manifest.json

Everything is drawn from ``np.random.default_rng([seed, ...])`` keyed by what is drawn (the plan,
an identity, an image), so the files are byte-identical whatever the number of workers. The data
set is written into a temporary sibling directory and renamed into place when complete.
"""
import dataclasses
import json
import multiprocessing
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass, field

import cv2
import numpy as np

from ...dense.atlas import atlas_shape
from ...dense.iuv import encode_iuv_png
from ...utils.io import encode_png
from .body import build_body, sample_pose, sample_shape
from .cameras import CAMERAS, NUM_CAMERAS, sample_view
from .degrade import DegradeParams, estimate_iuv
from .render import render
from .textures import make_atlas, sample_outfit

__all__ = ["GENERATOR_VERSION", "SynthConfig", "PRESETS", "make_config", "dataset_dir", "generate_dataset",
           "ensure_dataset", "read_manifest", "identity", "render_sample", "ManifestMismatchError"]

GENERATOR_VERSION = "1.0"
# parameters added to SynthConfig after generator 1.0 was released, with the value the older sets were made with
_ADDED_PARAMS = {"misalignment": 1.0}
_SPLIT_CODE = {"bounding_box_train": 1, "query": 2, "bounding_box_test": 2, "distractor": 3, "pit": 4}


class ManifestMismatchError(RuntimeError):
    """An existing SynthReID directory was generated with other settings than the ones asked for."""


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


def identity(seed, kind, index, tile=32):
    """Body shape, outfit and atlas of a re-ID identity, distractor or PIT texture (deterministic)."""
    rng = np.random.default_rng([seed, 10 + _SPLIT_CODE[kind], index])
    shape = sample_shape(rng)
    outfit = sample_outfit(rng)
    return shape, outfit, make_atlas(outfit, tile)


def render_sample(shape, atlas, cam, rng, config):
    """Render one image of a person with camera ``cam`` (0-based) and estimate its IUV.

    Returns:
        ``(rendering, estimated_iuv or None, info)`` (see ``render.render``, ``degrade.estimate_iuv``).
    """
    style, m = CAMERAS[cam], config.misalignment
    view = sample_view(rng, style, config.height, config.width, jitter=config.box_jitter * m, yaw_spread=m)
    prims = build_body(shape, sample_pose(rng, spread=m), view.yaw)
    out = render(prims, atlas, view, style, rng, config.height, config.width,
                 occluder_prob=min(1.0, config.occluder * m))
    est, info = estimate_iuv(out.iuv, rng, config.degrade)
    return out, est, info


# ----------------------------------------------------------------------------- plan
def _plan(config, seed):
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


# ----------------------------------------------------------------------------- writing
def _write(path, data):
    # plain writes: the whole directory becomes visible in one rename when complete
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class _Renderer:
    """Renders and writes plan entries; keeps the last identities' atlases (jobs come grouped)."""

    def __init__(self, config, seed, out_dir):
        self.config, self.seed, self.out_dir = config, seed, out_dir
        self._cache = {}

    def _identity(self, key):
        if key not in self._cache:
            if len(self._cache) > 16:
                self._cache.clear()
            shape, _, atlas = identity(self.seed, key[0], key[1], self.config.tile)
            self._cache[key] = (shape, atlas, encode_png(atlas))
        return self._cache[key]

    def __call__(self, job):
        rel, key, cam, rng_key = job
        shape, atlas, atlas_png = self._identity(key)
        out, est, info = render_sample(shape, atlas, cam, np.random.default_rng(list(rng_key)), self.config)
        stem = osp.splitext(rel)[0] + ".png"
        ok, jpg = cv2.imencode(".jpg", out.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        _write(osp.join(self.out_dir, rel), jpg.tobytes())
        _write(osp.join(self.out_dir, "densepose_gt", stem), encode_iuv_png(out.iuv, rel))
        _write(osp.join(self.out_dir, "textures", stem), atlas_png)
        if est is not None:
            _write(osp.join(self.out_dir, "densepose", stem), encode_iuv_png(est, rel))
        return rel, info["detected"], bool(info["swapped"])


_WORKER = None


def _init_worker(config, seed, out_dir):
    global _WORKER  # per-process state of a multiprocessing worker
    cv2.setNumThreads(1)
    _WORKER = _Renderer(config, seed, out_dir)


def _run_chunk(jobs):
    return [_WORKER(j) for j in jobs]


def _chunks(jobs, size):
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


def generate_dataset(root, preset="small", seed=0, workers=1, config=None, progress=True, force=False):
    """Generate SynthReID into ``dataset_dir(root, preset, seed, config)`` and return that path.

    Args:
        root: the data root (the set goes to ``<root>/synthreid/...``).
        preset: ``tiny``, ``small`` or ``full`` (or any label when ``config`` is given).
        seed: the random seed; the files depend only on (config, seed).
        workers: processes rendering in parallel (the output does not depend on it).
        config: a :class:`SynthConfig` replacing the preset's.
        progress: show a tqdm progress bar.
        force: replace an existing directory.
    """
    config = config or make_config(preset)
    out = dataset_dir(root, preset, seed, config)
    if osp.exists(out) and not force:
        raise FileExistsError(f"{out} already exists; use ensure_dataset() to reuse it or force=True to replace it")
    parent = osp.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{osp.basename(out)}.incomplete-", dir=parent)
    try:
        jobs = _plan(config, seed)
        chunks = _chunks(jobs, 32)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(jobs), desc=f"SynthReID {osp.basename(out)}", unit="img")
        results = []
        if workers <= 1:
            _init_worker(config, seed, tmp)
            for c in chunks:
                results.extend(_run_chunk(c))
                if bar is not None:
                    bar.update(len(c))
        else:
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
            with ctx.Pool(workers, initializer=_init_worker, initargs=(config, seed, tmp)) as pool:
                for res in pool.imap(_run_chunk, chunks):
                    results.extend(res)
                    if bar is not None:
                        bar.update(len(res))
        if bar is not None:
            bar.close()
        _write(osp.join(tmp, "manifest.json"), _manifest(config, preset, seed, jobs, results))
        if osp.exists(out) and force:
            old = tempfile.mkdtemp(prefix=f".{osp.basename(out)}.old-", dir=parent)
            os.rename(out, osp.join(old, "x"))
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _manifest(config, preset, seed, jobs, results):
    rels = [j[0] for j in jobs]
    split_of = [r.split("/")[0] for r in rels]
    pids = [int(osp.basename(r)[:4]) for r in rels if not r.startswith("pit/")]
    train_pids = {p for r, p in zip(rels, pids) if r.startswith("bounding_box_train/")}
    test_pids = {p for r, p in zip(rels, pids) if not r.startswith("bounding_box_train/") and p > 0}
    no_det = sorted(r for r, det, _ in results if not det)
    counts = {
        "train_images": split_of.count("bounding_box_train"), "train_ids": len(train_pids),
        "query_images": split_of.count("query"), "gallery_images": split_of.count("bounding_box_test"),
        "test_ids": len(test_pids), "distractor_images": sum(1 for r in rels if osp.basename(r).startswith("0000_")),
        "pit_images": split_of.count("pit"), "pit_textures": config.pit_textures,
        "no_detection_images": len(no_det), "swapped_images": sum(1 for _, _, s in results if s),
    }
    manifest = {
        "generator": "torchreid_dense.data.synth", "generator_version": GENERATOR_VERSION, "preset": preset,
        "seed": int(seed), "params": config.to_dict(), "counts": counts,
        "atlas_shape": list(atlas_shape(config.tile)), "no_detection": no_det,
    }
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def read_manifest(path):
    """The manifest of a SynthReID directory (a dict); raises FileNotFoundError naming the file."""
    with open(osp.join(path, "manifest.json")) as f:
        return json.load(f)


def ensure_dataset(root, preset="small", seed=0, config=None, workers=1, progress=True):
    """Reuse ``dataset_dir(...)`` if its manifest matches, generate it when missing.

    Raises:
        ManifestMismatchError: the directory exists but was generated with another generator version,
            preset, seed or parameters (never silently mixed).
    """
    config = config or make_config(preset)
    out = dataset_dir(root, preset, seed, config)
    if not osp.exists(out):
        try:
            return generate_dataset(root, preset, seed, workers=workers, config=config, progress=progress)
        except FileExistsError:  # another process finished it first
            pass
    try:
        manifest = read_manifest(out)
    except (FileNotFoundError, json.JSONDecodeError) as e:
        raise ManifestMismatchError(
            f"{out} exists but has no readable manifest.json ({e}); it was not written by this generator "
            "or is damaged: delete the directory and it will be regenerated") from None
    want = {"generator_version": GENERATOR_VERSION, "preset": preset, "seed": int(seed), "params": config.to_dict()}
    # sets written before a parameter existed were generated with its default (the generator is unchanged there)
    manifest["params"] = {**_ADDED_PARAMS, **(manifest.get("params") or {})}
    diff = [k for k, v in want.items() if manifest.get(k) != v]
    if diff:
        detail = "; ".join(f"{k}: on disk {manifest.get(k)!r}, asked {want[k]!r}" for k in diff if k != "params")
        if "params" in diff:
            have = manifest.get("params") or {}
            keys = sorted(k for k in set(have) | set(want["params"]) if have.get(k) != want["params"].get(k))
            detail = "; ".join(filter(None, [detail, f"params differ in {keys}"]))
        raise ManifestMismatchError(
            f"{out} was generated with other settings ({detail}). Delete it, or regenerate it with "
            f"`python tools/make_synthreid.py --root {root} --preset {preset} --seed {seed} --force`")
    return out
