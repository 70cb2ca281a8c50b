"""DensePose extraction at data-set scale (issue 25): bad image files, the device default, one score threshold for
both tools, same-size batches, and batched output equal to one image at a time (with detectron2 when present)."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from torchreid_dense.dense.densepose import (DEFAULT_MIN_SCORE, decode_image, extract_densepose_sidecars,
                                             instances_to_iuv, main_box_iuv, read_image_size, same_size_batches,
                                             write_densepose_sidecars)
from torchreid_dense.dense.iuv import read_iuv
from torchreid_dense.dense.sidecar import sidecar_path

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
H, W = 16, 12


def load_script(folder, name):
    spec = importlib.util.spec_from_file_location(f"script_{name}", osp.join(REPO, folder, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def box_labels(seed, h, w):
    """A per-box chart result ``(labels [h, w], uv [2, h, w])`` whose quantized values are exact."""
    rng = np.random.RandomState(seed)
    labels = torch.from_numpy(rng.randint(0, 25, size=(h, w)))
    uv = torch.from_numpy(rng.randint(0, 5, size=(2, h, w)).astype(np.float32) / 4)
    return labels, uv


def stand_in_predict(batch):
    """A detector stand-in: one box whose position depends on the pixels; nobody in all-black images."""
    out = []
    for item in batch:
        image = item["image"]
        if image.max() == 0:
            out.append(None)
            continue
        x0, y0 = int(image[0, 0, 0]) % 4, int(image[1, 0, 0]) % 5
        box = torch.tensor([[x0, y0, x0 + 6.5, y0 + 9.25]])
        out.append(main_box_iuv(box, torch.tensor([0.9]), (item["height"], item["width"]),
                                lambda index: box_labels(int(image.sum()), 9, 6)))
    return out


def to_chw(rgb):
    """The stand-in model input: the decoded pixels as a ``[3, H, W]`` tensor."""
    return torch.from_numpy(rgb.transpose(2, 0, 1).copy())


def write_images(root, sizes):
    """Random images ``<root>/cam<k>/<i>.jpg``-like files (PNG, so pixels are exact) of the given sizes."""
    rng = np.random.RandomState(1)
    paths = []
    for i, (h, w) in enumerate(sizes):
        path = osp.join(root, f"cam{i % 2}", f"{i:03d}.png")
        os.makedirs(osp.dirname(path), exist_ok=True)
        pixels = rng.randint(0, 256, size=(h, w, 3), dtype=np.uint8) if i != 2 else np.zeros((h, w, 3), np.uint8)
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def bad_dataset(tmp_path):
    """Two readable images, an empty .jpg, a text file named .png and a cut-off .png."""
    root = tmp_path / "ds"
    paths = write_images(str(root), [(H, W), (H, W), (H, W)])  # the third one is all black: no detection
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("not an image\n")
    full = (root / "cam0" / "000.png").read_bytes()
    (root / "cam1" / "cut.png").write_bytes(full[:60])
    return root, paths


# ------------------------------------------------------------------------------------------------
# Pure pieces
# ------------------------------------------------------------------------------------------------


def test_main_box_iuv_converts_only_the_main_box():
    labels, uv = box_labels(3, 5, 4)
    converted = []

    def box_result(index):
        converted.append(index)
        return labels, uv

    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [3.4, 1.0, 7.5, 6.5], [0.0, 0.0, 12.0, 16.0]])
    scores = torch.tensor([0.99, 0.9, 0.5])  # the whole-image box scores under the default threshold
    iuv = main_box_iuv(boxes, scores, (H, W), box_result, min_score=DEFAULT_MIN_SCORE)
    assert converted == [1]
    chart = type("Chart", (), {"labels": labels, "uv": uv})
    other = type("Chart", (), {"labels": torch.zeros(2, 2, dtype=torch.long), "uv": torch.zeros(2, 2, 2)})
    instances = type("Instances", (), {"scores": scores, "pred_boxes": type("Boxes", (), {"tensor": boxes})})
    np.testing.assert_array_equal(iuv, instances_to_iuv(instances, [other, chart, other], (H, W),
                                                        min_score=DEFAULT_MIN_SCORE))
    assert iuv[:, 1:6, 3:7].any() and not iuv[:, :1].any() and not iuv[:, :, 7:].any()
    assert main_box_iuv(torch.zeros(0, 4), torch.zeros(0), (H, W), box_result) is None
    assert main_box_iuv(boxes[2:], scores[2:], (H, W), box_result, min_score=0.8) is None
    assert converted == [1]


def test_both_tools_default_to_one_score_threshold():
    extract, imp = load_script("tools", "extract_densepose"), load_script("tools", "import_densepose")
    e = extract.build_parser().parse_args(["--dataset-dir", "d", "--config", "c", "--weights", "w"])
    i = imp.build_parser().parse_args(["--dump", "x.pkl", "--dataset-dir", "d"])
    assert e.min_score == i.min_score == DEFAULT_MIN_SCORE == 0.8
    assert (e.batch_size, e.workers, e.device) == (8, 2, None)
    for tool in (extract, imp):
        text = " ".join(tool.build_parser().format_help().split())
        assert "default 0.8, the same in tools/" in text and "SCORE_THRESH_TEST 0.05" in text


def test_same_size_batches_groups_shapes_and_bounds_what_waits():
    def item(name, h):
        return {"path": name, "image": torch.zeros(3, h, 2)}

    sizes = [4, 4, 6, 4, 6, 4, 8]
    items = [item(str(i), h) for i, h in enumerate(sizes)]
    batches = [[it["path"] for it in b] for b in same_size_batches(iter(items), 2)]
    assert batches == [["0", "1"], ["2", "4"], ["3", "5"], ["6"]]
    assert [[it["path"] for it in b] for b in same_size_batches(iter(items), 3)] == [["0", "1", "3"], ["2", "4"],
                                                                                     ["5"], ["6"]]
    # At most max_held images wait: the largest partial group goes out early.
    many = [item(str(i), 4 + i % 3) for i in range(7)]  # shapes 4, 5, 6, 4, 5, 6, 4
    early = [[it["path"] for it in b] for b in same_size_batches(iter(many), 4, max_held=4)]
    assert early == [["0", "3"], ["1", "4"], ["2", "5"], ["6"]]
    assert sorted(p for b in early for p in b) == sorted(it["path"] for it in many)


def test_decode_image_reads_as_torchreid(tmp_path):
    rgb = np.random.RandomState(0).randint(0, 256, size=(H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(decode_image(str(tmp_path / "a.png")), rgb)
    np.testing.assert_array_equal(decode_image(str(tmp_path / "gray.png")), np.repeat(rgb[:, :, :1], 3, axis=2))
    assert read_image_size(str(tmp_path / "a.png")) == (H, W)


# ------------------------------------------------------------------------------------------------
# Bad files: listed with their problem, skipped, the run goes on, exit status 1
# ------------------------------------------------------------------------------------------------

BAD = {"cam1/cut.png": "cannot read it as an image", "empty.jpg": "it is an empty file",
       "notes.png": "cannot read it as an image (UnidentifiedImageError"}


def check_bad_listing(root, summary):
    assert [rel for rel, _ in summary["bad"]] == sorted(BAD)
    for rel, problem in summary["bad"]:
        assert BAD[rel] in problem and "replace it with the original image or delete it" in problem
    lines = (root / "densepose" / "bad_files.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == sorted(BAD)
    assert all(BAD[line.split("\t")[0]] in line.split("\t")[1] for line in lines)
    assert (root / "densepose" / "no_detection.txt").read_text() == "cam0/002.png\n"
    for rel in BAD:
        assert not osp.exists(sidecar_path(str(root), str(root / rel)))


@pytest.mark.parametrize("workers", [0, 2])
def test_extract_lists_bad_files_and_goes_on(bad_dataset, monkeypatch, capsys, workers):
    root, paths = bad_dataset
    tool = load_script("tools", "extract_densepose")
    monkeypatch.setattr(tool, "build_predictor", lambda *args, **kwargs: (stand_in_predict, to_chw))
    argv = ["--dataset-dir", str(root), "--config", "c.yaml", "--weights", "w.pkl", "--no-progress",
            "--workers", str(workers), "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_:
        tool.main(argv)
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "6 images: 2 IUV maps written, 0 skipped (already there), 1 with no detection" in out
    assert "3 images not processed, their files are bad" in out and "empty.jpg: it is an empty file" in out
    check_bad_listing(root, {"bad": [(line.split("\t")[0], line.split("\t")[1]) for line in
                                     (root / "densepose" / "bad_files.txt").read_text().splitlines()]})
    assert read_iuv(sidecar_path(str(root), paths[0])).shape == (3, H, W)
    # Resumable: a second run only retries the bad and the no-detection images.
    seen = []
    monkeypatch.setattr(tool, "build_predictor", lambda *args, **kwargs: (
        lambda batch: seen.extend(osp.basename(it["path"]) for it in batch) or stand_in_predict(batch), to_chw))
    with pytest.raises(SystemExit):
        tool.main(argv)
    assert seen == ["002.png"]


def test_import_path_lists_bad_image_files(bad_dataset):
    root, paths = bad_dataset
    images = sorted(str(p) for p in root.rglob("*") if p.suffix in (".png", ".jpg"))

    def estimate(image_path, image_size):
        return None if image_path == paths[2] else np.ones((3,) + image_size, np.uint8)

    summary = write_densepose_sidecars(str(root), images, estimate, progress=False)
    assert (summary["total"], summary["written"], summary["no_detection"]) == (6, 2, ["cam0/002.png"])
    check_bad_listing(root, summary)


# ------------------------------------------------------------------------------------------------
# Device default and clear errors
# ------------------------------------------------------------------------------------------------


def test_device_defaults_to_cpu_without_a_gpu(bad_dataset, monkeypatch, capsys):
    root, _ = bad_dataset
    tool = load_script("tools", "extract_densepose")
    asked = {}

    def fake_build(config, weights, device, min_score, opts):
        asked.update(device=device, min_score=min_score, opts=opts)
        return stand_in_predict, to_chw

    monkeypatch.setattr(tool, "build_predictor", fake_build)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["--dataset-dir", str(root), "--config", "c.yaml", "--weights", "w.pkl", "--no-progress", "--workers", "0"]
    with pytest.raises(SystemExit):
        tool.main(argv + ["--opts", "TEST.DETECTIONS_PER_IMAGE", "3"])
    assert asked == {"device": "cpu", "min_score": 0.8, "opts": ["TEST.DETECTIONS_PER_IMAGE", "3"]}
    assert "running DensePose on cpu (no CUDA GPU found), batches of 8" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        tool.main(argv + ["--device", "cuda"])
    assert "--device cuda: torch finds no usable CUDA GPU here" in str(info.value.code)
    assert "pass --device cpu or leave --device out" in str(info.value.code)
    with pytest.raises(SystemExit) as info:
        tool.main(argv + ["--device", "gpu0"])
    assert "--device gpu0: not a torch device" in str(info.value.code)


@pytest.mark.parametrize("flag", ["--batch-size", "--workers"])
def test_batch_size_and_workers_are_checked(flag, capsys):
    tool = load_script("tools", "extract_densepose")
    with pytest.raises(SystemExit) as info:
        tool.main(["--dataset-dir", ".", "--config", "c", "--weights", "w", flag, "-1"])
    assert info.value.code == 2 and "must be at least" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Batched = one at a time
# ------------------------------------------------------------------------------------------------


def sidecar_bytes(root):
    folder = osp.join(root, "densepose")
    return {osp.relpath(osp.join(d, f), folder): open(osp.join(d, f), "rb").read()
            for d, _, files in os.walk(folder) for f in files}


@pytest.mark.parametrize("batch_size,workers", [(3, 0), (8, 2)])
def test_batches_write_the_bytes_of_one_at_a_time(tmp_path, batch_size, workers):
    sizes = [(H, W), (H + 2, W), (H, W), (H, W), (H + 2, W), (H, W), (H, W - 1)]
    single, batched = str(tmp_path / "one"), str(tmp_path / "many")
    paths = write_images(single, sizes)
    write_images(batched, sizes)
    seen = []

    def recording(batch):
        assert len({tuple(it["image"].shape) for it in batch}) == 1  # one size per batch
        seen.append(len(batch))
        return stand_in_predict(batch)

    one = extract_densepose_sidecars(single, paths, stand_in_predict, to_chw, batch_size=1, workers=0,
                                     progress=False)
    many = extract_densepose_sidecars(batched, [p.replace(single, batched) for p in paths], recording, to_chw,
                                      batch_size=batch_size, workers=workers, progress=False)
    assert sidecar_bytes(single) == sidecar_bytes(batched) and len(sidecar_bytes(single)) == 8  # 6 maps + 2 lists
    assert {k: v for k, v in one.items() if not k.endswith("_file")} == \
        {k: v for k, v in many.items() if not k.endswith("_file")}
    assert sum(seen) == len(sizes) and max(seen) > 1


def densepose_config_file():
    """``densepose_rcnn_R_50_FPN_s1x.yaml`` of an editable (from-source) DensePose install, or skip."""
    densepose = pytest.importorskip("densepose")
    pytest.importorskip("detectron2")
    path = osp.join(osp.dirname(osp.dirname(densepose.__file__)), "configs", "densepose_rcnn_R_50_FPN_s1x.yaml")
    if not osp.isfile(path):
        pytest.skip("DensePose's configs folder is not beside its package (not a from-source install)")
    return path


def test_detectron2_batches_match_one_image_at_a_time(tmp_path):
    """The real model path: a random DensePose R50-FPN (small input size), --batch-size 4 vs 1, byte-identical."""
    config = densepose_config_file()
    tool = load_script("tools", "extract_densepose")
    torch.manual_seed(0)
    opts = ["INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "192", "TEST.DETECTIONS_PER_IMAGE", "2"]
    cfg = tool.densepose_config(config, device="cpu", min_score=0.05, opts=opts)
    model = tool.build_densepose_model(cfg, weights=None)
    for module in model.backbone.bottom_up.modules():
        if hasattr(module, "conv3"):  # ResNet bottleneck blocks start as identities: person-sized boxes
            module.conv3.norm.weight.zero_()
    with torch.no_grad():  # coarse segmentation leaning to "person": box pixels get charts and UVs
        model.roi_heads.densepose_predictor.ann_index_lowres.bias[1] += 10
    predict, prepare = tool.DensePoseBatchPredictor(model, min_score=0.05), tool.DensePoseInput(cfg)
    sizes = [(64, 32)] * 5 + [(60, 32)] * 2
    roots = [str(tmp_path / "one"), str(tmp_path / "four")]
    for root, batch_size in zip(roots, (1, 4)):
        paths = write_images(root, sizes)
        extract_densepose_sidecars(root, paths, predict, prepare, batch_size=batch_size, workers=0, progress=False)
    one, four = sidecar_bytes(roots[0]), sidecar_bytes(roots[1])
    assert sum(k.endswith(".png") for k in one) >= 3 and one == four


# ------------------------------------------------------------------------------------------------
# The benchmark without detectron2
# ------------------------------------------------------------------------------------------------


def test_bench_extract_without_detectron2_says_how_to_install():
    code = ("import sys; sys.modules['detectron2'] = None; sys.modules['densepose'] = None; "
            "import runpy; sys.argv = ['bench_extract.py']; "
            f"runpy.run_path({osp.join(REPO, 'benchmarks', 'bench_extract.py')!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "bench_extract needs detectron2 and DensePose" in done.stderr
    assert "pip install --no-build-isolation -e detectron2" in done.stderr
