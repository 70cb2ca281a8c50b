"""DSAP and texture data-set wrappers inside torchreid's data manager."""
import logging
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

import torchreid_dense  # noqa: F401  (registers the wrappers)
from torchreid_dense import compat
from torchreid_dense.data import DenseImageDataManager, MissingSidecarError
from torchreid_dense.dense import IUVFormatError, sidecar_path, warp_dsap, write_iuv
from torchreid_dense.utils.io import save_png

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def add_iuv_sidecars(data_dir, paths, skip=(), kind="densepose", seed=0):
    rng = np.random.default_rng(seed)
    ds_dir = osp.dirname(data_dir)  # torchreid's dataset_dir: <root>/market1501
    for i, p in enumerate(paths):
        if i in skip:
            continue
        h, w = 32, 16
        iuv = np.zeros((3, h, w), dtype=np.uint8)
        iuv[0] = rng.integers(0, 25, size=(h, w))
        iuv[1:] = rng.integers(0, 256, size=(2, h, w))
        write_iuv(sidecar_path(ds_dir, p, kind), iuv)
    return ds_dir


def dm(root, sources, **kw):
    args = dict(root=root, sources=sources, height=32, width=16, batch_size_train=4, batch_size_test=4,
                workers=0, transforms=["random_flip", "random_erase"], use_gpu=False)
    args.update(kw)
    return DenseImageDataManager(**args)


def expected_dsap(path, iuv_path, size=32):
    img = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None]
    iuv = torch.from_numpy(np.asarray(Image.open(iuv_path)).transpose(2, 0, 1).copy())[None] \
        if iuv_path else torch.zeros(1, 3, *img.shape[2:], dtype=torch.uint8)
    d, v = warp_dsap(img, iuv, size=size)
    return (d[0].numpy() / 255.0 - MEAN) / STD, v[0].numpy()


def test_dsap_batches_from_stock_datamanager(market_layout):
    root, data_dir, paths = market_layout
    add_iuv_sidecars(data_dir, paths)
    manager = compat.ImageDataManager(root=root, sources="market1501_dsap", height=32, width=16,
                                      batch_size_train=4, workers=0, use_gpu=False)
    batch = next(iter(manager.train_loader))
    assert set(batch) >= {"img", "pid", "camid", "impath", "dsetid", "dsap", "dsap_valid"}
    assert batch["dsap"].shape == (4, 24, 3, 32, 32) and batch["dsap_valid"].shape == (4, 24)
    assert batch["dsap_valid"].dtype == torch.bool
    # DSAP-images come from the original image, not the augmented one
    for k, path in enumerate(batch["impath"]):
        d, v = expected_dsap(path, sidecar_path(osp.dirname(data_dir), path))
        np.testing.assert_allclose(batch["dsap"][k].numpy(), d, atol=1e-5)
        np.testing.assert_array_equal(batch["dsap_valid"][k].numpy(), v)


def test_missing_sidecars_fallback_reported_once_and_strict(market_layout, caplog):
    root, data_dir, paths = market_layout
    train = [p for p in paths if "bounding_box_train" in p]
    skip = {paths.index(train[0]), paths.index(train[3])}
    add_iuv_sidecars(data_dir, paths, skip=skip)
    with caplog.at_level(logging.WARNING):
        manager = dm(root, "market1501_dsap")
    msgs = [r.getMessage() for r in caplog.records if "have no 'densepose' sidecar" in r.getMessage()]
    assert len(msgs) == 1 and "2 of 16 images" in msgs[0] and osp.join("market1501", "densepose") in msgs[0]
    ds = manager.train_loader.dataset
    i = [p for p, *_ in ds.data].index(train[0])
    item = ds[i]
    d, v = expected_dsap(train[0], None)
    assert not item["dsap_valid"].any()
    np.testing.assert_allclose(item["dsap"].numpy(), d, atol=1e-5)
    with pytest.raises(MissingSidecarError, match=r"2 of 16 images.*densepose"):
        dm(root, "market1501_dsap", dense=dict(strict=True))


def test_corrupt_and_misshaped_sidecars_name_the_file(market_layout):
    root, data_dir, paths = market_layout
    ds_dir = add_iuv_sidecars(data_dir, paths)
    manager = dm(root, "market1501_dsap")
    ds = manager.train_loader.dataset
    p0, p1 = ds.data[0][0], ds.data[1][0]
    bad = sidecar_path(ds_dir, p0)
    with open(bad, "wb") as f:
        f.write(b"not a png")
    with pytest.raises(IUVFormatError, match=osp.basename(bad)):
        ds[0]
    save_png(sidecar_path(ds_dir, p1), np.zeros((10, 16, 3), dtype=np.uint8))
    with pytest.raises(IUVFormatError, match="10x16.*32x16"):
        ds[1]


def test_csa_and_cache_options(market_layout):
    root, data_dir, paths = market_layout
    add_iuv_sidecars(data_dir, paths)
    fly = dm(root, "market1501_dsap", dense=dict(size=16)).train_loader.dataset
    cached = dm(root, "market1501_dsap", dense=dict(size=16, cache=True)).train_loader.dataset
    csa = dm(root, "market1501_dsap", dense=dict(size=16, alignment="csa")).train_loader.dataset
    a, b, c = fly[2], cached[2], csa[2]
    assert a["dsap"].shape == (24, 3, 16, 16)
    # the cache stores uint8-rounded values: at most half a grey level apart
    assert torch.allclose(a["dsap"], b["dsap"], atol=0.5 / 255 / 0.224 + 1e-6)
    assert torch.equal(a["dsap_valid"], b["dsap_valid"])
    assert not torch.allclose(a["dsap"], c["dsap"])
    assert osp.isdir(osp.join(osp.dirname(data_dir), "cache"))
    with pytest.raises(ValueError, match="alignment"):
        dm(root, "market1501_dsap", dense=dict(alignment="boxes"))


