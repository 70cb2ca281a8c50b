"""DensePose interop without detectron2: read ``apply_net.py dump`` files safely and turn per-box
chart results into image-sized IUV sidecars (REFERENCE 1.1).

A dump is a pickle (``pickle.dump`` in older DensePose, ``torch.save`` in newer): a list with one
dict per image, keys ``file_name``, ``scores`` ``[N]``, ``pred_boxes_XYXY`` ``[N, 4]`` and
``pred_densepose`` (one chart result per box, each with ``labels`` ``[h, w]`` and ``uv``
``[2, h, w]`` at the box's resolution). Unpickling is code execution, so :func:`load_dump` uses an
unpickler that resolves only torch's tensor-rebuilding functions and the DensePose result classes
(mapped onto the local stand-ins below) and rejects every other global before anything runs.

Main-box rule (:func:`select_main_box`): a re-ID crop holds one main person plus fragments of
others, so the box kept is the one with the largest ``(area of the box clipped to the image) x
score``; ties go to the lowest index (detectron2 lists boxes by decreasing score).

Pasting rule (:func:`box_xywh_int`, :func:`paste_box_iuv`): exactly DensePose's converters (REFERENCE 1.5):
the box ``(x0, y0, x1, y1)`` is turned into ``(x0, y0, x1 - x0, y1 - y0)`` in float32 and truncated
to integers, so it covers ``h = max(trunc(y1 - y0), 1)`` rows and ``w = max(trunc(x1 - x0), 1)`` columns
from ``(trunc(y0), trunc(x0))`` (box ``[12.000001, 5, 72, 150]``: 60 columns, where float64 gives 59). A
per-box result of another size (DensePose's own results always have the box's size) is first resized
to ``h x w`` with nearest-neighbour on the quantized I, U, V together (each output pixel takes label and
UV from one source pixel, so UV values never mix across charts); parts falling outside the image are
clipped.

Versions: ``densepose.structures.chart_result.DensePoseChartResult[WithConfidences]`` (2020-10 on),
``densepose.data.structures.DensePoseResult`` (v0.1.2-v0.2.1) and ``densepose.structures.DensePoseResult``
(v0.1, v0.1.1); the two legacy ones hold per-box PNG-encoded IUV (:class:`DensePoseResult`).
Classic Caffe2 DensePose ``<name>_IUV.png`` files are imported by :mod:`torchreid_dense.dense.densepose_caffe2`.
"""
import base64
import collections
import contextlib
import io
import os
import os.path as osp
import pickle
import types
import zipfile
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch._utils
from PIL import Image
from tqdm import tqdm

from ..utils.io import atomic_write
from .iuv import resize_iuv_nearest, quantize_iuv, write_iuv
from .sidecar import SIDECAR_KINDS, sidecar_path, sidecar_root

__all__ = [
    "DensePoseDumpError", "DensePoseChartResult", "DensePoseChartResultWithConfidences", "DensePoseResult",
    "load_dump", "select_main_box", "box_xywh_int", "paste_box_iuv", "result_to_iuv", "dump_entry_to_iuv", "instances_to_iuv",
    "list_dataset_images", "write_densepose_sidecars", "import_dump", "format_summary", "NO_DETECTION_FILE",
    "IMAGE_EXTENSIONS",
]

NO_DETECTION_FILE = "no_detection.txt"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_ENTRY_KEYS = ("file_name", "scores", "pred_boxes_XYXY", "pred_densepose")
_EXPECTED = ("the list of per-image dicts (file_name, scores, pred_boxes_XYXY, pred_densepose) written by "
             "detectron2 DensePose apply_net.py dump")


class DensePoseDumpError(ValueError):
    """A DensePose dump that cannot (or must not) be loaded, or whose content is not DensePose results."""


@dataclass
class DensePoseChartResult:
    """Local stand-in for ``densepose.structures.chart_result.DensePoseChartResult`` (per-box I and UV)."""

    labels: torch.Tensor
    uv: torch.Tensor


