"""Export the inference graph of a re-ID model to ONNX or TorchScript, and check it against PyTorch.

Only what runs at test time is exported: the MF-Stream of DSA-reID (Sec. 3.2.4: the DSAG-Stream
is dropped at inference), the SA-Enc of SAN (Sec. 3.2: the SA-Dec is a training-time aid), and
for stock torchreid models the model itself in eval mode (which returns the feature, not the
logits). The exported graph takes ``images [batch, 3, H, W]`` (normalised like torchreid's
loaders) and returns ``features [batch, D]``, with a dynamic batch axis.

Examples::

    model = torchreid.models.build_model('dsa_reid_r18', num_classes=751, pretrained=False)
    export_onnx(model, 'dsa.onnx', height=256, width=128)
    assert check_export(model, 'dsa.onnx', 'onnx', 256, 128) < 1e-4

``tools/export.py`` is the command line around :func:`export_from_config`.
"""
import collections
import contextlib
import os.path as osp
import warnings

import torch

from .utils.io import atomic_write

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "BATCH_AXIS",
    "FORMATS",
    "ExportCheckError",
    "inference_graph",
    "export_onnx",
    "export_torchscript",
    "export_model",
    "compare_export",
    "check_export",
    "exported_signature",
    "read_state_dict",
    "infer_num_classes",
    "load_inference_weights",
    "export_from_config",
]

INPUT_NAME = "images"
OUTPUT_NAME = "features"
BATCH_AXIS = "batch"

# Batch size of the example input that traces the graph: not 1, so that no exporter can mistake
# the batch axis for a broadcastable constant.
_TRACE_BATCH = 2


class ExportCheckError(RuntimeError):
    """The exported model's output does not have the shape of PyTorch's output for the same batch."""


def inference_graph(model):
    """The module to export: ``model.inference_module()`` when the model has one, else the model.

    The model is put in eval mode (the graph shares its parameters, so both are). Stock torchreid
    models return their feature in eval mode, so they are exported whole.

    Args:
        model (nn.Module): a torchreid or torchreid_dense model.

    Returns:
        nn.Module: ``images [B, 3, H, W] -> features [B, D]``, in eval mode.
    """
    model.eval()
    if getattr(model, "eval_needs_dsap", False):
        raise ValueError(
            f"{type(model).__name__} is configured with a fused test feature (dsa.feature "
            f"'{getattr(model, 'feature', '?')}'), which needs DSAP-images at test time; only the "
            "single-input MF-Stream graph is exported. Set dsa.feature mf (the paper's inference "
            "feature, Sec. 3.2.4) to export it."
        )
    inference_module = getattr(model, "inference_module", None)
    graph = inference_module() if callable(inference_module) else model
    return graph.eval()


