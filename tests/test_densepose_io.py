"""DensePose interop: restricted loading of apply_net.py dumps, main-box choice, pasting, sidecar writing."""
import base64
import collections
import dataclasses
import importlib.util
import io
import os
import os.path as osp
import pickle
import sys
import types
from typing import Optional

import numpy as np
import pytest
import torch
from PIL import Image

from torchreid_dense.dense.densepose import (DensePoseChartResultWithConfidences, DensePoseDumpError,
                                             box_xywh_int, dump_entry_to_iuv, import_dump, instances_to_iuv, list_dataset_images,
                                             load_dump, main_box_iuv, paste_box_iuv, result_to_iuv, select_main_box)
from torchreid_dense.dense.iuv import read_iuv
from torchreid_dense.dense.sidecar import sidecar_path

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "tools")
H, W = 16, 12  # image size of the crafted data set

# u / v values used in the crafted results, and their quantized values written by hand (floor(x * 255)).
UV_VALUES = np.array([0.0, 0.25, 0.5, 1.0], dtype=np.float32)
UV_QUANTIZED = np.array([0, 63, 127, 255], dtype=np.uint8)


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", osp.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------
# Stand-in DensePose classes, registered under DensePose's module names only while pickling
# ------------------------------------------------------------------------------------------------

DP_MODULES = ("densepose", "densepose.structures", "densepose.structures.chart_result", "densepose.data",
              "densepose.data.structures")


@pytest.fixture
def fake_densepose():
    """Module objects named like DensePose's with its result classes; removed again by ``uninstall``."""
    mods = {name: types.ModuleType(name) for name in DP_MODULES}

    @dataclasses.dataclass
    class DensePoseChartResult:
        labels: torch.Tensor
        uv: torch.Tensor

    @dataclasses.dataclass
    class DensePoseChartResultWithConfidences:
        labels: torch.Tensor
        uv: torch.Tensor
        sigma_1: Optional[torch.Tensor] = None
        sigma_2: Optional[torch.Tensor] = None
        kappa_u: Optional[torch.Tensor] = None
        kappa_v: Optional[torch.Tensor] = None
        fine_segm_confidence: Optional[torch.Tensor] = None
        coarse_segm_confidence: Optional[torch.Tensor] = None

    class DensePoseResult:  # the legacy encoded format (v0.1, v0.1.1)
        def __init__(self, results, boxes_xywh):
            self.results = results
            self.boxes_xywh = boxes_xywh

    class DensePoseResultV02(DensePoseResult):  # the same class, moved to densepose.data.structures in v0.1.2
        pass

    for cls, mod, name in ((DensePoseChartResult, "densepose.structures.chart_result", "DensePoseChartResult"),
                           (DensePoseChartResultWithConfidences, "densepose.structures.chart_result",
                            "DensePoseChartResultWithConfidences"),
                           (DensePoseResult, "densepose.structures", "DensePoseResult"),
                           (DensePoseResultV02, "densepose.data.structures", "DensePoseResult")):
        cls.__module__, cls.__qualname__, cls.__name__ = mod, name, name
        setattr(mods[mod], name, cls)

    def uninstall():
        for name in DP_MODULES:
            sys.modules.pop(name, None)

    for name, mod in mods.items():
        assert name not in sys.modules
        sys.modules[name] = mod
    ns = types.SimpleNamespace(chart=DensePoseChartResult, conf=DensePoseChartResultWithConfidences,
                               legacy=DensePoseResult, legacy_v02=DensePoseResultV02, uninstall=uninstall)
    yield ns
    uninstall()


def save_dump(obj, path, fmt, fake):
    """Write ``obj`` as apply_net.py does (``pickle`` in old DensePose, ``torch.save`` in new), then drop the fakes."""
    with open(path, "wb") as f:
        if fmt == "pickle":
            pickle.dump(obj, f)
        elif fmt == "pickle0":
            pickle.dump(obj, f, protocol=0)
        else:
            torch.save(obj, f)
    if fake is not None:
        fake.uninstall()
    assert not any(name in sys.modules for name in DP_MODULES)
    return str(path)