@dataclass
class DensePoseChartResultWithConfidences:
    """Local stand-in for ``densepose.structures.chart_result.DensePoseChartResultWithConfidences``."""

    labels: torch.Tensor
    uv: torch.Tensor
    sigma_1: Optional[torch.Tensor] = None
    sigma_2: Optional[torch.Tensor] = None
    kappa_u: Optional[torch.Tensor] = None
    kappa_v: Optional[torch.Tensor] = None
    fine_segm_confidence: Optional[torch.Tensor] = None
    coarse_segm_confidence: Optional[torch.Tensor] = None


class DensePoseResult:
    """Local stand-in for the legacy ``DensePoseResult`` of DensePose v0.1-v0.2.1 (2019-2020):
    ``densepose.structures.DensePoseResult`` (v0.1, v0.1.1), ``densepose.data.structures.DensePoseResult``
    (v0.1.2-v0.2.1); both pickle the same two attributes.

    ``results[i]`` is ``(shape, png)``: the ``[3, h, w]`` quantized IUV of box ``i`` (I, U, V) as a base64
    PNG, ``h x w`` being the box size of :func:`box_xywh_int`; ``boxes_xywh[i]`` is its float32 box.
    """

    def __init__(self, results=(), boxes_xywh=()):
        self.results = list(results)
        self.boxes_xywh = list(boxes_xywh)

    def __len__(self):
        return len(self.results)

    def decode(self, index):
        """The ``[3, h, w]`` uint8 IUV of box ``index`` (decoding the base64 PNG)."""
        shape, encoded = self.results[index]
        try:
            with Image.open(io.BytesIO(base64.decodebytes(encoded.encode("ascii")))) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as e:  # noqa: BLE001 - any decoding failure is a malformed result
            raise DensePoseDumpError(f"legacy DensePoseResult box {index}: cannot decode its PNG data ({e})") from e
        iuv = np.ascontiguousarray(arr.transpose(2, 0, 1))
        if tuple(iuv.shape) != tuple(shape):
            raise DensePoseDumpError(f"legacy DensePoseResult box {index}: PNG data is {iuv.shape}, "
                                     f"its recorded shape is {tuple(shape)}")
        return iuv


# ------------------------------------------------------------------------------------------------
# Restricted unpickling
# ------------------------------------------------------------------------------------------------


def _load_storage_bytes(data):
    """Safe replacement for ``torch.storage._load_from_bytes`` (which calls an unrestricted torch.load)."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"tensor storage must be bytes, got {type(data).__name__}")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes`` (latin-1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only accepted for latin-1 encoded bytes")
    return text.encode("latin1")


_RESULT_CLASSES = {
    ("densepose.structures.chart_result", "DensePoseChartResult"): DensePoseChartResult,
    ("densepose.structures.chart_result", "DensePoseChartResultWithConfidences"): DensePoseChartResultWithConfidences,
    ("densepose.structures", "DensePoseResult"): DensePoseResult,  # v0.1, v0.1.1
    ("densepose.data.structures", "DensePoseResult"): DensePoseResult,  # v0.1.2 - v0.2.1
}


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` (protocol 0/1 object creation) limited to the DensePose result classes."""
    if cls not in _RESULT_CLASSES.values() or base is not object or state is not None:
        raise pickle.UnpicklingError("copyreg._reconstructor is only accepted for DensePose result classes")
    return object.__new__(cls)


_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("builtins", "object"): object,
    **_RESULT_CLASSES,
}
_PY2_MODULES = {"copy_reg": "copyreg", "__builtin__": "builtins"}


def _forbidden_message(source, module, name):
    qualified = f"{module}.{name}"
    if module == "densepose" or module.startswith("densepose."):
        return (f"refusing to load {source}: it references '{qualified}', which is not a DensePose chart (IUV) "
                "result; only DensePoseChartResult, DensePoseChartResultWithConfidences and the legacy "
                "DensePoseResult can be imported (dump with an IUV DensePose model such as "
                "densepose_rcnn_R_50_FPN_s1x, not a continuous-surface-embedding one)")
    return (f"refusing to load {source}: it references '{qualified}', which is not a DensePose result class or "
            "torch tensor; only files written by detectron2 DensePose apply_net.py dump are accepted")


def _restricted_pickle_module(source):
    """A pickle-module-like namespace whose Unpickler resolves only the allow-listed globals."""

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            module = _PY2_MODULES.get(module, module)
            try:
                return _ALLOWED_GLOBALS[(module, name)]
            except (KeyError, TypeError):
                raise DensePoseDumpError(_forbidden_message(source, module, name)) from None

    def load(file, **kwargs):
        return RestrictedUnpickler(file, **kwargs).load()

    return types.SimpleNamespace(__name__="torchreid_dense_restricted_pickle", Unpickler=RestrictedUnpickler,
                                 load=load)


