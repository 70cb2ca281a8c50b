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

Parts: :mod:`.presets` (the settings), :mod:`.plan` (what to render), :mod:`.manifest` (what was made); this
module renders and writes.
"""
import multiprocessing
import os
import os.path as osp
import shutil
import tempfile

import cv2
import numpy as np

from ...dense.iuv import encode_iuv_png
from ...utils.io import encode_png
from .body import build_body, sample_pose
from .cameras import CAMERAS, sample_view
from .degrade import estimate_iuv
from .manifest import GENERATOR_VERSION, ManifestMismatchError, build_manifest, check_manifest, read_manifest
from .plan import identity, plan_images
from .presets import PRESETS, SynthConfig, dataset_dir, make_config
from .render import render

__all__ = ["GENERATOR_VERSION", "SynthConfig", "PRESETS", "make_config", "dataset_dir", "generate_dataset",
           "ensure_dataset", "read_manifest", "identity", "render_sample", "ManifestMismatchError"]



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
        jobs = plan_images(config, seed)
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
        _write(osp.join(tmp, "manifest.json"), build_manifest(config, preset, seed, jobs, results))
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
    check_manifest(out, root, preset, seed, config)
    return out
