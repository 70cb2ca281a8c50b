"""san.texture_range: texture targets normalised like the images (default) or in [-1, 1] (the SAN authors', §5)."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import torchreid_dense  # noqa: F401  (registers the wrappers)
from torchreid_dense.config import get_default_config
from torchreid_dense.config.adapters import imagedata_kwargs
from torchreid_dense.data import DenseImageDataManager
from torchreid_dense.data.pit import PITDataset
from torchreid_dense.data.texture_generation import texture_previews
from torchreid_dense.data.texture_io import check_texture_range
from torchreid_dense.data.texture_io import (
    IMAGENET_MEAN, IMAGENET_STD, TEXTURE_RANGES, convert_texture_range, load_texture, texture_norm, texture_to_uint8,
)
from torchreid_dense.dense import sidecar_path
from torchreid_dense.utils.io import save_png

OTHER_MEAN, OTHER_STD = (0.5, 0.25, 0.1), (0.2, 0.3, 0.4)


def all_uint8():
    """Every uint8 value in every channel, as floats ``[1, 3, 16, 16]``."""
    return torch.arange(256, dtype=torch.float32).view(1, 1, 16, 16).expand(1, 3, 16, 16).clone()


@pytest.mark.parametrize("texture_range", TEXTURE_RANGES)
@pytest.mark.parametrize("mean,std", [(IMAGENET_MEAN, IMAGENET_STD), (OTHER_MEAN, OTHER_STD)])
def test_round_trip_of_uint8_textures_is_exact(texture_range, mean, std):
    pixels = all_uint8()
    target = convert_texture_range(pixels, texture_range, mean, std)
    back = convert_texture_range(target, texture_range, mean, std, inverse=True)
    assert torch.equal(back.round(), pixels)
    assert torch.equal(torch.from_numpy(texture_to_uint8(target, mean, std, texture_range)).permute(0, 3, 1, 2).float(),
                       pixels)


def test_tanh_is_the_authors_to_tensor_and_normalize_bit_for_bit():
    """x/127.5 - 1 (the brief's formula) == ToTensor then Normalize([.5]*3, [.5]*3) (dataset_loader.py:36-37)."""
    pixels = all_uint8()
    tanh = convert_texture_range(pixels, "tanh")
    assert torch.equal(tanh, pixels / 127.5 - 1.0)
    assert torch.equal(tanh, (pixels / 255.0 - 0.5) / 0.5)
    assert float(tanh.min()) == -1.0 and float(tanh.max()) == 1.0
    # the inverse is the authors' (out/2 + 0.5)*255 (main.py:457) and (t + 1)*127.5, on any prediction
    pred = torch.cat([tanh.flatten(), torch.randn(100_000, generator=torch.Generator().manual_seed(0)) * 3])
    back = convert_texture_range(pred.view(1, 1, -1).expand(3, 1, -1), "tanh", inverse=True)[0, 0]
    assert torch.equal(back, (pred / 2 + 0.5) * 255) and torch.equal(back, (pred + 1.0) * 127.5)
    assert texture_norm("tanh") == ((0.5,) * 3, (0.5,) * 3)
    assert texture_norm("normalized") == (IMAGENET_MEAN, IMAGENET_STD)


def test_unknown_range_names_the_config_key(tmp_path):
    with pytest.raises(ValueError, match="san.texture_range"):
        convert_texture_range(all_uint8(), "sigmoid")
    with pytest.raises(ValueError, match="san.texture_range"):
        load_texture(tmp_path / "a.png", (4, 4), texture_range="sigmoid")
    cfg = get_default_config()
    assert check_texture_range(cfg.san.texture_range) == "normalized"
    assert check_texture_range("tanh") == "tanh"
    with pytest.raises(ValueError, match="san.texture_range"):
        check_texture_range("sigmoid")


def _old_load(path, size, mean, std):
    """load_texture's normalisation before san.texture_range (the defaults must keep these bits)."""
    rgb = Image.open(path).convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
    arr = torch.from_numpy(np.asarray(rgb, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
    return (arr - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def test_pit_textures_default_bits_and_tanh(tmp_path):
    rng = np.random.RandomState(0)
    (tmp_path / "pit").mkdir()
    (tmp_path / "textures" / "pit").mkdir(parents=True)
    texture = rng.randint(0, 256, size=(24, 16, 3), dtype=np.uint8)
    Image.fromarray(rng.randint(0, 256, size=(32, 16, 3), dtype=np.uint8)).save(tmp_path / "pit" / "t0000_v00.jpg")
    Image.fromarray(texture).save(tmp_path / "textures" / "pit" / "t0000_v00.png")
    path = tmp_path / "textures" / "pit" / "t0000_v00.png"
    for size in ((24, 16), (12, 8)):  # as stored, and resized
        default = PITDataset(tmp_path, 32, 16, size, OTHER_MEAN, OTHER_STD)[0]["texture"]
        assert torch.equal(default, _old_load(path, size, OTHER_MEAN, OTHER_STD))
    tanh = PITDataset(tmp_path, 32, 16, (24, 16), texture_range="tanh")[0]["texture"]
    assert torch.equal(tanh, torch.from_numpy(texture.astype(np.float32)).permute(2, 0, 1) / 127.5 - 1.0)
    with pytest.raises(ValueError, match="san.texture_range"):
        PITDataset(tmp_path, 32, 16, (24, 16), texture_range="sigmoid")


def test_texture_wrapper_range_through_the_adapter(market_layout):
    root, data_dir, paths = market_layout
    ds_dir = osp.dirname(data_dir)
    tex = np.random.RandomState(1).randint(0, 256, size=(24, 16, 3), dtype=np.uint8)
    for p in paths:
        save_png(sidecar_path(ds_dir, p, "textures"), tex)
    cfg = get_default_config()
    cfg.merge_from_list(["data.root", root, "data.sources", "['market1501_texture']", "data.targets",
                         "['market1501_texture']", "data.height", "32", "data.width", "16", "data.workers", "0",
                         "data.transforms", "[]", "san.texture_size", "[24, 16]", "use_gpu", "False",
                         "train.batch_size", "4", "test.batch_size", "4", "data.check_files", "False"])
    expected = {"normalized": _old_load(sidecar_path(ds_dir, paths[0], "textures"), (24, 16), IMAGENET_MEAN,
                                        IMAGENET_STD),
                "tanh": torch.from_numpy(tex.astype(np.float32)).permute(2, 0, 1) / 127.5 - 1.0}
    for texture_range, want in expected.items():
        cfg.san.texture_range = texture_range
        kwargs = imagedata_kwargs(cfg)
        assert kwargs["dense"]["texture_range"] == texture_range
        ds = DenseImageDataManager(**kwargs).train_loader.dataset
        assert ds.options["texture_range"] == texture_range
        item = ds[0]
        assert item["texture_valid"].all() and torch.equal(item["texture"], want)
    kwargs["dense"]["texture_range"] = "sigmoid"
    with pytest.raises(ValueError, match="san.texture_range"):
        DenseImageDataManager(**kwargs)


class _Constant(nn.Module):
    """A texture model predicting one value per channel everywhere."""

    def __init__(self, value, size):
        super().__init__()
        self.texture_size = size
        self.register_buffer("value", torch.tensor(value, dtype=torch.float32).view(1, 3, 1, 1))
        self.dummy = nn.Parameter(torch.zeros(1))

    def predict_texture(self, imgs):
        return self.value.expand(imgs.shape[0], 3, *self.texture_size).clone()


def test_previews_invert_the_trained_range(market_layout):
    _, data_dir, paths = market_layout
    value = (-1.0, 0.2, 0.9)  # a tanh-range prediction: pixels round((t + 1) * 127.5) = 0, 153, 242
    rows = texture_previews(_Constant(value, (12, 8)), paths[:2], osp.dirname(data_dir), 32, 16,
                            texture_range="tanh")
    assert all((t == np.array([0, 153, 242], np.uint8)).all() for t in rows["textures"])
    rows = texture_previews(_Constant(value, (12, 8)), paths[:1], osp.dirname(data_dir), 32, 16)
    default = texture_to_uint8(torch.tensor(value).view(1, 3, 1, 1), IMAGENET_MEAN, IMAGENET_STD)[0, 0, 0]
    assert (rows["textures"][0] == default).all() and not (default == np.array([0, 153, 242])).all()