def _describe(obj):
    """'a dict', 'an int', 'a list of int, str', 'an empty list': what a dump holds, for error messages."""
    kind = type(obj).__name__
    if isinstance(obj, (list, tuple)):
        kinds = sorted({type(x).__name__ for x in obj})
        return f"a {kind} of {', '.join(kinds)}" if kinds else f"an empty {kind}"
    return f"{'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind}"


def _check_entry(entry, where):
    """Validate one per-image dict; returns the number of boxes."""
    if not isinstance(entry, dict):
        raise DensePoseDumpError(f"{where} holds {_describe(entry)} not DensePose results; expected {_EXPECTED}")
    missing = [k for k in _ENTRY_KEYS[1:3] if k not in entry]
    if missing:
        raise DensePoseDumpError(f"{where} lacks {', '.join(missing)}; expected {_EXPECTED}")
    scores, boxes = entry["scores"], entry["pred_boxes_XYXY"]
    if not isinstance(scores, (torch.Tensor, np.ndarray)) or scores.ndim != 1:
        raise DensePoseDumpError(f"{where}: scores must be a [N] tensor, got {_describe(scores)}")
    n = scores.shape[0]
    if not isinstance(boxes, (torch.Tensor, np.ndarray)) or tuple(boxes.shape) != (n, 4):
        raise DensePoseDumpError(f"{where}: pred_boxes_XYXY must be a [{n}, 4] tensor matching scores, got "
                                 f"{getattr(boxes, 'shape', _describe(boxes))}")
    results = entry.get("pred_densepose")
    if results is None:
        if n:
            raise DensePoseDumpError(f"{where} has {n} boxes but no pred_densepose; dump with a DensePose model")
        return n
    if isinstance(results, DensePoseResult):
        encoded = getattr(results, "results", None)
        ok = isinstance(encoded, list) and all(
            isinstance(r, (tuple, list)) and len(r) == 2 and isinstance(r[1], str) for r in encoded)
    else:
        ok = isinstance(results, (list, tuple)) and all(hasattr(r, "labels") and hasattr(r, "uv") for r in results)
    if not ok:
        raise DensePoseDumpError(f"{where}: pred_densepose holds {_describe(results)} not DensePose chart results")
    if len(results) != n:
        raise DensePoseDumpError(f"{where}: {len(results)} DensePose results for {n} boxes")
    return n


def load_dump(path):
    """Load an ``apply_net.py dump`` file without executing pickled code, and validate its structure.

    Both the ``pickle.dump`` files of older DensePose and the ``torch.save`` files of newer DensePose
    are accepted; tensors come back on the CPU.

    Returns:
        list of dicts with ``file_name``, ``scores``, ``pred_boxes_XYXY`` and ``pred_densepose``
        (local :class:`DensePoseChartResult`-like objects, or a legacy :class:`DensePoseResult`).

    Raises:
        DensePoseDumpError: naming ``path``, when the file references anything but torch tensors and
            the DensePose result classes (nothing it references is ever called), or holds anything
            else than DensePose results.
    """
    source = os.fspath(path)
    module = _restricted_pickle_module(source)

    def torch_load():
        return torch.load(source, map_location="cpu", weights_only=False, pickle_module=module)

    try:
        if zipfile.is_zipfile(source):
            data = torch_load()
        else:
            with open(source, "rb") as f:
                data = module.load(f)
            if isinstance(data, int) and data == torch.serialization.MAGIC_NUMBER:
                data = torch_load()  # legacy (non-zip) torch.save file
    except (DensePoseDumpError, FileNotFoundError):
        raise
    except Exception as e:  # noqa: BLE001 - any other failure means an unreadable file
        raise DensePoseDumpError(f"cannot read {source} as an apply_net.py dump ({type(e).__name__}: {e})") from e
    if not isinstance(data, list):
        raise DensePoseDumpError(f"{source} holds {_describe(data)} not DensePose results; expected {_EXPECTED}")
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise DensePoseDumpError(f"{source} holds {_describe(data)} not DensePose results; entry {i} is "
                                     f"{_describe(entry)} without a file_name; expected {_EXPECTED}")
        _check_entry(entry, f"{source} entry {i} ({entry['file_name']})")
    return data


