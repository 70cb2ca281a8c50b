"""SynthReID (issue 3): determinism, IUV/image consistency, Market-1501 layout, estimated-IUV rates."""
import dataclasses
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

import torchreid_dense
import torchreid_dense.data.datasets  # noqa: F401  (registers synthreid*)
from torchreid_dense import compat
from torchreid_dense.data.synth import body as body_mod
from torchreid_dense.data.synth.body import BodyShape, Pose, build_body, chart
from torchreid_dense.data.synth.cameras import CAMERAS, sample_view
from torchreid_dense.data.synth.degrade import SWAP_GROUPS, DegradeParams, estimate_iuv
from torchreid_dense.data.synth.generate import (ManifestMismatchError, SynthConfig, dataset_dir, ensure_dataset,
                                                 generate_dataset, identity, make_config, read_manifest,
                                                 render_sample)
from torchreid_dense.data.synth.plan import plan_images as _plan
from torchreid_dense.data.synth.render import rasterize, render
from torchreid_dense.data.synth.textures import make_atlas, sample_outfit
from torchreid_dense.dense.atlas import render_from_atlas
from torchreid_dense.dense.iuv import read_iuv
from torchreid_dense.dense.parts import FLIP_CHART
from torchreid_dense.dense.sidecar import sidecar_path

MICRO = SynthConfig(num_train_ids=3, num_test_ids=3, train_images=(2, 3), train_cameras=(2, 2), test_cameras=(2, 2),
                    test_images_per_camera=(2, 2), distractors=2, pit_textures=2, pit_views=2)


def _files(root):
    out = {}
    for path in sorted(glob.glob(osp.join(root, "**", "*"), recursive=True)):
        if osp.isfile(path):
            with open(path, "rb") as f:
                out[osp.relpath(path, root)] = f.read()
    return out


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_tiny")
    generate_dataset(root, "tiny", 0, workers=2, progress=False)
    return str(root)


# ---------------------------------------------------------------------------------------------- determinism
def test_generation_is_byte_identical_and_independent_of_workers(tmp_path):
    a = generate_dataset(tmp_path / "a", "micro", 3, workers=1, config=MICRO, progress=False)
    b = generate_dataset(tmp_path / "b", "micro", 3, workers=2, config=MICRO, progress=False)
    c = generate_dataset(tmp_path / "c", "micro", 4, workers=1, config=MICRO, progress=False)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert len(fa) > 60 and fa == fb
    images = [k for k in fa if k.endswith(".jpg")]
    assert len(images) == len(_plan(MICRO, 3))
    assert sum(k.startswith("query/") for k in images) == 3 * 2 and sum(k.startswith("pit/") for k in images) == 4
    assert 4 * len(images) - read_manifest(a)["counts"]["no_detection_images"] + 1 == len(fa)
    assert sum(fa[k] != fc.get(k) for k in fa) > 0.5 * len(fa)  # another seed, other files
    # no temporary directory is left next to the data sets
    assert sorted(os.listdir(tmp_path / "a" / "synthreid")) == ["micro_s3"]


def test_files_match_a_fresh_render(tmp_path):
    """Every sidecar on disk is what the renderer produced for that plan entry (channel order I, U, V)."""
    out = generate_dataset(tmp_path, "micro", 5, workers=1, config=MICRO, progress=False)
    for rel, (kind, idx), cam, key in _plan(MICRO, 5)[::5]:
        shape, _, atlas = identity(5, kind, idx, MICRO.tile)
        r, est, info = render_sample(shape, atlas, cam, np.random.default_rng(list(key)), MICRO)
        img_path = osp.join(out, rel)
        np.testing.assert_array_equal(read_iuv(sidecar_path(out, img_path, "densepose_gt"), size=(128, 64)), r.iuv)
        np.testing.assert_array_equal(np.asarray(Image.open(sidecar_path(out, img_path, "textures"))), atlas)
        est_path = sidecar_path(out, img_path, "densepose")
        assert osp.exists(est_path) == info["detected"]
        if est is not None:
            np.testing.assert_array_equal(read_iuv(est_path, size=(128, 64)), est)
        jpg = np.asarray(Image.open(img_path).convert("RGB")).astype(int)
        assert np.abs(jpg - r.image).mean() < 4  # JPEG q95 of the rendered image
    manifest = read_manifest(out)
    missing = sorted(osp.relpath(p, out) for p in glob.glob(osp.join(out, "*", "*.jpg"))
                     if not osp.exists(sidecar_path(out, p, "densepose")))
    assert manifest["no_detection"] == missing
    assert manifest["counts"]["no_detection_images"] == len(missing)


# ---------------------------------------------------------------------------------------------- renderer
def _person(seed=0):
    rng = np.random.default_rng(seed)
    return BodyShape(), make_atlas(sample_outfit(rng), 32)


