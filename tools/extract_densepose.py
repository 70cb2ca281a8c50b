#!/usr/bin/env python
"""Run detectron2 DensePose over a data set folder and write its IUV sidecars.

Every ``.jpg``/``.jpeg``/``.png`` under ``--dataset-dir`` (except the sidecar folders) gets
``<dataset_dir>/densepose/<rel>/<stem>.png``, converted exactly as ``tools/import_densepose.py``
does (same main-box rule, same pasting). Needs detectron2 and its DensePose project (see
INSTALL_HINT); without them, run ``apply_net.py dump`` elsewhere and import the dump instead.

Examples::

    python tools/extract_densepose.py --dataset-dir data/market1501 \
        --config detectron2/projects/DensePose/configs/densepose_rcnn_R_50_FPN_s1x.yaml \
        --weights https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl
"""
import argparse
import os.path as osp
import sys

from torchreid_dense.dense.densepose import (format_summary, instances_to_iuv, list_dataset_images,
                                             write_densepose_sidecars)

INSTALL_HINT = """\
tools/extract_densepose.py needs detectron2 and its DensePose project, which are not on PyPI. Install them with
    pip install 'git+https://github.com/facebookresearch/detectron2.git'
    pip install 'git+https://github.com/facebookresearch/detectron2@main#subdirectory=projects/DensePose'
Configs and weights (e.g. densepose_rcnn_R_50_FPN_s1x.yaml with model_final_162be9.pkl) are listed in the model zoo:
    https://github.com/facebookresearch/detectron2/blob/main/projects/DensePose/doc/DENSEPOSE_IUV.md#ModelZoo
Without detectron2 on this machine: run `apply_net.py dump` where it is installed and import the dump here with
    python tools/import_densepose.py --dump results.pkl --dataset-dir DIR"""


def build_estimator(config, weights, device="cuda", min_score=0.8):
    """``f(image_path, (H, W)) -> IUV or None`` running DensePose; imports detectron2 lazily.

    Raises:
        SystemExit: with INSTALL_HINT when detectron2 or DensePose is not installed.
    """
    try:
        import torch
        from densepose import add_densepose_config
        from densepose.vis.extractor import DensePoseResultExtractor
        from detectron2.config import get_cfg
        from detectron2.data.detection_utils import read_image
        from detectron2.engine.defaults import DefaultPredictor
    except ImportError as e:
        raise SystemExit(f"{INSTALL_HINT}\n(import failed: {e})") from None
    cfg = get_cfg()
    add_densepose_config(cfg)
    cfg.merge_from_file(config)
    cfg.MODEL.WEIGHTS = weights
    cfg.MODEL.DEVICE = device
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = min_score
    cfg.freeze()
    predictor = DefaultPredictor(cfg)
    extractor = DensePoseResultExtractor()

    def estimate(image_path, image_size):
        image = read_image(image_path, format="BGR")  # DefaultPredictor expects BGR
        with torch.no_grad():
            instances = predictor(image)["instances"]
        extracted = extractor(instances)
        return instances_to_iuv(instances, extracted[0] if extracted is not None else None, image_size,
                                min_score=min_score)

    return estimate


def build_parser():
    """Command-line arguments of the extractor."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset-dir", required=True, help="data set folder; sidecars go to <dir>/densepose/")
    parser.add_argument("--config", required=True, help="DensePose config, e.g. densepose_rcnn_R_50_FPN_s1x.yaml")
    parser.add_argument("--weights", required=True, help="model weights: URL or local path")
    parser.add_argument("--device", default="cuda", help="torch device (default: cuda)")
    parser.add_argument("--min-score", type=float, default=0.8,
                        help="detection score threshold (apply_net.py's default 0.8)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite sidecars that already exist")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv=None):
    """Run the extractor; returns the summary dict."""
    args = build_parser().parse_args(argv)
    if not osp.isdir(args.dataset_dir):
        raise SystemExit(f"extract_densepose: error: data set directory {args.dataset_dir} does not exist")
    estimate = build_estimator(args.config, args.weights, device=args.device, min_score=args.min_score)
    images = list_dataset_images(args.dataset_dir)
    summary = write_densepose_sidecars(args.dataset_dir, images, estimate, overwrite=args.overwrite,
                                       progress=not args.no_progress, desc="extract densepose")
    print(format_summary(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