# ------------------------------------------------------------------------------------------------
# Per-box results -> image IUV (pure functions, shared by the importer and the extractor)
# ------------------------------------------------------------------------------------------------


def _numpy(x, dtype=None):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def select_main_box(boxes_xyxy, scores, image_size, min_score=0.0):
    """Index of the person box that covers the crop best, or None (REFERENCE 1.1).

    Rule: maximise ``(area of the box clipped to the image) x score``; ties go to the lowest index.
    Boxes scoring below ``min_score`` or lying entirely outside the image are never chosen.

    Args:
        boxes_xyxy: ``[N, 4]`` boxes ``(x0, y0, x1, y1)`` in pixels (tensor or array).
        scores: ``[N]`` detection scores.
        image_size: ``(H, W)`` of the image.
        min_score: lowest score a box may have.
    """
    boxes = _numpy(boxes_xyxy, np.float64).reshape(-1, 4)
    scores = _numpy(scores, np.float64).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"select_main_box: {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    if boxes.shape[0] == 0:
        return None
    h, w = image_size
    width = np.clip(np.minimum(boxes[:, 2], w) - np.maximum(boxes[:, 0], 0), 0, None)
    height = np.clip(np.minimum(boxes[:, 3], h) - np.maximum(boxes[:, 1], 0), 0, None)
    merit = np.where(scores >= min_score, width * height * scores, 0.0)
    best = int(np.argmax(merit))
    return best if merit[best] > 0 else None


def box_xywh_int(box_xyxy):
    """``(x, y, w, h)`` integers of a box ``(x0, y0, x1, y1)`` as DensePose's converters compute them.

    DensePose converts XYXY to XYWH on the float32 box tensor (``BoxMode.convert``: ``w = x1 - x0`` in
    float32) and truncates every coordinate (``make_int_box``); a result covers ``max(w, 1) x max(h, 1)``.
    """
    x0, y0, x1, y1 = _numpy(box_xyxy, np.float32).reshape(4)
    w, h = np.float32(x1 - x0), np.float32(y1 - y0)  # float32 arithmetic, as on the box tensor
    return int(x0), int(y0), max(int(w), 1), max(int(h), 1)


def paste_box_iuv(box_iuv, box_xyxy, image_size):
    """Paste a per-box ``[3, h, w]`` uint8 IUV into an image-sized ``[3, H, W]`` canvas (module doc: pasting rule)."""
    box_iuv = _numpy(box_iuv)
    if box_iuv.dtype != np.uint8 or box_iuv.ndim != 3 or box_iuv.shape[0] != 3:
        raise ValueError(f"paste_box_iuv: expected a [3, h, w] uint8 IUV, got {box_iuv.dtype} {box_iuv.shape}")
    left, top, bw, bh = box_xywh_int(box_xyxy)
    if box_iuv.shape[1:] != (bh, bw):
        box_iuv = resize_iuv_nearest(box_iuv, (bh, bw))
    height, width = image_size
    canvas = np.zeros((3, height, width), dtype=np.uint8)
    ya, yb = max(top, 0), min(top + bh, height)
    xa, xb = max(left, 0), min(left + bw, width)
    if yb > ya and xb > xa:
        canvas[:, ya:yb, xa:xb] = box_iuv[:, ya - top:yb - top, xa - left:xb - left]
    return canvas


def result_to_iuv(labels, uv, box_xyxy, image_size):
    """Image-sized ``[3, H, W]`` uint8 IUV of one per-box DensePose result.

    Args:
        labels: ``[h, w]`` chart labels 0..24 covering the box (tensor or array).
        uv: ``[2, h, w]`` U and V in [0, 1].
        box_xyxy: the box ``(x0, y0, x1, y1)`` in image pixels.
        image_size: ``(H, W)`` of the image.

    Returns:
        np.uint8 ``[3, H, W]``: quantized with :func:`~torchreid_dense.dense.iuv.quantize_iuv`, pasted
        with :func:`paste_box_iuv`; zero outside the box.
    """
    labels, uv = _numpy(labels), _numpy(uv, np.float32)
    if labels.ndim != 2 or uv.shape != (2,) + labels.shape:
        raise ValueError(f"a DensePose chart result has labels [h, w] and uv [2, h, w], got {labels.shape} and "
                         f"{uv.shape}")
    return paste_box_iuv(quantize_iuv(labels.astype(np.int64), uv[0], uv[1]), box_xyxy, image_size)


