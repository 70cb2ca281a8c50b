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

Modules: :mod:`.graph` (what is exported, its input and output names), :mod:`.onnx` and
:mod:`.torchscript` (writing, running and describing each format), :mod:`.formats` (the format
table and the check against PyTorch), :mod:`.from_config` (a checkpoint and a config to a file).
``tools/export.py`` is the command line around :func:`export_from_config`.
"""
from .formats import FORMATS, ExportCheckError, check_export, compare_export, export_model, exported_signature
from .from_config import export_from_config, infer_num_classes, load_inference_weights, read_state_dict
from .graph import BATCH_AXIS, INPUT_NAME, OUTPUT_NAME, inference_graph
from .onnx import export_onnx
from .torchscript import export_torchscript

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