# ------------------------------------------------------------------------------------------------
# A crafted data set and dump, with the expected IUV maps written by hand
# ------------------------------------------------------------------------------------------------


def crafted_box_result(h, w, seed):
    """labels [h, w] and indices into UV_VALUES for u and v (so quantized values are known by hand)."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 25, size=(h, w))
    labels[0, 0], labels[-1, -1] = 24, 0
    ui, vi = rng.randint(0, 4, size=(h, w)), rng.randint(0, 4, size=(h, w))
    return labels, ui, vi


def expected_box_iuv(labels, ui, vi):
    person = labels > 0
    return np.stack([labels.astype(np.uint8), np.where(person, UV_QUANTIZED[ui], 0),
                     np.where(person, UV_QUANTIZED[vi], 0)]).astype(np.uint8)


@pytest.fixture
def dataset(tmp_path):
    """Data set folder with a.jpg (two persons), sub/b.png (box leaving the image), c.jpg (no detection)."""
    root = tmp_path / "ds"
    (root / "sub").mkdir(parents=True)
    rng = np.random.RandomState(0)
    for rel in ("a.jpg", "sub/b.png", "c.jpg"):
        Image.fromarray(rng.randint(0, 255, size=(H, W, 3), dtype=np.uint8)).save(root / rel)
    return root


def build_entries(root, fake):
    """Dump entries for ``dataset`` plus the expected full-image IUV of a.jpg and sub/b.png."""
    # a.jpg: a tiny box with a high score, and the main person: box (2.7, 3.2, 10.9, 14.5) -> 8 x 11 at (3, 2).
    la, ua, va = crafted_box_result(11, 8, seed=1)
    tiny = fake.conf(labels=torch.full((2, 2), 5, dtype=torch.long), uv=torch.full((2, 2, 2), 0.5))
    main_a = fake.conf(labels=torch.from_numpy(la), uv=torch.from_numpy(np.stack([UV_VALUES[ua], UV_VALUES[va]])),
                       sigma_2=torch.ones(11, 8))
    exp_a = np.zeros((3, H, W), np.uint8)
    exp_a[:, 3:14, 2:10] = expected_box_iuv(la, ua, va)
    # sub/b.png: box (-3, 5, 7, 20) -> 10 x 15 at (5, -3): rows 5..15 and columns 0..6 are visible.
    lb, ub, vb = crafted_box_result(15, 10, seed=2)
    main_b = fake.chart(labels=torch.from_numpy(lb), uv=torch.from_numpy(np.stack([UV_VALUES[ub], UV_VALUES[vb]])))
    exp_b = np.zeros((3, H, W), np.uint8)
    exp_b[:, 5:16, 0:7] = expected_box_iuv(lb, ub, vb)[:, 0:11, 3:10]
    entries = [
        {"file_name": str(root / "a.jpg"), "scores": torch.tensor([0.99, 0.85]),
         "pred_boxes_XYXY": torch.tensor([[0.0, 0.0, 2.0, 2.0], [2.7, 3.2, 10.9, 14.5]]),
         "pred_densepose": [tiny, main_a]},
        {"file_name": "sub/b.png", "scores": torch.tensor([0.9]),
         "pred_boxes_XYXY": torch.tensor([[-3.0, 5.0, 7.0, 20.0]]), "pred_densepose": [main_b]},
        {"file_name": "c.jpg", "scores": torch.zeros(0), "pred_boxes_XYXY": torch.zeros(0, 4),
         "pred_densepose": []},
    ]
    return entries, {"a.jpg": exp_a, "sub/b.png": exp_b}


@pytest.mark.parametrize("fmt", ["pickle", "torch", "pickle0"])
def test_import_crafted_dump(fake_densepose, dataset, tmp_path, fmt):
    entries, expected = build_entries(dataset, fake_densepose)
    dump = save_dump(entries, tmp_path / "results.pkl", fmt, fake_densepose)

    loaded = load_dump(dump)
    assert [e["file_name"] for e in loaded] == [e["file_name"] for e in entries]
    assert isinstance(loaded[0]["pred_densepose"][1], DensePoseChartResultWithConfidences)
    assert torch.equal(loaded[0]["pred_densepose"][1].sigma_2, torch.ones(11, 8))
    assert loaded[0]["pred_densepose"][1].kappa_u is None

    summary = import_dump(dump, dataset, progress=False)
    assert (summary["total"], summary["written"], summary["skipped"]) == (3, 2, 0)
    assert summary["no_detection"] == ["c.jpg"]
    for rel, exp in expected.items():
        out = sidecar_path(dataset, dataset / rel, "densepose")
        np.testing.assert_array_equal(read_iuv(out, size=(H, W)), exp)
    assert not osp.exists(sidecar_path(dataset, dataset / "c.jpg", "densepose"))
    listing = dataset / "densepose" / "no_detection.txt"
    assert listing.read_text() == "c.jpg\n"

    # Resumable: a second run skips every written image and lists the no-detection image again.
    out_a = sidecar_path(dataset, dataset / "a.jpg", "densepose")
    mtime = os.stat(out_a).st_mtime_ns
    again = import_dump(dump, dataset, progress=False)
    assert (again["written"], again["skipped"], again["no_detection"]) == (0, 2, ["c.jpg"])
    assert os.stat(out_a).st_mtime_ns == mtime
    assert sorted(os.listdir(dataset / "densepose")) == ["a.png", "bad_files.txt", "no_detection.txt", "sub"]  # no temp
    assert (dataset / "densepose" / "bad_files.txt").read_text() == ""
    forced = import_dump(dump, dataset, progress=False, overwrite=True)
    assert (forced["written"], forced["skipped"]) == (2, 0)


def test_import_cli_and_file_name_resolution(fake_densepose, dataset, tmp_path, capsys):
    entries, expected = build_entries(dataset, fake_densepose)
    # Relative names as apply_net.py writes them when run from the data set's parent folder.
    entries[1]["file_name"] = "ds/sub/b.png"
    entries[2]["file_name"] = "ds/c.jpg"
    dump = save_dump(entries, tmp_path / "results.pkl", "torch", fake_densepose)
    with pytest.raises(DensePoseDumpError, match=r"entry 1 \(ds/sub/b.png\).*does not exist.*--images-root"):
        import_dump(dump, dataset, progress=False)
    assert not (dataset / "densepose").exists()  # every entry is checked before anything is written

    tool = load_tool("import_densepose")
    summary = tool.main(["--dump", dump, "--dataset-dir", str(dataset), "--images-root", str(tmp_path),
                         "--no-progress"])
    assert (summary["written"], summary["no_detection"]) == (2, ["c.jpg"])
    np.testing.assert_array_equal(read_iuv(sidecar_path(dataset, dataset / "sub/b.png")), expected["sub/b.png"])
    printed = capsys.readouterr().out
    assert "2 IUV maps written" in printed and "c.jpg" in printed

    with pytest.raises(SystemExit, match="not inside the data set directory"):
        tool.main(["--dump", dump, "--dataset-dir", str(dataset / "sub"), "--images-root", str(tmp_path),
                   "--no-progress"])


def test_legacy_encoded_dump(fake_densepose, dataset, tmp_path):
    lab, ui, vi = crafted_box_result(5, 4, seed=3)
    box_iuv = expected_box_iuv(lab, ui, vi)
    buf = io.BytesIO()
    Image.fromarray(np.moveaxis(box_iuv, 0, -1)).save(buf, format="png")
    encoded = base64.encodebytes(buf.getvalue()).decode()
    legacy = fake_densepose.legacy([(box_iuv.shape, encoded)], [[1.0, 2.0, 4.0, 5.0]])
    entry = {"file_name": "a.jpg", "scores": torch.tensor([0.95]),
             "pred_boxes_XYXY": torch.tensor([[1.0, 2.0, 5.0, 7.0]]), "pred_densepose": legacy}
    dump = save_dump([entry], tmp_path / "old.pkl", "pickle", fake_densepose)
    summary = import_dump(dump, dataset, progress=False)
    assert summary["written"] == 1
    expected = np.zeros((3, H, W), np.uint8)
    expected[:, 2:7, 1:5] = box_iuv
    np.testing.assert_array_equal(read_iuv(sidecar_path(dataset, dataset / "a.jpg")), expected)


def encode_legacy_png(box_iuv):
    """A per-box IUV as the legacy DensePoseResult stores it: PNG of the [h, w, 3] array, base64 text."""
    buf = io.BytesIO()
    Image.fromarray(np.moveaxis(box_iuv, 0, -1)).save(buf, format="png")
    return base64.encodebytes(buf.getvalue()).decode()


def test_box_size_and_position_as_densepose_converters():
    # DensePose: BoxMode.convert on the float32 tensor, then .long() (make_int_box); float64 would give w = 59.
    box = [12.000001, 5.0, 72.0, 150.0]
    t = torch.tensor([box], dtype=torch.float32)
    xywh = torch.cat([t[:, :2], t[:, 2:] - t[:, :2]], dim=1).long()[0].tolist()
    assert xywh == [12, 5, 60, 145] and int(72.0 - 12.000001) == 59
    assert box_xywh_int(box) == (12, 5, 60, 145) == box_xywh_int(t[0]) == box_xywh_int(np.array(box))
    assert box_xywh_int([3.9, 2.5, 4.0, 2.6]) == (3, 2, 1, 1)  # an empty box still covers one pixel


def test_densepose_v02_dump_pastes_the_box_densepose_sized(fake_densepose, tmp_path):
    """A v0.1.2-v0.2.1 dump (densepose.data.structures.DensePoseResult): its 145 x 60 result fits the box
    [12.000001, 5, 72, 150] exactly and is pasted at rows 5..149, columns 12..71, unresized."""
    root = tmp_path / "ds"
    root.mkdir()
    Image.fromarray(np.zeros((160, 80, 3), np.uint8)).save(root / "p.jpg")
    lab, ui, vi = crafted_box_result(145, 60, seed=7)
    box_iuv = expected_box_iuv(lab, ui, vi)
    boxes = torch.tensor([[12.000001, 5.0, 72.0, 150.0], [0.0, 0.0, 4.0, 4.0]])
    small = expected_box_iuv(*crafted_box_result(4, 4, seed=8))
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1)  # apply_net's BoxMode.convert
    legacy = fake_densepose.legacy_v02([(box_iuv.shape, encode_legacy_png(box_iuv)),
                                        (small.shape, encode_legacy_png(small))], xywh.tolist())
    entry = {"file_name": "p.jpg", "scores": torch.tensor([0.9, 0.95]), "pred_boxes_XYXY": boxes,
             "pred_densepose": legacy}
    dump = save_dump([entry], tmp_path / "v021.pkl", "pickle", fake_densepose)
    assert import_dump(dump, root, progress=False)["written"] == 1
    expected = np.zeros((3, 160, 80), np.uint8)
    expected[:, 5:150, 12:72] = box_iuv
    np.testing.assert_array_equal(read_iuv(sidecar_path(root, root / "p.jpg"), size=(160, 80)), expected)


# ------------------------------------------------------------------------------------------------
# Rejection: nothing but tensors and DensePose results is resolved, and nothing forbidden ever runs
# ------------------------------------------------------------------------------------------------


class _CallsSystem:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _CallsEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


class _NestedTorchLoad:
    """A storage whose bytes are a pickle calling os.system: torch's own _load_from_bytes would run it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return torch.storage._load_from_bytes, (pickle.dumps(_CallsSystem(self.marker), protocol=2),)