@pytest.mark.parametrize("seed", range(6))
def test_iuv_is_exact_and_atlas_reproduces_albedo(seed):
    rng = np.random.default_rng([9, seed])
    shape, atlas = _person(seed)
    style = CAMERAS[seed % 6]
    view = sample_view(rng, style, 128, 64)
    r = render(build_body(shape, Pose(phase=seed), view.yaw), atlas, view, style, rng, 128, 64, occluder_prob=0.5)
    labels = r.iuv[0]
    assert labels.max() <= 24 and (labels > 0).sum() > 300
    assert (r.iuv[1:, labels == 0] == 0).all()  # background: label 0 and U = V = 0
    assert (r.albedo[labels == 0] == 0).all()
    if r.occluder is not None:
        assert (labels[r.occluder] == 0).all()  # the occluder hides the body in the ground truth
    image, mask = render_from_atlas(torch.from_numpy(atlas).permute(2, 0, 1)[None].float(),
                                    torch.from_numpy(r.iuv)[None])
    np.testing.assert_array_equal(mask[0, 0].numpy(), labels > 0)
    np.testing.assert_array_equal(image[0].permute(1, 2, 0).numpy().astype(np.uint8), r.albedo)


def _raster(yaw, pose=Pose(phase=0.0, leg_swing=0.1, arm_swing=0.0, abduction=0.05, lean=0.0), prims=None):
    prims = prims if prims is not None else build_body(BodyShape(), pose, yaw)
    return rasterize(prims, 66.0, 32.0, 122.0, 128, 64)


def test_front_and_back_charts_follow_yaw():
    front, back = chart("torso front"), chart("torso back")
    at0, at180 = _raster(0.0).labels, _raster(np.pi).labels
    assert (at0 == front).sum() > 400 and (at0 == back).sum() == 0
    assert (at180 == back).sum() > 400 and (at180 == front).sum() == 0
    face = (at0 == chart("head right")).sum(), (at0 == chart("head left")).sum()
    assert min(face) > 20  # both head halves meet at the face
    side = _raster(-np.pi / 2).labels  # facing the camera's left: the person's left side faces the camera
    assert (side == chart("upper arm left front")).sum() + (side == chart("upper arm left back")).sum() > 30
    assert (side == chart("upper arm right front")).sum() + (side == chart("upper arm right back")).sum() == 0


def test_u_and_v_are_continuous_over_a_surface():
    ras = _raster(0.0)
    front = ras.labels == chart("torso front")
    row = int(np.argmax(front.sum(1)))  # the widest torso row
    cols = np.flatnonzero(front[row])
    u = ras.u[row, cols]
    assert np.ptp(cols) + 1 == len(cols) and np.all(np.diff(u) > 0) and u[-1] - u[0] > 0.5
    assert abs(u[0] + u[-1] - 1.0) < 0.1  # symmetric about the front centre line (U = 0.5)
    col = int(np.median(cols))
    rows = np.flatnonzero(front[:, col])
    v = ras.v[rows, col]
    assert np.all(np.diff(v) <= 0) and np.abs(np.diff(v)).max() < 0.05  # V falls smoothly downwards


def test_limbs_occlude_the_torso_at_side_views():
    prims = build_body(BodyShape(), Pose(phase=0.0, leg_swing=0.1, arm_swing=0.0, abduction=0.0, lean=0.0),
                       -np.pi / 2)
    torso = (chart("torso front"), chart("torso back"))
    keep = np.array([c in torso or c in (chart("head right"),) for c in prims.chart_a])
    only_torso = body_mod.Primitives(**{f.name: getattr(prims, f.name)[keep]
                                        for f in dataclasses.fields(prims)})
    full, alone = _raster(None, prims=prims).labels, _raster(None, prims=only_torso).labels
    hidden = np.isin(alone, torso) & ~np.isin(full, torso)
    assert hidden.sum() > 50  # the near arm covers part of the torso
    near_arm = [chart(f"{p} arm left {f}") for p in ("upper", "lower") for f in ("front", "back")] + [chart("left hand")]
    near_leg = [chart(f"upper leg left {f}") for f in ("front", "back")]
    assert np.isin(full[hidden], near_arm + near_leg).all()  # only limbs of the near side cover it
    assert np.isin(full[hidden], near_arm).mean() > 0.6

# ---------------------------------------------------------------------------------------------- estimated IUV
def _gt_maps(n=25):
    shape, atlas = _person(3)
    cfg = make_config("tiny")
    maps = []
    for i in range(n):
        rng = np.random.default_rng([4, i])
        maps.append(render_sample(shape, atlas, i % 6, rng, dataclasses.replace(cfg, occluder=0.0))[0].iuv)
    return maps


