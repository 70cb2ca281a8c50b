"""SAN pseudo ground truth tools: generate_textures (SAN-PG predictions as textures/ sidecars), fetch_textures
(the SAN authors' CUHK03 textures), and ``visualize.py textures`` (SAN Fig. 6)."""
import importlib.util
import io
import os
import os.path as osp
import shutil
import tarfile
import types
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from torchreid_dense.data import texture_fetch
from torchreid_dense.data.synth.generate import generate_dataset
from torchreid_dense.data.texture_fetch import (
    SAN_CUHK03_TEXTURES,
    TextureFetchError,
    cuhk03_image_name,
    cuhk03_texture_target,
    layout_cuhk03_textures,
)
from torchreid_dense.data.texture_generation import (
    build_image_transform,
    build_texture_model,
    main as generate_main,
    cli as generate_cli,
    pick_images,
    texture_previews,
)
from torchreid_dense.data.texture_io import IMAGENET_MEAN, IMAGENET_STD, load_texture
from torchreid_dense.dense.iuv import read_iuv
from torchreid_dense.dense.sidecar import sidecar_path
from torchreid_dense.engine.launch import load_config
from torchreid_dense.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEX = (48, 32)  # a DensePose atlas with tile 8 (6N x 4N)
WIDTHS = (16, 16, 8, 8)
SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def _write_setup(root, texture_size=TEX, widths=WIDTHS, name="pg"):
    """A san_pg_r18 checkpoint and a config file for it (CPU, input 64x32)."""
    torch.manual_seed(0)
    model = MODELS.get("san_pg_r18")(0, pretrained=False, texture_size=texture_size, decoder_widths=widths)
    weights = osp.join(root, f"{name}.pth")
    torch.save({"state_dict": model.state_dict(), "epoch": 1}, weights)
    config = osp.join(root, f"{name}.yaml")
    with open(config, "w") as f:
        f.write("use_gpu: False\nmodel:\n  name: san_pg_r18\n  pretrained: False\n"
                f"data:\n  root: {root}\n  height: 64\n  width: 32\n  workers: 0\n"
                f"san:\n  texture_size: {list(texture_size)}\n  decoder_widths: {list(widths)}\n")
    return config, weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """synthreid_tiny without its ground-truth re-ID textures (PIT textures kept), a checkpoint and a config."""
    root = str(tmp_path_factory.mktemp("tex_root"))
    ds_dir = generate_dataset(root, "tiny", 0, progress=False)
    for split in SPLITS:
        shutil.rmtree(osp.join(ds_dir, "textures", split))
    config, weights = _write_setup(root)
    return types.SimpleNamespace(root=root, ds_dir=ds_dir, config=config, weights=weights)


