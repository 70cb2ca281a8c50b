"""The export formats by name, and the check of an exported file against PyTorch."""
import collections

import torch

from .graph import inference_graph
from .onnx import export_onnx, onnx_runner, onnx_signature
from .torchscript import export_torchscript, torchscript_runner, torchscript_signature

__all__ = ["FORMATS", "ExportCheckError", "format_spec", "export_model", "compare_export", "check_export",
           "exported_signature"]


class ExportCheckError(RuntimeError):
    """The exported model's output does not have the shape of PyTorch's output for the same batch."""


_Format = collections.namedtuple("_Format", ["export", "runner", "signature", "suffix", "options"])

# Export format name -> how to write, run and describe it; ``options``: the keyword arguments of
# its export function that :func:`export_model` passes on.
FORMATS = {
    "onnx": _Format(export_onnx, onnx_runner, onnx_signature, ".onnx", ("opset",)),
    "torchscript": _Format(export_torchscript, torchscript_runner, torchscript_signature, ".pt", ()),
}


def format_spec(name):
    """The :data:`FORMATS` entry of ``name``; an unknown name raises a ValueError listing the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown export format '{name}'; choose one of {sorted(FORMATS)}") from None


def export_model(model, path, format, height, width, **options):
    """Export in ``format`` (a key of :data:`FORMATS`) with a dynamic batch axis; returns ``path``.

    ``options`` (e.g. ``opset=17``) go to the format's export function when it takes them.
    """
    spec = format_spec(format)
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
    run = format_spec(format).runner(path)
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
    return format_spec(format).signature(path, height, width)