def dump_entry_to_iuv(entry, image_size, min_score=0.0):
    """Image-sized IUV of one dump entry's main box (:func:`select_main_box`), or None with no detection."""
    name = entry.get("file_name") if isinstance(entry, dict) else None
    _check_entry(entry, f"DensePose entry {name}" if name else "DensePose entry")
    index = select_main_box(entry["pred_boxes_XYXY"], entry["scores"], image_size, min_score=min_score)
    if index is None:
        return None
    results, box = entry["pred_densepose"], entry["pred_boxes_XYXY"][index]
    if isinstance(results, DensePoseResult):
        return paste_box_iuv(results.decode(index), box, image_size)
    return result_to_iuv(results[index].labels, results[index].uv, box, image_size)


def instances_to_iuv(instances, chart_results, image_size, min_score=0.0):
    """Image-sized IUV from detectron2 model outputs, or None with no detection.

    Args:
        instances: detectron2 ``Instances`` (anything with ``scores`` ``[N]`` and ``pred_boxes.tensor``
            ``[N, 4]``).
        chart_results: the N per-box chart results (``labels``, ``uv``) that DensePose's
            ``DensePoseResultExtractor`` returns for ``instances`` (None or empty with no detection).
        image_size: ``(H, W)`` of the image.
    """
    entry = {
        "scores": instances.scores,
        "pred_boxes_XYXY": instances.pred_boxes.tensor,
        "pred_densepose": list(chart_results) if chart_results is not None else [],
    }
    return dump_entry_to_iuv(entry, image_size, min_score=min_score)


# ------------------------------------------------------------------------------------------------
# Writing sidecars (one loop for both tools)
# ------------------------------------------------------------------------------------------------


def list_dataset_images(dataset_dir):
    """Sorted paths of the ``.jpg``/``.jpeg``/``.png`` images under ``dataset_dir`` (sidecar folders excluded)."""
    dataset_dir = osp.abspath(os.fspath(dataset_dir))
    found = []
    for root, dirs, files in os.walk(dataset_dir):
        if root == dataset_dir:
            dirs[:] = [d for d in dirs if d not in SIDECAR_KINDS]
        dirs.sort()
        found.extend(osp.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


def write_densepose_sidecars(dataset_dir, image_paths, estimate_iuv, overwrite=False, progress=True,
                             desc="densepose", errors=()):
    """Write the ``densepose`` sidecar (IUV PNG) of every image; resumable and atomic.

    Images whose sidecar exists are skipped unless ``overwrite``. Images with no detection get no
    file (a stale one is removed when overwriting) and are listed, relative to ``dataset_dir``, in
    ``<dataset_dir>/densepose/no_detection.txt`` (rewritten by every run; they are retried next run).

    Args:
        dataset_dir: the data set folder.
        image_paths: images under ``dataset_dir``.
        estimate_iuv: ``f(image_path, (H, W)) -> [3, H, W] uint8 IUV or None`` (no detection).
        overwrite: rewrite existing sidecars.
        progress: show a tqdm progress bar.
        errors: exception classes of ``estimate_iuv`` that mark one image's input as bad: recorded and
            skipped (nothing written for it), the others still written.

    Returns:
        dict with ``total``, ``written``, ``skipped``, ``no_detection`` (list of relative paths),
        ``no_detection_file`` and ``bad`` (list of ``(relative path, problem)``).
    """
    dataset_dir = osp.abspath(os.fspath(dataset_dir))
    image_paths = list(image_paths)
    written, skipped, no_detection, bad = 0, 0, [], []
    for image_path in tqdm(image_paths, desc=desc, unit="img", disable=not progress):
        out = sidecar_path(dataset_dir, image_path, "densepose")
        if not overwrite and osp.exists(out):
            skipped += 1
            continue
        with Image.open(image_path) as im:
            width, height = im.size
        rel = osp.relpath(osp.abspath(image_path), dataset_dir).replace(os.sep, "/")
        try:
            iuv = estimate_iuv(image_path, (height, width))
        except tuple(errors) as e:
            bad.append((rel, str(e)))
            continue
        if iuv is None:
            no_detection.append(rel)
            with contextlib.suppress(FileNotFoundError):
                os.remove(out)
            continue
        write_iuv(out, iuv)
        written += 1
    listing = osp.join(sidecar_root(dataset_dir, "densepose"), NO_DETECTION_FILE)
    with atomic_write(listing, "w") as f:
        f.write("".join(p + "\n" for p in no_detection))
    return {"total": len(image_paths), "written": written, "skipped": skipped, "no_detection": no_detection,
            "no_detection_file": listing, "bad": bad}


def format_summary(summary):
    """One human-readable paragraph for a :func:`write_densepose_sidecars` summary."""
    lines = [f"{summary['total']} images: {summary['written']} IUV maps written, {summary['skipped']} skipped "
             f"(already there), {len(summary['no_detection'])} with no detection"]
    if summary["no_detection"]:
        shown = summary["no_detection"][:10]
        more = len(summary["no_detection"]) - len(shown)
        lines += ["  " + p for p in shown] + ([f"  ... and {more} more"] if more else [])
        lines.append(f"the full list is in {summary['no_detection_file']}")
    if summary.get("bad"):
        lines.append(f"{len(summary['bad'])} images not imported, their DensePose files are bad (fix or delete them "
                     "and run again; finished sidecars are kept):")
        lines += [f"  {rel}: {problem}" for rel, problem in summary["bad"]]
    return "\n".join(lines)


def _inside(path, root):
    rel = osp.relpath(path, root)
    return not (rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep) or osp.isabs(rel))