def _expected_uint8(model, image_path):
    """Independent reference: one image through the model alone, de-normalised by hand."""
    img = build_image_transform(64, 32, IMAGENET_MEAN, IMAGENET_STD)(Image.open(image_path).convert("RGB"))
    with torch.no_grad():
        tex = model.predict_texture(img[None])[0].numpy()
    mean, std = np.array(IMAGENET_MEAN)[:, None, None], np.array(IMAGENET_STD)[:, None, None]
    return np.clip(np.round((tex * std + mean) * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def _mtimes(paths):
    return {p: os.stat(p).st_mtime_ns for p in paths}


def test_generate_textures_writes_sidecars_and_rerun_skips(tiny, capsys):
    images = sorted(p for s in SPLITS for p in
                    (osp.join(tiny.ds_dir, s, f) for f in os.listdir(osp.join(tiny.ds_dir, s))) if p.endswith(".jpg"))
    expected = {sidecar_path(tiny.ds_dir, p, "textures"): p for p in images}
    pit_dir = osp.join(tiny.ds_dir, "textures", "pit")
    pit_before = {f: open(osp.join(pit_dir, f), "rb").read() for f in os.listdir(pit_dir)}
    argv = ["--config-file", tiny.config, "--weights", tiny.weights, "--dataset", "synthreid_tiny",
            "--root", tiny.root, "--batch-size", "64", "--no-progress"]

    summary = generate_main(argv)["synthreid_tiny"]
    assert summary["images"] == summary["written"] == len(images) > 200 and summary["skipped"] == 0
    assert summary["texture_size"] == TEX
    written = {osp.join(d, f) for s in SPLITS for d, _, fs in os.walk(osp.join(tiny.ds_dir, "textures", s))
               for f in fs}
    assert written == set(expected)
    for path in list(expected)[::40]:
        with Image.open(path) as im:
            assert im.size == (TEX[1], TEX[0]) and im.mode == "RGB"
        texture, valid = load_texture(path, TEX)
        assert texture.shape == (3,) + TEX and bool(valid.all())
    # the written pixels are the model's prediction (batched run vs one image at a time)
    cfg = load_config(tiny.config)
    model = build_texture_model(cfg, tiny.weights, verbose=False)
    for path in list(expected)[::97]:
        got = np.asarray(Image.open(path).convert("RGB")).astype(int)
        ref = _expected_uint8(model, expected[path]).astype(int)
        assert np.abs(got - ref).max() <= 1 and (got == ref).mean() > 0.99
    # PIT textures are not re-ID images: untouched
    assert {f: open(osp.join(pit_dir, f), "rb").read() for f in os.listdir(pit_dir)} == pit_before

    before = _mtimes(expected)
    capsys.readouterr()
    again = generate_main(argv)["synthreid_tiny"]
    assert again["written"] == 0 and again["skipped"] == len(images)
    assert f"{len(images)} skipped" in capsys.readouterr().out
    assert _mtimes(expected) == before


def test_overwrite_and_output_dir_on_market1501(market_layout, tmp_path):
    root, _, paths = market_layout
    config, weights = _write_setup(str(tmp_path))
    ds_dir = osp.join(root, "market1501")
    targets = [sidecar_path(ds_dir, p, "textures") for p in paths]
    argv = ["--config-file", config, "--weights", weights, "--dataset", "market1501", "--root", root,
            "--no-progress"]
    assert generate_main(argv)["market1501"]["written"] == len(paths)
    original = [open(t, "rb").read() for t in targets]
    # a damaged texture stays as it is without --overwrite ...
    Image.fromarray(np.zeros(TEX + (3,), np.uint8)).save(targets[0])
    damaged = open(targets[0], "rb").read()
    assert generate_main(argv)["market1501"]["skipped"] == len(paths)
    assert open(targets[0], "rb").read() == damaged
    # ... and is rewritten, like every other one, with --overwrite
    inodes = [os.stat(t).st_ino for t in targets]
    res = generate_main(argv + ["--overwrite"])["market1501"]
    assert res["written"] == len(paths) and res["skipped"] == 0
    assert [open(t, "rb").read() for t in targets] == original
    assert all(os.stat(t).st_ino != i for t, i in zip(targets, inodes))
    # --output-dir: the same layout elsewhere, the data set's textures untouched
    out = str(tmp_path / "pseudo")
    before = _mtimes(targets)
    res = generate_main(argv + ["--output-dir", out])["market1501"]
    assert res["written"] == len(paths) and res["textures_dir"] == osp.join(out, "textures")
    moved = [osp.join(out, osp.relpath(t, ds_dir)) for t in targets]
    assert [open(m, "rb").read() for m in moved] == original and _mtimes(targets) == before


def test_weights_errors_name_the_file(tiny, tmp_path, capsys):
    cfg = load_config(tiny.config)
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_texture_model(cfg, missing)
    _, other = _write_setup(str(tmp_path), widths=(8, 8, 8, 8), name="other")
    with pytest.raises(ValueError, match="other.pth"):
        build_texture_model(cfg, other)
    rc = generate_cli(["--config-file", tiny.config, "--weights", missing, "--dataset", "synthreid_tiny",
                       "--root", tiny.root])
    assert rc == 2 and "nope.pth" in capsys.readouterr().err


def test_cuhk03_name_mapping():
    ds = "/data/cuhk03"
    cases = {
        "texture_cuhk03_labeled/1_001_1_01.png": "1_001_1_01.png",
        "2_7_2_9.jpg": "2_007_2_09.png",
        "a/b/5_843_2_10.PNG": "5_843_2_10.png",
        "texture_cuhk03_labeled\\3_120_1_05.png": "3_120_1_05.png",
    }
    for member, name in cases.items():
        assert cuhk03_image_name(member) == name
        assert cuhk03_texture_target(member, ds) == osp.join(ds, "textures", "images_labeled", name)
        assert cuhk03_texture_target(member, ds) == sidecar_path(ds, osp.join(ds, "images_labeled", name), "textures")
    for member in ("__MACOSX/texture_cuhk03_labeled/._1_001_1_01.png", "__MACOSX/1_001_1_01.png",
                   "texture_cuhk03_labeled/", "readme.txt", "1_001_1_01.txt", "6_001_1_01.png",
                   "0_001_1_01.png", "1_000_1_01.png", "1_001_3_01.png", "1_001_1_11.png", "1_001_1_00.png",
                   "0001_c1s1_000151_01.jpg", "1_001_1.png"):
        assert cuhk03_image_name(member) is None and cuhk03_texture_target(member, ds) is None, member


def test_fetch_without_network_explains(monkeypatch, tmp_path, capsys):
    import gdown

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'drive.google.com'")

    monkeypatch.setattr(gdown, "download", offline)
    assert texture_fetch.cli(["--root", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    file_id = SAN_CUHK03_TEXTURES["file_id"]
    assert "Failed to resolve" in err and f"https://drive.google.com/file/d/{file_id}/view" in err
    assert "--archive" in err and osp.join(str(tmp_path), "cuhk03", "texture_cuhk03_labeled.zip") in err
    assert not (tmp_path / "cuhk03" / "textures").exists()
    monkeypatch.setattr(gdown, "download", lambda *a, **k: None)  # older gdown: None instead of raising
    with pytest.raises(TextureFetchError, match="produced no file"):
        texture_fetch.main(["--root", str(tmp_path), "--file-id", "abc", "--no-progress"])


def _png_bytes(arr, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def test_fetch_archive_lays_out_sidecars(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    archive = tmp_path / "texture_cuhk03_labeled.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("texture_cuhk03_labeled/", b"")
        zf.writestr("texture_cuhk03_labeled/1_001_1_01.png", _png_bytes(a))
        zf.writestr("texture_cuhk03_labeled/2_7_2_9.jpg", _png_bytes(b, "JPEG"))
        zf.writestr("__MACOSX/texture_cuhk03_labeled/._1_001_1_01.png", b"junk")
        zf.writestr("texture_cuhk03_labeled/readme.txt", b"hello")
    ds = tmp_path / "cuhk03"
    (ds / "images_labeled").mkdir(parents=True)
    for name in ("1_001_1_01.png", "2_007_2_09.png", "3_010_1_02.png"):
        Image.fromarray(a[:32, :16]).save(ds / "images_labeled" / name)

    summary = texture_fetch.main(["--root", str(tmp_path), "--archive", str(archive), "--no-progress"])
    assert (summary["written"], summary["skipped"], summary["ignored"]) == (2, 0, 2)
    assert summary["images"] == 3 and summary["images_without_texture"] == 1
    first = ds / "textures" / "images_labeled" / "1_001_1_01.png"
    second = ds / "textures" / "images_labeled" / "2_007_2_09.png"
    assert np.array_equal(np.asarray(Image.open(first)), a)
    assert np.array_equal(np.asarray(Image.open(second)), np.asarray(Image.open(io.BytesIO(_png_bytes(b, "JPEG")))))
    texture, valid = load_texture(str(first), (256, 256))
    ref = (torch.from_numpy(a).permute(2, 0, 1).float() / 255 - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) \
        / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(texture, ref, atol=1e-6) and bool(valid.all())
    assert "2 of 3 labeled images have a texture" in capsys.readouterr().out
    # rerun: kept; a tar archive works the same way
    again = layout_cuhk03_textures(str(archive), str(ds), progress=False)
    assert (again["written"], again["skipped"]) == (0, 2)
    tar_path = tmp_path / "t.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        data = _png_bytes(b)
        info = tarfile.TarInfo("texture_cuhk03_labeled/3_010_1_02.png")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    res = layout_cuhk03_textures(str(tar_path), str(ds), progress=False)
    assert res["written"] == 1 and res["images_without_texture"] == 0
    # not an archive / no texture inside: clear errors
    bogus = tmp_path / "page.html"
    bogus.write_text("<html>quota exceeded</html>")
    assert texture_fetch.cli(["--root", str(tmp_path), "--archive", str(bogus), "--no-progress"]) == 2
    assert "neither a zip nor a tar" in capsys.readouterr().err
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes.txt", b"x")
    with pytest.raises(TextureFetchError, match="holds no CUHK03 texture"):
        texture_fetch.main(["--root", str(tmp_path), "--archive", str(empty), "--no-progress"])


class _ConstantAtlas(nn.Module):
    """A stand-in texture model predicting one colour everywhere (normalised like the images)."""

    def __init__(self, colour, size):
        super().__init__()
        self.texture_size = size
        value = (torch.tensor(colour, dtype=torch.float32) / 255 - torch.tensor(IMAGENET_MEAN)) \
            / torch.tensor(IMAGENET_STD)
        self.register_buffer("value", value.view(1, 3, 1, 1))
        self.dummy = nn.Parameter(torch.zeros(1))

    def predict_texture(self, imgs):
        return self.value.expand(imgs.shape[0], 3, *self.texture_size).clone()


def test_texture_previews_render_through_iuv(tiny, tmp_path):
    colour = (200, 40, 90)
    paths = pick_images(tiny.ds_dir, 3)
    assert len(paths) == 3 and not any("/textures/" in p or "/densepose" in p for p in paths)
    rows = texture_previews(_ConstantAtlas(colour, TEX), paths, tiny.ds_dir, 64, 32)
    for path, image, texture, render in zip(paths, rows["images"], rows["textures"], rows["renders"]):
        assert texture.shape == TEX + (3,) and (texture == np.array(colour, np.uint8)).all()
        labels = read_iuv(sidecar_path(tiny.ds_dir, path, "densepose_gt"), size=image.shape[:2])[0]
        body = labels > 0
        assert body.any() and (render[body] == np.array(colour, np.uint8)).all()
        assert np.array_equal(render[~body], np.round(image[~body] * 0.35).astype(np.uint8))
    # not an atlas (40 x 40): no re-rendering, and the figure says why; no IUV: said too
    rows = texture_previews(_ConstantAtlas(colour, (40, 40)), paths[:1], tiny.ds_dir, 64, 32)
    assert rows["renders"] == [None] and "not a 6N x 4N" in rows["notes"][0]
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(paths[0], lone / "x.jpg")
    rows = texture_previews(_ConstantAtlas(colour, TEX), [str(lone / "x.jpg")], str(lone), 64, 32)
    assert rows["renders"] == [None] and "no IUV" in rows["notes"][0]


def test_visualize_textures_command_writes_png(tiny, tmp_path):
    spec = importlib.util.spec_from_file_location("visualize_tool", osp.join(REPO, "tools", "visualize.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "fig" / "textures.png"
    tool.main(["textures", "--config-file", tiny.config, "--weights", tiny.weights, "--dataset-dir", tiny.ds_dir,
               "--num", "3", "--out", str(out)])
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 3 * 150
