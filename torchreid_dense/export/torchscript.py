"""TorchScript: export with ``torch.jit.trace``, run and describe with ``torch.jit.load``."""
import contextlib
import warnings

import torch

from ..utils.io import atomic_write
from .graph import BATCH_AXIS, INPUT_NAME, OUTPUT_NAME, example_input, inference_graph

__all__ = ["export_torchscript", "torchscript_runner", "torchscript_signature"]


@contextlib.contextmanager
def _quiet_torchscript():
    """Silence torch's FutureWarning that TorchScript is deprecated: exporting it is what is asked for."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated", category=FutureWarning)
        yield


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
        traced = torch.jit.trace(graph, (example_input(height, width),), check_trace=False)
    with _quiet_torchscript(), atomic_write(path) as f:
        torch.jit.save(traced, f)
    return path


def torchscript_runner(path):
    """``run(images) -> features`` of a TorchScript file (``torch.jit.load`` on the CPU, eval mode)."""
    with _quiet_torchscript():
        module = torch.jit.load(path, map_location="cpu")
    module.eval()

    def run(x):
        with torch.no_grad():
            return module(x)

    return run


def torchscript_signature(path, height, width):
    """Input and output names and shapes of a TorchScript file (the output's by running one image)."""
    output = torchscript_runner(path)(example_input(height, width, batch=1))
    return {
        "inputs": [(INPUT_NAME, [BATCH_AXIS, 3, int(height), int(width)])],
        "outputs": [(OUTPUT_NAME, [BATCH_AXIS] + list(output.shape[1:]))],
    }
