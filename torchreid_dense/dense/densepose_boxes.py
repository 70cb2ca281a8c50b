"""Per-box DensePose results -> image-sized IUV (pure functions, shared by the importer and the extractor).

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
"""
import numpy as np
import torch

from .densepose_dump import check_entry
from .densepose_results import DensePoseResult
from .iuv import quantize_iuv, resize_iuv_nearest

__all__ = ["DEFAULT_MIN_SCORE", "select_main_box", "box_xywh_int", "paste_box_iuv", "result_to_iuv",
           "dump_entry_to_iuv", "instances_to_iuv", "main_box_iuv"]

# The default detection score threshold of both DensePose tools (import and extract), one value so that both
# paths give the same sidecars: ``apply_net.py dump`` keeps boxes down to the config's SCORE_THRESH_TEST (0.05),
# so an imported dump filtered at 0.8 equals a direct extraction at 0.8. Why 0.8: it is what ``apply_net.py show``
# draws by default, and an image without a box gets the documented mean-initialised DSAP fallback
# (``dsap_valid`` False), while a wrong low-score box would feed a wrong body-part layout to the model.
DEFAULT_MIN_SCORE = 0.8


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
    check_entry(entry, f"DensePose entry {name}" if name else "DensePose entry")
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


def main_box_iuv(boxes_xyxy, scores, image_size, box_result, min_score=0.0):
    """Image-sized IUV of the main box (:func:`select_main_box`), converting only that box; None with no detection.

    Args:
        boxes_xyxy: ``[N, 4]`` detected boxes in image pixels.
        scores: ``[N]`` their scores.
        image_size: ``(H, W)`` of the image.
        box_result: ``f(index) -> (labels [h, w], uv [2, h, w])``, the chart result of box ``index`` (called once,
            for the main box only: DensePose's per-box conversion is the costly part).
        min_score: lowest score a box may have.
    """
    index = select_main_box(boxes_xyxy, scores, image_size, min_score=min_score)
    if index is None:
        return None
    labels, uv = box_result(index)
    return result_to_iuv(labels, uv, _numpy(boxes_xyxy, np.float32).reshape(-1, 4)[index], image_size)