@pytest.mark.parametrize("fmt", ["pickle", "torch"])
@pytest.mark.parametrize("attack, forbidden", [
    (_CallsSystem, f"'{os.system.__module__}.system'"),
    (_CallsEval, "'builtins.eval'"),
    (lambda marker: collections.Counter(a=1), "'collections.Counter'"),
])
def test_rejects_forbidden_globals(fake_densepose, tmp_path, fmt, attack, forbidden):
    marker = tmp_path / "pwned"
    result = fake_densepose.chart(labels=torch.zeros(2, 2, dtype=torch.long), uv=torch.zeros(2, 2, 2))
    entries = [{"file_name": "a.jpg", "scores": torch.tensor([0.9]), "pred_boxes_XYXY": torch.tensor([[0., 0, 2, 2]]),
                "pred_densepose": [result], "extra": attack(marker)}]
    dump = save_dump(entries, tmp_path / "evil.pkl", fmt, fake_densepose)
    with pytest.raises(DensePoseDumpError) as info:
        load_dump(dump)
    message = str(info.value)
    assert f"refusing to load {dump}" in message and forbidden in message
    assert "only files written by detectron2 DensePose apply_net.py dump are accepted" in message
    assert not marker.exists()


def test_rejects_code_inside_tensor_storage_bytes(tmp_path):
    marker = tmp_path / "pwned"
    dump = save_dump([{"file_name": "a.jpg", "scores": _NestedTorchLoad(marker)}], tmp_path / "nested.pkl",
                     "pickle", None)
    with pytest.raises(DensePoseDumpError, match=str(dump)):
        load_dump(dump)
    assert not marker.exists()


