"""Export a trained model's inference graph to ONNX or TorchScript and check it against PyTorch.

Usage::

    python tools/export.py --config-file configs/dsa_market.yaml \\
        --weights log/dsa_market/model/model.pth.tar-320 --format onnx [--output dsa.onnx] [KEY VALUE ...]

Only the test-time graph is exported (MF-Stream for DSA-reID, SA-Enc for SAN, the eval-mode model
for stock torchreid models), with a dynamic batch axis; the input size is ``data.height`` x
``data.width``. The exported file is run on random inputs at two batch sizes (onnxruntime for
ONNX) and compared with PyTorch; the exit status is 1 when the max abs difference exceeds
``--tolerance`` x max(1, max |feature|), 2 for a user error (missing weights file, config error, weights that do not fit).
The logic lives in :mod:`torchreid_dense.export`.
"""
import argparse
import sys

from torchreid_dense.config import ConfigKeyError, ConfigValueError
from torchreid_dense.engine.launch import load_config
from torchreid_dense.export import FORMATS, ExportCheckError, compare_export, export_from_config


def build_parser():
    """The command-line parser of ``tools/export.py``."""
    parser = argparse.ArgumentParser(
        description="Export the inference graph of a torchreid / torchreid_dense model and check it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config-file", type=str, default="", help="the YAML config the model was trained with")
    parser.add_argument("--weights", type=str, required=True, help="checkpoint file (state_dict)")
    parser.add_argument("--format", choices=sorted(FORMATS), required=True, help="export format")
    parser.add_argument("--output", type=str, default=None, help="output file (default: beside the weights)")
    parser.add_argument(
        "--num-classes", type=int, default=None,
        help="identities of the classifier when the checkpoint does not tell (the classifier is not exported)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    parser.add_argument(
        "--tolerance", type=float, default=1e-4,
        help="largest accepted max abs difference, per unit of feature scale: the check fails when "
        "max|exported - PyTorch| > tolerance * max(1, max|feature|)",
    )
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return parser


def main(argv=None):
    """Export and check; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        # The weights come from the checkpoint: never download ImageNet weights to overwrite them.
        cfg = load_config(args.config_file, list(args.opts or []) + ["model.pretrained", "False"])
        result = export_from_config(
            cfg, args.weights, args.format, output=args.output, num_classes=args.num_classes, opset=args.opset
        )
    except (ConfigKeyError, ConfigValueError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        check = compare_export(result["model"], result["path"], args.format, result["height"], result["width"])
    except ExportCheckError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"exported {cfg.model.name} ({result['num_classes']} classes; the classifier is not exported) "
          f"as {args.format}: {result['path']}")
    for kind in ("inputs", "outputs"):
        for name, shape in result[kind]:
            print(f"{kind[:-1]:6s} {name} {shape}")
    diff, scale = check["max_abs_diff"], check["max_abs_feature"]
    # float32 rounding grows with the feature's magnitude (an untrained ResNet-50 gives |f| ~ 200):
    # the tolerance is absolute for features up to 1 and relative beyond.
    allowed = args.tolerance * max(1.0, scale)
    print(f"max abs difference vs PyTorch: {diff:.3e} (max |feature| {scale:.3g}, allowed {allowed:.3e})")
    if not diff <= allowed:
        print(f"error: the exported model differs from PyTorch by {diff:.3e} > {allowed:.3e}; "
              f"do not deploy {result['path']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