@contextlib.contextmanager
def _quiet_torchscript():
    """Silence torch's FutureWarning that TorchScript is deprecated: exporting it is what is asked for."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated", category=FutureWarning)
        yield


def _example_input(height, width, batch=_TRACE_BATCH):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, int(height), int(width), generator=generator)


def export_onnx(model, path, height, width, opset=17, dynamic_batch=True):
    """Write the inference graph of ``model`` as a self-contained ONNX file (atomically).

    Args:
        model (nn.Module): the model (its inference graph is exported, see :func:`inference_graph`).
        path (str): output file.
        height, width (int): input image size.
        opset (int): ONNX opset version.
        dynamic_batch (bool): make the batch axis of input and output dynamic (``'batch'``).

    Returns:
        str: ``path``.
    """
    graph = inference_graph(model)
    axes = {INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}} if dynamic_batch else None
    with atomic_write(path) as f, warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        # dynamo=False: torch 2.14 defaults to the torch.export-based exporter, which on these
        # models cannot produce opset 17 (its version converter fails on the Reduce/Squeeze axes
        # and leaves opset 18), stores the weights in a separate .onnx.data file, and takes about
        # 5x longer; the TorchScript-based exporter writes one self-contained file at the opset
        # asked for, and its output is checked against PyTorch by check_export.
        torch.onnx.export(
            graph,
            (_example_input(height, width),),
            f,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=int(opset),
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def export_torchscript(model, path, height, width):
    """Write the inference graph of ``model`` as TorchScript (``torch.jit.trace``), atomically.

    Tracing records the tensor operations only, so the model's Python control flow (branch
    selection, dict outputs) is resolved once; the batch axis stays dynamic because no operation
    of these graphs depends on the batch size as a Python number.

    Returns:
        str: ``path``.
    """
    graph = inference_graph(model)
    with _quiet_torchscript(), torch.no_grad():
        traced = torch.jit.trace(graph, (_example_input(height, width),), check_trace=False)
    with _quiet_torchscript(), atomic_write(path) as f:
        torch.jit.save(traced, f)
    return path


def _onnx_runner(path):
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {input_name: x.numpy()})[0])


def _onnx_signature(path, height, width):
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return {
        "inputs": [(i.name, list(i.shape)) for i in session.get_inputs()],
        "outputs": [(o.name, list(o.shape)) for o in session.get_outputs()],
    }


def _torchscript_runner(path):
    with _quiet_torchscript():
        module = torch.jit.load(path, map_location="cpu")
    module.eval()

    def run(x):
        with torch.no_grad():
            return module(x)

    return run


def _torchscript_signature(path, height, width):
    output = _torchscript_runner(path)(_example_input(height, width, batch=1))
    return {
        "inputs": [(INPUT_NAME, [BATCH_AXIS, 3, int(height), int(width)])],
        "outputs": [(OUTPUT_NAME, [BATCH_AXIS] + list(output.shape[1:]))],
    }


_Format = collections.namedtuple("_Format", ["export", "runner", "signature", "suffix", "options"])

# Export format name -> how to write, run and describe it; ``options``: the keyword arguments of
# its export function that :func:`export_model` passes on.
FORMATS = {
    "onnx": _Format(export_onnx, _onnx_runner, _onnx_signature, ".onnx", ("opset",)),
    "torchscript": _Format(export_torchscript, _torchscript_runner, _torchscript_signature, ".pt", ()),
}


def _format(name):
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown export format '{name}'; choose one of {sorted(FORMATS)}") from None


def export_model(model, path, format, height, width, **options):
    """Export in ``format`` (a key of :data:`FORMATS`) with a dynamic batch axis; returns ``path``.

    ``options`` (e.g. ``opset=17``) go to the format's export function when it takes them.
    """
    spec = _format(format)
    return spec.export(model, path, height, width, **{k: v for k, v in options.items() if k in spec.options})


def compare_export(model, path, format, height, width, batch_sizes=(1, 3), seed=0):
    """Run the exported file and PyTorch on the same random inputs and measure how far apart they are.

    ONNX files run in onnxruntime (CPUExecutionProvider), TorchScript files through
    ``torch.jit.load``; each batch size is a separate random batch, so a fixed batch axis fails.

    Args:
        model (nn.Module): the PyTorch model that was exported.
        path (str): the exported file.
        format (str): ``'onnx'`` or ``'torchscript'``.
        height, width (int): input image size.
        batch_sizes (tuple of int): batch sizes to run.
        seed (int): seed of the random inputs.

    Returns:
        dict: ``max_abs_diff`` (max |exported - PyTorch| over all batches and feature entries) and
        ``max_abs_feature`` (max |PyTorch feature|, the scale the difference is relative to).
    """
    graph = inference_graph(model)
    run = _format(format).runner(path)
    generator = torch.Generator().manual_seed(seed)
    worst, scale = 0.0, 0.0
    for batch in batch_sizes:
        x = torch.randn(int(batch), 3, int(height), int(width), generator=generator)
        with torch.no_grad():
            expected = graph(x)
        got = run(x)
        if tuple(got.shape) != tuple(expected.shape):
            raise ExportCheckError(
                f"{path}: the exported model returns {tuple(got.shape)} for a batch of {batch}, "
                f"PyTorch returns {tuple(expected.shape)}"
            )
        worst = max(worst, (got.float() - expected.float()).abs().max().item())
        scale = max(scale, expected.abs().max().item())
    return {"max_abs_diff": worst, "max_abs_feature": scale}


def check_export(model, path, format, height, width, batch_sizes=(1, 3), seed=0):
    """Largest absolute difference between the exported model and PyTorch on random inputs.

    See :func:`compare_export` for the arguments.

    Returns:
        float: max |exported - PyTorch| over all batches and feature entries.
    """
    return compare_export(model, path, format, height, width, batch_sizes, seed)["max_abs_diff"]


def exported_signature(path, format, height, width):
    """Input and output names and shapes of an exported file (``'batch'`` marks the dynamic axis).

    Returns:
        dict: ``{'inputs': [(name, shape)], 'outputs': [(name, shape)]}``.
    """
    return _format(format).signature(path, height, width)


def read_state_dict(path):
    """The model weights of a checkpoint file (torchreid's ``{'state_dict': ...}`` or a bare state dict).

    Loaded with ``weights_only=True``; a ``module.`` prefix (DataParallel) is removed.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f"weights file '{path}' does not exist; pass a checkpoint written by tools/main.py "
            "(e.g. log/<run>/model/model.pth.tar-<epoch>) to --weights"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"weights file '{path}' is not a readable PyTorch checkpoint: {err}") from err
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(
            f"weights file '{path}' holds no state dict (expected {{'state_dict': {{name: tensor}}}} "
            "as written by tools/main.py, or {name: tensor})"
        )
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def infer_num_classes(cfg, state_dict):
    """The number of identities the checkpoint's classifier was trained for, or None.

    The config's model is built (on the meta device, no memory) for 1 and for 2 classes; the
    tensors whose shapes change between the two are the classifier's, and each of their sizes is
    ``a * num_classes + b``. The checkpoint's sizes then give ``num_classes`` when all agree.
    """
    from .models import build_model_from_config

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
    from .models import build_model_from_config

    spec = _format(format)
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