def test_rejects_other_densepose_classes(fake_densepose, tmp_path):
    mod = types.ModuleType("densepose.structures.cse")

    class DensePoseEmbeddingPredictorOutput:
        pass

    DensePoseEmbeddingPredictorOutput.__module__ = mod.__name__
    DensePoseEmbeddingPredictorOutput.__qualname__ = DensePoseEmbeddingPredictorOutput.__name__
    mod.DensePoseEmbeddingPredictorOutput = DensePoseEmbeddingPredictorOutput
    sys.modules[mod.__name__] = mod
    try:
        data = pickle.dumps([{"file_name": "a.jpg", "pred_densepose": DensePoseEmbeddingPredictorOutput()}])
    finally:
        del sys.modules[mod.__name__]
        fake_densepose.uninstall()
    path = tmp_path / "cse.pkl"
    path.write_bytes(data)
    with pytest.raises(DensePoseDumpError, match="densepose.structures.cse.DensePoseEmbeddingPredictorOutput.*"
                                                 "not a DensePose chart"):
        load_dump(path)


@pytest.mark.parametrize("obj, described", [
    ({"file_name": "a.jpg"}, "a dict"),
    ([1, 2, 3], "a list of int"),
    ([{"file_name": "a.jpg", "scores": torch.ones(1), "pred_boxes_XYXY": torch.zeros(1, 4),
       "pred_densepose": [7]}], "a list of int"),
])
def test_rejects_non_densepose_content(tmp_path, obj, described):
    dump = save_dump(obj, tmp_path / "plain.pkl", "pickle", None)
    with pytest.raises(DensePoseDumpError, match=f"holds {described} not DensePose"):
        load_dump(dump)


