"""Reading ``apply_net.py dump`` files safely (REFERENCE 1.1).

A dump is a pickle (``pickle.dump`` in older DensePose, ``torch.save`` in newer): a list with one
dict per image, keys ``file_name``, ``scores`` ``[N]``, ``pred_boxes_XYXY`` ``[N, 4]`` and
``pred_densepose`` (one chart result per box, each with ``labels`` ``[h, w]`` and ``uv``
``[2, h, w]`` at the box's resolution). Unpickling is code execution, so :func:`load_dump` uses an
unpickler that resolves only torch's tensor-rebuilding functions and the DensePose result classes
(mapped onto the local stand-ins of :mod:`~torchreid_dense.dense.densepose_results`) and rejects every
other global before anything runs.
"""
import collections
import io
import os
import pickle
import types
import zipfile

import numpy as np
import torch
import torch._utils

from .densepose_results import (DensePoseChartResult, DensePoseChartResultWithConfidences, DensePoseDumpError,
                                DensePoseResult)

__all__ = ["load_dump", "check_entry"]

_ENTRY_KEYS = ("file_name", "scores", "pred_boxes_XYXY", "pred_densepose")
_EXPECTED = ("the list of per-image dicts (file_name, scores, pred_boxes_XYXY, pred_densepose) written by "
             "detectron2 DensePose apply_net.py dump")


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


def check_entry(entry, where):
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
        check_entry(entry, f"{source} entry {i} ({entry['file_name']})")
    return data