def test_estimated_iuv_error_rates_match_their_parameters():
    params = DegradeParams(no_detection=0.3, swap=0.25)
    maps = _gt_maps()
    detected, swapped, trials, checked = 0, 0, 0, 0
    for i in range(16):
        for j, gt in enumerate(maps):
            est, info = estimate_iuv(gt, np.random.default_rng([i, j]), params)
            trials += 1
            assert (est is not None) == info["detected"]
            if est is None:
                continue
            detected += 1
            swapped += bool(info["swapped"])
            group = [c for n in info["swapped"] for c in SWAP_GROUPS[n]] if info["swapped"] else \
                [c for cs in SWAP_GROUPS.values() for c in cs]
            # per-chart pixel counts of the group: a swap moves them to the mirror charts
            c_gt = np.bincount(gt[0][np.isin(gt[0], group)], minlength=25)
            c_est = np.bincount(est[0][np.isin(est[0], group)], minlength=25)
            c_flip = c_gt[FLIP_CHART]
            if np.abs(c_gt - c_flip).sum() > 0.4 * c_gt.sum():  # the view tells left from right
                closer_to_flip = np.abs(c_est - c_flip).sum() < np.abs(c_est - c_gt).sum()
                assert closer_to_flip == bool(info["swapped"])
                checked += 1
    assert abs((trials - detected) / trials - 0.3) < 0.07
    assert abs(swapped / detected - 0.25) < 0.08
    assert checked > 50


def test_estimate_without_errors_is_the_ground_truth():
    clean = DegradeParams(no_detection=0.0, swap=0.0, boundary=0, jitter=0.0, uv_noise=0.0, resolution=(1.0, 1.0))
    for gt in _gt_maps(4):
        est, info = estimate_iuv(gt, np.random.default_rng(0), clean)
        np.testing.assert_array_equal(est, gt)
        noisy, _ = estimate_iuv(gt, np.random.default_rng(0), DegradeParams(no_detection=0.0))
        assert 0.02 < (noisy[0] != gt[0]).mean() < 0.2  # boundaries move, the body stays


# ---------------------------------------------------------------------------------------------- layout / torchreid
def test_torchreid_market1501_loads_the_layout(tiny_root, tmp_path):
    ds_dir = dataset_dir(tiny_root, "tiny", 0)
    counts = read_manifest(ds_dir)["counts"]
    os.makedirs(tmp_path / "market1501")
    os.symlink(ds_dir, tmp_path / "market1501" / "Market-1501-v15.09.15")  # the layout Market1501 prefers
    m = compat.image_datasets.Market1501(root=str(tmp_path), verbose=False)
    assert len(m.train) == counts["train_images"] and m.num_train_pids == counts["train_ids"] == 20
    assert len(m.query) == counts["query_images"] and len(m.gallery) == counts["gallery_images"]
    assert {p for _, p, _, _ in m.train} == set(range(20))
    q_pids = {p for _, p, _, _ in m.query}
    assert len(q_pids) == counts["test_ids"] == 20
    assert len({(p, c) for _, p, c, _ in m.query}) == len(m.query)  # one query per identity and camera
    train_names = {int(osp.basename(p)[:4]) for p, _, _, _ in m.train}
    assert not train_names & q_pids  # disjoint halves
    g = {(p, c) for _, p, c, _ in m.gallery}
    assert all(any(gp == p and gc != c for gp, gc in g) for _, p, c, _ in m.query)
    assert sum(p == 0 for _, p, _, _ in m.gallery) == counts["distractor_images"] == 10


def test_registered_name_builds_through_image_data_manager(tiny_root):
    torchreid_dense.register()
    dm = compat.ImageDataManager(root=tiny_root, sources="synthreid_tiny", height=128, width=64,
                                 batch_size_train=8, workers=0, use_gpu=False, transforms=None)
    assert dm.num_train_pids == 20
    batch = next(iter(dm.train_loader))
    assert batch["img"].shape == (8, 3, 128, 64) and batch["pid"].max() < 20
    pit = glob.glob(osp.join(dataset_dir(tiny_root, "tiny", 0), "pit", "*.jpg"))
    assert len(pit) == 24 and all(osp.exists(sidecar_path(dataset_dir(tiny_root, "tiny", 0), p, "textures"))
                                  for p in pit)


def test_manifest_mismatch_raises_and_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    out = generate_dataset(tmp_path, "micro", 1, config=MICRO, progress=False)
    assert ensure_dataset(tmp_path, "micro", 1, config=MICRO) == out  # reused
    with pytest.raises(ManifestMismatchError, match="params differ in .*occluder"):
        ensure_dataset(tmp_path, "micro", 1, config=dataclasses.replace(MICRO, occluder=0.5))
    path = osp.join(out, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    manifest["generator_version"] = "0.0"
    with open(path, "w") as f:
        json.dump(manifest, f)
    with pytest.raises(ManifestMismatchError, match="generator_version"):
        ensure_dataset(tmp_path, "micro", 1, config=MICRO)

    import torchreid_dense.data.synth.generate as gen

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gen, "render_sample", broken)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path, "micro", 2, config=MICRO, progress=False)
    assert sorted(os.listdir(tmp_path / "synthreid")) == ["micro_s1"]