def _resolve_image(file_name, dataset_dir, images_root, where):
    """Absolute path under ``dataset_dir`` of a dump's ``file_name`` (relative names are joined to ``images_root``)."""
    path = osp.abspath(osp.join(images_root, file_name))
    if not _inside(path, dataset_dir):
        real = osp.realpath(path)
        real_root = osp.realpath(dataset_dir)
        if not _inside(real, real_root):
            raise DensePoseDumpError(
                f"{where}: image {path} is not inside the data set directory {dataset_dir}; sidecars are written "
                "under the data set directory, so import the dump into the data set it was computed on "
                "(relative file names are resolved against --images-root, default the data set directory)")
        path = osp.join(dataset_dir, osp.relpath(real, real_root))
    if not osp.isfile(path):
        raise DensePoseDumpError(
            f"{where}: image {path} does not exist; relative file names are resolved against --images-root "
            f"(now {images_root}): pass the directory apply_net.py was run from")
    return path


def import_dump(dump_path, dataset_dir, images_root=None, overwrite=False, progress=True, min_score=0.0):
    """Write one IUV sidecar per image of an ``apply_net.py dump`` file (the ``import_densepose`` tool).

    Each entry's ``file_name`` is used as is when absolute, else joined to ``images_root`` (default
    ``dataset_dir``: the folder apply_net.py was run from for relative inputs); the image must lie
    under ``dataset_dir``. Every entry is checked before anything is written.

    Returns:
        the summary dict of :func:`write_densepose_sidecars`.
    """
    dump_path = os.fspath(dump_path)
    dataset_dir = osp.abspath(os.fspath(dataset_dir))
    if not osp.isdir(dataset_dir):
        raise DensePoseDumpError(f"data set directory {dataset_dir} does not exist")
    images_root = osp.abspath(os.fspath(images_root)) if images_root is not None else dataset_dir
    entries = load_dump(dump_path)
    by_path = {}
    for i, entry in enumerate(entries):
        where = f"{dump_path} entry {i} ({entry['file_name']})"
        path = _resolve_image(entry["file_name"], dataset_dir, images_root, where)
        if path in by_path:
            raise DensePoseDumpError(f"{where}: image {path} appears twice in the dump")
        by_path[path] = entry

    def estimate(image_path, image_size):
        return dump_entry_to_iuv(by_path[image_path], image_size, min_score=min_score)

    return write_densepose_sidecars(dataset_dir, list(by_path), estimate, overwrite=overwrite, progress=progress,
                                    desc="import densepose")