def test_rejects_unreadable_file(tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(DensePoseDumpError, match=f"cannot read {path}"):
        load_dump(path)


# ------------------------------------------------------------------------------------------------
# Pure functions
# ------------------------------------------------------------------------------------------------


def test_select_main_box_rule():
    size = (128, 64)
    # A tiny box with a high score loses to a large box with a medium score.
    assert select_main_box(torch.tensor([[10., 10, 20, 20], [0, 0, 60, 120]]), torch.tensor([0.99, 0.5]), size) == 1
    # Overlapping persons: the box that fills the crop wins over a higher-scoring box half outside the
    # image (its unclipped area, 14*128*0.95, would be larger than 60*128*0.9).
    boxes = torch.tensor([[70., 0, 84, 128], [2, 0, 62, 128], [40, 0, 96, 128]])
    assert select_main_box(boxes, torch.tensor([0.8, 0.9, 0.95]), size) == 1
    # Ties go to the lowest index; min_score removes candidates; nothing usable gives None.
    assert select_main_box(np.array([[0, 0, 10, 10], [5, 5, 15, 15]]), np.array([0.9, 0.9]), size) == 0
    assert select_main_box(np.array([[0, 0, 60, 120], [0, 0, 10, 10]]), np.array([0.5, 0.9]), size,
                           min_score=0.8) == 1
    assert select_main_box(torch.zeros(0, 4), torch.zeros(0), size) is None
    assert select_main_box(np.array([[70, 0, 90, 50]]), np.array([0.9]), size) is None


def test_result_to_iuv_resizes_with_nearest_and_clips():
    labels = torch.tensor([[1, 2], [0, 24]])
    uv = torch.tensor([[[0.25, 0.5], [1.0, 1.0]], [[0.0, 1.0], [0.5, 0.25]]])
    # box (x0, y0, x1, y1) = (-1.5, 1.2, 2.6, 5.9): 4 x 4 (trunc of the sizes) at row 1, column -1 (trunc(-1.5)).
    iuv = result_to_iuv(labels, uv, (-1.5, 1.2, 2.6, 5.9), image_size=(6, 3))
    expected = np.zeros((3, 6, 3), np.uint8)
    # Resized box (columns -1..2, rows 1..4): labels [[1,1,2,2],[1,1,2,2],[0,0,24,24],[0,0,24,24]];
    # column -1 falls outside the image, so columns 0..2 of the image show box columns 1..3.
    expected[:, 1:5, 0:3] = [
        [[1, 2, 2], [1, 2, 2], [0, 24, 24], [0, 24, 24]],
        [[63, 127, 127], [63, 127, 127], [0, 255, 255], [0, 255, 255]],
        [[0, 255, 255], [0, 255, 255], [0, 63, 63], [0, 63, 63]],
    ]
    np.testing.assert_array_equal(iuv, expected)
    # A result of the box's own size is pasted unchanged at (trunc(y0), trunc(x0)).
    same = paste_box_iuv(expected[:, 1:5, 0:2], (1.0, 0.0, 3.0, 4.0), (5, 4))
    np.testing.assert_array_equal(same[:, 0:4, 1:3], expected[:, 1:5, 0:2])
    assert same[:, 4].sum() == 0 and same[:, :, [0, 3]].sum() == 0
    with pytest.raises(ValueError, match=r"uv \[2, h, w\]"):
        result_to_iuv(labels, uv[0], (0, 0, 2, 2), (4, 4))


def test_extract_conversion_matches_importer_on_instances():
    labels, ui, vi = crafted_box_result(6, 5, seed=4)
    uv = torch.from_numpy(np.stack([UV_VALUES[ui], UV_VALUES[vi]]))
    other = types.SimpleNamespace(labels=torch.ones(3, 3, dtype=torch.long), uv=torch.zeros(2, 3, 3))
    instances = types.SimpleNamespace(
        scores=torch.tensor([0.97, 0.7]),
        pred_boxes=types.SimpleNamespace(tensor=torch.tensor([[0.0, 0.0, 3.0, 3.0], [3.4, 1.0, 8.5, 7.5]])))
    main = types.SimpleNamespace(labels=torch.from_numpy(labels), uv=uv)
    iuv = instances_to_iuv(instances, [other, main], (H, W))
    expected = np.zeros((3, H, W), np.uint8)
    expected[:, 1:7, 3:8] = expected_box_iuv(labels, ui, vi)
    np.testing.assert_array_equal(iuv, expected)
    entry = {"scores": instances.scores, "pred_boxes_XYXY": instances.pred_boxes.tensor,
             "pred_densepose": [other, main]}
    np.testing.assert_array_equal(dump_entry_to_iuv(entry, (H, W)), iuv)
    empty = types.SimpleNamespace(scores=torch.zeros(0), pred_boxes=types.SimpleNamespace(tensor=torch.zeros(0, 4)))
    assert instances_to_iuv(empty, None, (H, W)) is None
    with pytest.raises(DensePoseDumpError, match="1 DensePose results for 2 boxes"):
        instances_to_iuv(instances, [main], (H, W))


# ------------------------------------------------------------------------------------------------
# extract_densepose tool
# ------------------------------------------------------------------------------------------------


def test_extract_without_detectron2_explains_install(dataset, monkeypatch):
    tool = load_tool("extract_densepose")
    monkeypatch.setitem(sys.modules, "detectron2", None)  # makes `import detectron2` fail
    monkeypatch.setitem(sys.modules, "densepose", None)
    with pytest.raises(SystemExit) as info:
        tool.main(["--dataset-dir", str(dataset), "--config", "densepose_rcnn_R_50_FPN_s1x.yaml",
                   "--weights", "model_final_162be9.pkl"])
    message = str(info.value.code)
    assert ("git clone https://github.com/facebookresearch/detectron2 && pip install --no-build-isolation -e "
            "detectron2 && pip install --no-build-isolation --no-deps -e detectron2/projects/DensePose && "
            "pip install av") in message
    assert "DENSEPOSE_IUV.md#ModelZoo" in message and "tools/import_densepose.py" in message
    assert not (dataset / "densepose").exists()


def test_extract_loop_with_stand_in_model(dataset, monkeypatch):
    tool = load_tool("extract_densepose")
    labels, ui, vi = crafted_box_result(4, 3, seed=5)
    result = (torch.from_numpy(labels), torch.from_numpy(np.stack([UV_VALUES[ui], UV_VALUES[vi]])))
    calls = []

    def predict_batch(batch):
        out = []
        for item in batch:
            calls.append(osp.relpath(item["path"], dataset))
            found = not item["path"].endswith("c.jpg")
            boxes = torch.tensor([[1., 2, 4, 6]]) if found else torch.zeros(0, 4)
            out.append(main_box_iuv(boxes, torch.tensor([0.9] if found else []), (item["height"], item["width"]),
                                    lambda index: result))
        return out

    monkeypatch.setattr(tool, "build_predictor", lambda *args, **kwargs: (predict_batch, torch.as_tensor))
    argv = ["--dataset-dir", str(dataset), "--config", "c.yaml", "--weights", "w.pkl", "--no-progress",
            "--workers", "0"]
    summary = tool.main(argv)
    assert sorted(calls) == ["a.jpg", "c.jpg", osp.join("sub", "b.png")]
    assert (summary["written"], summary["no_detection"]) == (2, ["c.jpg"])
    expected = np.zeros((3, H, W), np.uint8)
    expected[:, 2:6, 1:4] = expected_box_iuv(labels, ui, vi)
    np.testing.assert_array_equal(read_iuv(sidecar_path(dataset, dataset / "sub/b.png")), expected)
    # The sidecar PNGs are not images of the data set; a second run only retries the no-detection image.
    assert list_dataset_images(dataset) == [str(dataset / "a.jpg"), str(dataset / "c.jpg"),
                                            str(dataset / "sub" / "b.png")]
    calls.clear()
    again = tool.main(argv)
    assert (again["written"], again["skipped"], calls) == (0, 2, ["c.jpg"])
