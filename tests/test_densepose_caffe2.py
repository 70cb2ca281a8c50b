"""Classic Caffe2 DensePose files (<stem>_IUV.png written by cv2, <stem>_INDS.png) imported as IUV sidecars."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from torchreid_dense.dense import IUVFormatError, read_iuv, sidecar_path
from torchreid_dense.dense.densepose_caffe2 import LegacyIUVError, import_legacy_iuv, keep_main_instance

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "tools")
H, W = 32, 16  # conftest's Market-layout image size


def import_tool():
    spec = importlib.util.spec_from_file_location("tool_import_densepose", osp.join(TOOLS, "import_densepose.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def caffe2_arrays(seed):
    """What infer_simple.py builds before cv2.imwrite: [H, W, 3] (I, U*255, V*255) and the INDS map.

    Two persons: instance 0 (the lower score; index 0 like the background) covers rows 0..19, instance 1
    rows 24..31 (fewer pixels), so the main instance is 0.
    """
    rng = np.random.default_rng(seed)
    coords = np.zeros((H, W, 3), np.uint8)
    inds = np.zeros((H, W), np.uint8)
    coords[0:20, 2:14, 0] = rng.integers(1, 25, size=(20, 12))
    coords[24:32, 4:12, 0] = rng.integers(1, 25, size=(8, 8))
    inds[24:32, 4:12] = 1
    person = coords[..., 0] > 0
    coords[..., 1:] = np.where(person[..., None], rng.integers(0, 256, size=(H, W, 2)), 0)
    return coords, inds


@pytest.fixture
def caffe2_dir(market_layout, tmp_path):
    """Caffe2 outputs for the Market layout: train images mirrored, test images in a tail folder, query in DIR."""
    root, data_dir, paths = market_layout
    ds_dir = osp.dirname(data_dir)  # <root>/market1501
    out = tmp_path / "caffe2_out"
    expected = {}
    for i, p in enumerate(paths):
        split = osp.basename(osp.dirname(p))
        if split == "query" and i % 2:
            continue  # no person found: infer_simple writes no file
        coords, inds = caffe2_arrays(seed=i)
        folder = {"bounding_box_train": out / "Market-1501-v15.09.15" / split,
                  "bounding_box_test": out / split, "query": out}[split]
        folder.mkdir(parents=True, exist_ok=True)
        stem = osp.basename(p).split(".")[0]
        cv2.imwrite(str(folder / f"{stem}_IUV.png"), coords)
        if split != "bounding_box_test":  # _INDS.png is optional
            cv2.imwrite(str(folder / f"{stem}_INDS.png"), inds)
        iuv = coords.transpose(2, 0, 1).copy()  # the project's (I, U, V) order
        if split != "bounding_box_test":
            iuv[:, inds == 1] = 0  # the smaller instance becomes background
        expected[p] = iuv
    return ds_dir, str(out), paths, expected


def test_import_caffe2_files_keeps_the_main_instance_in_iuv_order(caffe2_dir, capsys):
    ds_dir, out, paths, expected = caffe2_dir
    summary = import_tool()(["--legacy-iuv-dir", out, "--dataset-dir", ds_dir, "--no-progress"])
    no_file = sorted(osp.relpath(p, ds_dir) for p in paths if p not in expected)
    assert (summary["total"], summary["written"], summary["bad"]) == (len(paths), len(expected), [])
    assert summary["no_detection"] == no_file and len(no_file) == 2
    for p, iuv in expected.items():
        np.testing.assert_array_equal(read_iuv(sidecar_path(ds_dir, p), size=(H, W)), iuv)
    with open(osp.join(ds_dir, "densepose", "no_detection.txt")) as f:
        assert f.read().split() == no_file
    assert f"{len(expected)} IUV maps written" in capsys.readouterr().out

    # resumable: nothing is rewritten; a deleted sidecar is written again
    first = sidecar_path(ds_dir, next(iter(expected)))
    mtime = os.stat(first).st_mtime_ns
    os.remove(sidecar_path(ds_dir, paths[-1] if paths[-1] in expected else list(expected)[-1]))
    again = import_legacy_iuv(out, ds_dir, progress=False)
    assert (again["written"], again["skipped"]) == (1, len(expected) - 1)
    assert os.stat(first).st_mtime_ns == mtime


def test_read_iuv_on_a_raw_caffe2_file_names_the_import_command(caffe2_dir):
    ds_dir, out, paths, expected = caffe2_dir
    raw = next(osp.join(r, f) for r, _, fs in os.walk(out) for f in fs if f.endswith("_IUV.png"))
    with pytest.raises(IUVFormatError, match=r"Caffe2 DensePose .*channels V, U, I.*python tools/import_densepose.py "
                                             r"--legacy-iuv-dir DIR --dataset-dir"):
        read_iuv(raw)


def test_bad_caffe2_files_are_listed_and_the_rest_imported(caffe2_dir, capsys):
    ds_dir, out, paths, expected = caffe2_dir
    train = sorted(p for p in expected if "bounding_box_train" in p)
    stem = lambda p: osp.basename(p).split(".")[0]  # noqa: E731
    folder = osp.join(out, "Market-1501-v15.09.15", "bounding_box_train")
    with open(osp.join(folder, stem(train[0]) + "_IUV.png"), "r+b") as f:
        f.truncate(40)  # a cut-off PNG
    cv2.imwrite(osp.join(folder, stem(train[1]) + "_IUV.png"), np.zeros((H + 2, W, 3), np.uint8))  # wrong size
    with pytest.raises(SystemExit) as exit_:
        import_tool()(["--legacy-iuv-dir", out, "--dataset-dir", ds_dir, "--no-progress"])
    assert exit_.value.code == 1
    printed = capsys.readouterr().out
    assert "2 images not imported" in printed
    assert f"{osp.relpath(train[0], ds_dir)}: " in printed and "cannot read the Caffe2 DensePose IUV map" in printed
    assert f"{osp.relpath(train[1], ds_dir)}: " in printed and f"is {H + 2}x{W} (HxW) but its image is {H}x{W}" in printed
    assert not osp.exists(sidecar_path(ds_dir, train[0])) and osp.exists(sidecar_path(ds_dir, train[2]))


def test_wrong_folder_says_which_layout_is_expected(market_layout, tmp_path):
    root, data_dir, paths = market_layout
    (tmp_path / "empty").mkdir()
    with pytest.raises(LegacyIUVError, match=r"none of the \d+ images .* expected e.g. .*empty/Market-1501-v15.09.15/"
                                             r"bounding_box_test/0005_c1s1_000000_00_IUV.png"):
        import_legacy_iuv(tmp_path / "empty", osp.dirname(data_dir), progress=False)


def test_main_instance_rule():
    iuv = np.zeros((3, 2, 4), np.uint8)
    iuv[0] = [[3, 3, 5, 0], [5, 7, 7, 0]]
    iuv[1:] = 9
    inds = np.array([[0, 0, 2, 1], [2, 1, 1, 1]], np.uint8)  # person pixels: index 0 x2, 1 x2, 2 x2 (tie)
    kept = keep_main_instance(iuv, inds)
    np.testing.assert_array_equal(kept[0], [[0, 0, 5, 0], [5, 0, 0, 0]])  # the tie goes to the higher index
    assert (kept[1:][:, kept[0] == 0] == 0).all() and (kept[1:][:, kept[0] > 0] == 9).all()
    assert keep_main_instance(iuv, None) is iuv
    assert keep_main_instance(np.zeros((3, 2, 2), np.uint8), None) is None


def test_a_file_two_images_would_read_is_used_by_neither(tmp_path):
    from torchreid_dense.dense.densepose_caffe2 import find_legacy_files

    images = [str(tmp_path / "ds" / d / "x.y.jpg") for d in ("a", "b")]
    (tmp_path / "out" / "a").mkdir(parents=True)
    (tmp_path / "out" / "x_IUV.png").write_bytes(b"")
    assert find_legacy_files(tmp_path / "out", tmp_path / "ds", images) == {}
    (tmp_path / "out" / "a" / "x_IUV.png").write_bytes(b"")
    (tmp_path / "out" / "a" / "x_INDS.png").write_bytes(b"")
    found = find_legacy_files(tmp_path / "out", tmp_path / "ds", images)
    assert found == {images[0]: (str(tmp_path / "out" / "a" / "x_IUV.png"), str(tmp_path / "out" / "a" / "x_INDS.png")),
                     images[1]: (str(tmp_path / "out" / "x_IUV.png"), None)}
