"""ONNX: export with the TorchScript-based exporter, run and describe in onnxruntime (CPUExecutionProvider)."""
import warnings

import torch

from ..utils.io import atomic_write
from .graph import BATCH_AXIS, INPUT_NAME, OUTPUT_NAME, example_input, inference_graph

__all__ = ["export_onnx", "onnx_runner", "onnx_signature"]


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
            (example_input(height, width),),
            f,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=int(opset),
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def onnx_runner(path):
    """``run(images) -> features`` of an ONNX file in onnxruntime (CPUExecutionProvider)."""
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {input_name: x.numpy()})[0])


def onnx_signature(path, height, width):
    """Input and output names and shapes of an ONNX file, as onnxruntime reads them."""
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return {
        "inputs": [(i.name, list(i.shape)) for i in session.get_inputs()],
        "outputs": [(o.name, list(o.shape)) for o in session.get_outputs()],
    }
