"""Export from a config and a checkpoint: the checkpoint's weights and number of classes, loaded into the
configured model, written in a format."""
import os.path as osp

import torch

from ..utils.checkpoint import read_model_state
from .formats import export_model, exported_signature, format_spec
from .graph import inference_graph

__all__ = ["read_state_dict", "infer_num_classes", "load_inference_weights", "export_from_config"]


def read_state_dict(path):
    """The model weights of a checkpoint file (torchreid's ``{'state_dict': ...}`` or a bare state dict).

    Loaded with ``weights_only=True``; a ``module.`` prefix (DataParallel) is removed
    (:func:`~torchreid_dense.utils.checkpoint.read_model_state`).
    """
    return read_model_state(path, "weights file", "; pass a checkpoint written by tools/main.py "
                            "(e.g. log/<run>/model/model.pth.tar-<epoch>) to --weights")[1]


def infer_num_classes(cfg, state_dict):
    """The number of identities the checkpoint's classifier was trained for, or None.

    The config's model is built (on the meta device, no memory) for 1 and for 2 classes; the
    tensors whose shapes change between the two are the classifier's, and each of their sizes is
    ``a * num_classes + b``. The checkpoint's sizes then give ``num_classes`` when all agree.
    """
    from ..models import build_model_from_config

    try:
        with torch.device("meta"):
            one = build_model_from_config(cfg, 1)[0].state_dict()
            two = build_model_from_config(cfg, 2)[0].state_dict()
    except (RuntimeError, NotImplementedError):
        return None  # a builder that needs real tensors: the caller falls back to --num-classes
    found = set()
    for key, t1 in one.items():
        t2 = two.get(key)
        if t2 is None or t1.shape == t2.shape or key not in state_dict:
            continue
        saved = state_dict[key].shape
        if len(saved) != len(t1.shape):
            return None
        for s1, s2, s in zip(t1.shape, t2.shape, saved):
            a, b = s2 - s1, 2 * s1 - s2
            if a and ((s - b) % a or (s - b) // a < 1):
                return None
            if a:
                found.add((s - b) // a)
    return found.pop() if len(found) == 1 else None


def load_inference_weights(model, state_dict, source="<state dict>"):
    """Load ``state_dict`` into ``model``, requiring every tensor of the inference graph.

    Tensors outside the inference graph (classifiers, DSAG-Stream, SA-Dec) are loaded when their
    shapes match and skipped otherwise: they are not exported.

    Returns:
        dict: ``{'loaded': [...], 'skipped': [...]}`` (model keys).
    """
    graph_tensors = {id(t) for t in inference_graph(model).state_dict(keep_vars=True).values()}
    model_state = model.state_dict(keep_vars=True)
    required = [k for k, t in model_state.items() if id(t) in graph_tensors]
    missing = [k for k in required if k not in state_dict]
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(model_state[k].shape)}"
        for k in required
        if k in state_dict and state_dict[k].shape != model_state[k].shape
    ]
    if missing or wrong:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if wrong:
            details.append(f"{len(wrong)} of another shape (checkpoint vs model, e.g. {wrong[:3]})")
        raise ValueError(
            f"weights file '{source}' does not fit the configured model {type(model).__name__}: of the "
            f"{len(required)} inference-graph tensors, " + "; ".join(details)
            + ". Pass the config file the checkpoint was trained with (model.name and its options)."
        )
    usable = {k: v for k, v in state_dict.items() if k in model_state and v.shape == model_state[k].shape}
    model.load_state_dict(usable, strict=False)
    return {"loaded": sorted(usable), "skipped": sorted(set(model_state) - set(usable))}


def export_from_config(cfg, weights, format, output=None, num_classes=None, opset=17):
    """Build ``cfg.model.name``, load ``weights``, export its inference graph and describe the result.

    Args:
        cfg (CfgNode): merged config (``model.*``, ``data.height``, ``data.width``, model options).
        weights (str): checkpoint file.
        format (str): ``'onnx'`` or ``'torchscript'``.
        output (str, optional): output file (default ``<weights dir>/<model.name><suffix>``).
        num_classes (int, optional): used when the checkpoint's classifier does not give it (else 1).
        opset (int): ONNX opset (ONNX only).

    Returns:
        dict: ``model`` (the loaded model), ``path``, ``format``, ``height``, ``width``,
        ``num_classes``, ``inputs``, ``outputs`` (see :func:`exported_signature`), ``skipped``
        (checkpoint-less model keys outside the graph).
    """
    from ..models import build_model_from_config

    spec = format_spec(format)
    state_dict = read_state_dict(weights)
    found = infer_num_classes(cfg, state_dict)
    classes = found or num_classes or 1
    model = build_model_from_config(cfg, classes)[0].cpu()
    loaded = load_inference_weights(model, state_dict, source=weights)
    height, width = int(cfg.data.height), int(cfg.data.width)
    path = output or osp.join(osp.dirname(osp.abspath(weights)), cfg.model.name + spec.suffix)
    export_model(model, path, format, height, width, opset=opset)
    signature = exported_signature(path, format, height, width)
    return {
        "model": model,
        "path": path,
        "format": format,
        "height": height,
        "width": width,
        "num_classes": classes,
        "skipped": loaded["skipped"],
        **signature,
    }