def test_texture_wrapper_and_missing_texture(market_layout):
    root, data_dir, paths = market_layout
    ds_dir = osp.dirname(data_dir)
    tex = np.full((48, 32, 3), 255, dtype=np.uint8)
    for p in paths[1:]:
        save_png(sidecar_path(ds_dir, p, "textures"), tex)
    manager = dm(root, "market1501_texture", dense=dict(texture_size=(24, 16), size=8))
    ds = manager.train_loader.dataset
    i0 = [p for p, *_ in ds.data].index(paths[0])
    item = ds[(i0 + 1) % len(ds)]
    assert item["texture"].shape == (3, 24, 16) and item["texture_valid"].all()
    np.testing.assert_allclose(item["texture"][0].numpy(), (1 - 0.485) / 0.229, atol=1e-5)
    missing = ds[i0]
    assert not missing["texture_valid"].any() and float(missing["texture"].abs().sum()) == 0.0


def test_sidecar_root_reads_textures_kept_apart(market_layout, tmp_path):
    root, data_dir, paths = market_layout
    ds_dir = osp.dirname(data_dir)
    for p in paths:  # "ground truth" beside the data set: white; "pseudo" under another root: black
        save_png(sidecar_path(ds_dir, p, "textures"), np.full((48, 32, 3), 255, dtype=np.uint8))
    apart = tmp_path / "pseudo"
    for p in paths[1:]:
        rel = osp.relpath(sidecar_path(ds_dir, p, "textures"), ds_dir)
        save_png(str(apart / rel), np.zeros((48, 32, 3), dtype=np.uint8))
    manager = dm(root, "market1501_texture", dense=dict(texture_size=(24, 16), sidecar_root=str(apart)))
    ds = manager.train_loader.dataset
    assert ds.num_missing_sidecars == 1  # paths[0] has no pseudo texture: the fallback, not the ground truth
    order = [p for p, *_ in ds.data]
    item = ds[order.index(paths[1])]
    assert item["texture_valid"].all()
    np.testing.assert_allclose(item["texture"][0].numpy(), (0 - 0.485) / 0.229, atol=1e-5)
    assert not ds[order.index(paths[0])]["texture_valid"].any()
    assert ds.sidecar_of(paths[1]).startswith(str(apart) + osp.sep)
    ds.configure(sidecar_root="")  # back to the data set directory
    assert ds.num_missing_sidecars == 0 and ds.sidecar_of(paths[1]).startswith(ds_dir + osp.sep)


def test_multi_source_keeps_sidecars(market_layout):
    root, data_dir, paths = market_layout
    add_iuv_sidecars(data_dir, paths)
    a = compat.data.datasets.init_image_dataset("market1501_dsap", root=root, mode="train", verbose=False)
    both = a + a
    assert len(both) == 2 * len(a) and both.num_train_pids == 2 * a.num_train_pids
    item = both[len(a)]
    assert item["dsap"].shape == (24, 3, 32, 32) and item["dsap_valid"].any()
    with pytest.raises(TypeError, match="wrapped the same way"):
        a + compat.data.datasets.init_image_dataset("market1501", root=root, mode="train", verbose=False)


def test_data_manager_builds_each_data_set_once_with_its_final_options(market_layout, monkeypatch):
    from torchreid_dense.data.wrappers import DSAPDataset, SidecarDataset

    root, data_dir, paths = market_layout
    add_iuv_sidecars(data_dir, paths)
    scans, caches = [], []
    prepare, open_cache = SidecarDataset._prepare, DSAPDataset._open_cache

    def counted_prepare(self):
        scans.append((id(self), dict(self.options)))
        return prepare(self)

    def counted_open_cache(self):
        caches.append(id(self))
        return open_cache(self)

    monkeypatch.setattr(SidecarDataset, "_prepare", counted_prepare)
    monkeypatch.setattr(DSAPDataset, "_open_cache", counted_open_cache)
    manager = dm(root, "market1501_dsap", dense=dict(size=16, alignment="csa", cache=True, max_missing=0.9),
                 norm_mean=[0.5, 0.5, 0.5], norm_std=[0.25, 0.25, 0.25])
    datasets = manager.datasets()
    assert len(datasets) == 3  # train, query, gallery
    assert sorted(i for i, _ in scans) == sorted(id(ds) for ds in datasets)  # one sidecar scan each
    for ds in datasets:
        options = next(o for i, o in scans if i == id(ds))
        assert options == ds.options  # scanned with its final options, not torchreid's defaults first
        assert (options["size"], options["alignment"], options["cache"]) == (16, "csa", True)
        assert options["norm_mean"] == (0.5, 0.5, 0.5) and options["norm_std"] == (0.25, 0.25, 0.25)
    assert sorted(caches) == sorted(id(ds) for ds in datasets)  # each DSAP cache opened once, after the check
    assert manager.train_loader.dataset[0]["dsap"].shape == (24, 3, 16, 16)
