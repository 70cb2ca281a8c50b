"""Bad input gets a clear answer: which file, what is wrong, what to do (or a documented fallback).

Covered elsewhere, not repeated here: an unknown config key / a value of the wrong type
(tests/test_config.py and tests/test_main.py::test_cli_reports_config_errors_in_one_line), a missing
data-set directory (tests/test_main.py::test_missing_dataset_says_where_and_how), a pickle that holds
anything but DensePose results (tests/test_densepose_io.py), a NaN/Inf loss
(tests/test_engine.py::test_non_finite_loss_stops_with_step_components_and_last_checkpoint) and a
checkpoint of another model (tests/test_engine.py::test_load_weights_says_what_differs).
"""
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch

import torchreid_dense  # noqa: F401  (registers the wrappers)
from torchreid_dense import compat
from torchreid_dense.data import DenseImageDataManager
from torchreid_dense.data.availability import DatasetNotFoundError
from torchreid_dense.data.file_check import BadFilesError
from torchreid_dense.data.texture_io import TextureReadError
from torchreid_dense.dense import IUVFormatError, sidecar_path, write_iuv
from torchreid_dense.engine.launch import main
from torchreid_dense.utils.io import save_png


def train_set(root, kind):
    """The ``market1501_<kind>`` train set of the conftest layout (32x16 images)."""
    return compat.image_dataset_factory()[f"market1501_{kind}"](root=root, mode="train", verbose=False)


def good_iuv(h=32, w=16):
    iuv = np.zeros((3, h, w), dtype=np.uint8)
    iuv[0, 4:28, 4:12] = 2
    iuv[1:] = 128
    return iuv


@pytest.fixture
def market(market_layout):
    root, data_dir, paths = market_layout
    ds_dir = osp.dirname(data_dir)
    train = sorted(p for p in paths if "bounding_box_train" in p)
    for p in train:
        write_iuv(sidecar_path(ds_dir, p, "densepose"), good_iuv())
    return root, ds_dir, train


def item_of(dataset, path):
    index = [d[0] for d in dataset.data].index(path)
    return dataset[index]


def test_iuv_sidecar_of_the_wrong_size_names_the_file(market):
    root, ds_dir, train = market
    bad = sidecar_path(ds_dir, train[0], "densepose")
    write_iuv(bad, good_iuv(h=20, w=10))
    dataset = train_set(root, "dsap")
    assert item_of(dataset, train[1])["dsap"].shape == (24, 3, 32, 32)  # the good ones still load
    with pytest.raises(IUVFormatError) as err:
        item_of(dataset, train[0])
    assert bad in str(err.value) and "20" in str(err.value)


def test_iuv_sidecar_with_the_wrong_channel_count_names_the_file(market):
    root, ds_dir, train = market
    bad = sidecar_path(ds_dir, train[0], "densepose")
    save_png(bad, np.zeros((32, 16), dtype=np.uint8))  # a grey PNG: one channel instead of I, U, V
    with pytest.raises(IUVFormatError) as err:
        item_of(train_set(root, "dsap"), train[0])
    assert bad in str(err.value)


def test_iuv_sidecar_with_labels_above_24_names_the_file(market):
    root, ds_dir, train = market
    bad = sidecar_path(ds_dir, train[0], "densepose")
    iuv = good_iuv()
    iuv[0, 0, 0] = 30
    save_png(bad, iuv.transpose(1, 2, 0).copy())  # bypass write_iuv's own validation
    with pytest.raises(IUVFormatError) as err:
        item_of(train_set(root, "dsap"), train[0])
    assert bad in str(err.value) and "30" in str(err.value)


def test_texture_sidecar_of_another_size_is_resized_to_the_configured_size(market):
    root, ds_dir, train = market
    tex_path = sidecar_path(ds_dir, train[0], "textures")
    save_png(tex_path, np.full((50, 30, 3), 200, dtype=np.uint8))  # not 24 x 16
    dataset = train_set(root, "texture").configure(texture_size=(24, 16))
    item = item_of(dataset, train[0])
    assert item["texture"].shape == (3, 24, 16) and bool(item["texture_valid"].all())
    expected = (200 / 255.0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(item["texture"][:, 5, 5], expected, rtol=0, atol=1e-5)  # a flat colour stays flat
    missing = item_of(dataset, train[1])  # no sidecar: the counted fallback
    assert not bool(missing["texture_valid"].any()) and dataset.num_missing_sidecars == len(train) - 1


def test_unreadable_texture_sidecar_names_the_file(market):
    root, ds_dir, train = market
    tex_path = sidecar_path(ds_dir, train[0], "textures")
    os.makedirs(osp.dirname(tex_path), exist_ok=True)
    with open(tex_path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(TextureReadError) as err:
        item_of(train_set(root, "texture"), train[0])
    assert tex_path in str(err.value) and "generate it again" in str(err.value)


def test_data_set_directory_without_images_is_explained(tmp_path):
    root = str(tmp_path / "reid-data")
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        os.makedirs(osp.join(root, "market1501", "Market-1501-v15.09.15", split))
    args = ["use_gpu", "False", "model.name", "resnet18", "model.pretrained", "False", "data.root", root,
            "data.save_dir", str(tmp_path / "log"), "data.workers", "0"]
    with pytest.raises(DatasetNotFoundError) as err:
        main(args)
    message = str(err.value)
    assert "['market1501']" in message and root in message and "has an empty split" in message
    assert "bounding_box_train" in message


@pytest.mark.parametrize("kind", ["stock", "dsap"])
@pytest.mark.parametrize("damage", ["not an image", "truncated"])
def test_truncated_or_non_image_file_names_the_file(market, kind, damage):
    root, _, _ = market
    name = "market1501" if kind == "stock" else "market1501_dsap"
    ds = compat.image_dataset_factory()[name](root=root, mode="train", verbose=False)
    path = ds.data[0][0]
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(b"not a jpeg" if damage == "not an image" else data[: len(data) // 2])
    if kind == "stock":
        # torchreid's own data set keeps torchreid's reader (importing the plugin changes nothing in torchreid);
        # the plugin's data manager names the file before training
        with pytest.raises(BadFilesError, match=re.escape(path) + ": cannot read the image"):
            DenseImageDataManager(root=root, sources=name, height=32, width=16, workers=0, use_gpu=False,
                                  file_check=dict(progress=False))
        return
    with pytest.raises(compat.ImageReadError, match=osp.basename(path)):
        ds[0]
