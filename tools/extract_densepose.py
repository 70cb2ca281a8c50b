#!/usr/bin/env python
"""Run detectron2 DensePose over a data set folder and write its IUV sidecars.

Every ``.jpg``/``.jpeg``/``.png`` under ``--dataset-dir`` (except the sidecar folders) gets
``<dataset_dir>/densepose/<rel>/<stem>.png``, converted exactly as ``tools/import_densepose.py`` does (same
main-box rule, same pasting, same default --min-score). Images are decoded in DataLoader workers (as torchreid
reads them: PIL, RGB, no EXIF turn) and run through the model in batches of images of one size, so the maps
are the same as one image at a time (DefaultPredictor's resizing and channel order). Resumable: existing
sidecars are kept unless --overwrite. Images without a person are listed in ``densepose/no_detection.txt``;
unreadable image files are listed with their problem in ``densepose/bad_files.txt`` and skipped, and the
exit status is then 1. Needs detectron2 and its DensePose project (see INSTALL_HINT); without them, run
``apply_net.py dump`` elsewhere and import the dump instead.

Examples::

    python tools/extract_densepose.py --dataset-dir reid-data/market1501 \
        --config detectron2/projects/DensePose/configs/densepose_rcnn_R_50_FPN_s1x.yaml \
        --weights https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl
"""
import argparse
import os.path as osp
import sys
import types

import numpy as np
import torch

from torchreid_dense.dense.densepose import (DEFAULT_MIN_SCORE, extract_densepose_sidecars, format_summary,
                                             list_dataset_images, main_box_iuv)
from torchreid_dense.utils.device import resolve_device

INSTALL_HINT = """\
tools/extract_densepose.py needs detectron2 and its DensePose project, which are not on PyPI. Build them from \
source (needs a C++ compiler; for a GPU, the CUDA toolkit of your torch build):
    git clone https://github.com/facebookresearch/detectron2 && pip install --no-build-isolation -e detectron2 && \
pip install --no-build-isolation --no-deps -e detectron2/projects/DensePose && pip install av
The configs are then in detectron2/projects/DensePose/configs/; which weights go with which config (e.g.
densepose_rcnn_R_50_FPN_s1x.yaml with model_final_162be9.pkl) is listed in the model zoo:
    https://github.com/facebookresearch/detectron2/blob/main/projects/DensePose/doc/DENSEPOSE_IUV.md#ModelZoo
Without detectron2 on this machine: run `apply_net.py dump` where it is installed and import the dump here with
    python tools/import_densepose.py --dump results.pkl --dataset-dir DIR"""

MIN_SCORE_HELP = (f"ignore person boxes scoring below this (default {DEFAULT_MIN_SCORE}, the same in "
                  "tools/import_densepose.py so both tools write the same maps: it is what `apply_net.py show` "
                  "draws, and an image without a box gets the mean-initialised DSAP fallback while a wrong "
                  "low-score box gives wrong body parts; `apply_net.py dump` keeps boxes down to the config's "
                  "SCORE_THRESH_TEST 0.05)")


def import_detectron2():
    """The detectron2 and DensePose names the extractor uses, imported lazily.

    Raises:
        SystemExit: with INSTALL_HINT when detectron2 or DensePose is not installed.
    """
    try:
        import detectron2.data.transforms as T
        from densepose import add_densepose_config
        from densepose.converters import ToChartResultConverter
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.config import get_cfg
        from detectron2.modeling import build_model
    except ImportError as e:
        raise SystemExit(f"{INSTALL_HINT}\n(import failed: {e})") from None
    return types.SimpleNamespace(T=T, add_densepose_config=add_densepose_config, get_cfg=get_cfg,
                                 build_model=build_model, DetectionCheckpointer=DetectionCheckpointer,
                                 ToChartResultConverter=ToChartResultConverter)


def densepose_config(config, device="cpu", min_score=DEFAULT_MIN_SCORE, opts=()):
    """The frozen detectron2 config of a DensePose ``.yaml`` for inference on ``device``.

    ``ROI_HEADS.SCORE_THRESH_TEST`` is set to ``min_score``: the detector then drops the boxes the main-box rule
    would ignore anyway, before the DensePose head runs on them. ``opts``: extra ``KEY VALUE`` overrides.
    """
    d2 = import_detectron2()
    if not osp.isfile(config):
        raise SystemExit(f"extract_densepose: error: config file {config} not found; the DensePose configs are in "
                         "detectron2/projects/DensePose/configs/ of the detectron2 clone "
                         "(e.g. densepose_rcnn_R_50_FPN_s1x.yaml)")
    cfg = d2.get_cfg()
    d2.add_densepose_config(cfg)
    cfg.merge_from_file(config)
    cfg.merge_from_list(list(opts))
    cfg.MODEL.DEVICE = device
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = min_score
    cfg.freeze()
    return cfg


def build_densepose_model(cfg, weights=None):
    """The DensePose R-CNN of ``cfg`` in eval mode on ``cfg.MODEL.DEVICE``, with ``weights`` (path or URL) loaded.

    ``weights=None`` keeps the random initialisation (benchmarks only).
    """
    d2 = import_detectron2()
    if weights is not None and "://" not in weights and not osp.isfile(weights):
        raise SystemExit(f"extract_densepose: error: weights file {weights} not found; pass a local .pkl/.pth or its "
                         "URL from the DensePose model zoo (see --help)")
    model = d2.build_model(cfg)
    model.eval()
    if weights is not None:
        d2.DetectionCheckpointer(model).load(weights)
    return model


class DensePoseInput:
    """RGB pixels -> the model's ``[3, H', W']`` uint8 input, as DefaultPredictor prepares an image: the config's
    channel order (INPUT.FORMAT) and ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST). Picklable (DataLoader)."""

    def __init__(self, cfg):
        d2 = import_detectron2()
        self.resize = d2.T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        self.bgr = cfg.INPUT.FORMAT == "BGR"

    def __call__(self, rgb):
        image = np.ascontiguousarray(rgb[:, :, ::-1] if self.bgr else rgb)
        image = self.resize.get_transform(image).apply_image(image)
        return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))


class DensePoseBatchPredictor:
    """Prepared images -> one image-sized IUV (or None) each: ``model([...])`` on the batch in eval mode without
    gradients, then per image the main box only is converted to a chart result (DensePose's converter) and pasted
    (:func:`~torchreid_dense.dense.densepose_boxes.main_box_iuv`)."""

    def __init__(self, model, min_score=DEFAULT_MIN_SCORE):
        self.model = model
        self.min_score = min_score
        self.converter = import_detectron2().ToChartResultConverter

    def chart_result(self, instances, index):
        """``(labels, uv)`` of box ``index``, resampled to the box's size by DensePose's converter."""
        result = self.converter.convert(instances.pred_densepose[index], instances.pred_boxes[index])
        return result.labels, result.uv

    def image_iuv(self, instances, image_size):
        """The IUV of one image's detections (its main box), or None with no detection."""
        return main_box_iuv(instances.pred_boxes.tensor, instances.scores, image_size,
                            lambda index: self.chart_result(instances, index), min_score=self.min_score)

    def __call__(self, batch):
        inputs = [{"image": item["image"].float(), "height": item["height"], "width": item["width"]}
                  for item in batch]
        with torch.no_grad():
            outputs = self.model(inputs)
            return [self.image_iuv(out["instances"], (item["height"], item["width"]))
                    for out, item in zip(outputs, batch)]


def build_predictor(config, weights, device="cpu", min_score=DEFAULT_MIN_SCORE, opts=()):
    """``(predict_batch, prepare)`` for :func:`~torchreid_dense.dense.densepose_sidecars.extract_densepose_sidecars`."""
    cfg = densepose_config(config, device=device, min_score=min_score, opts=opts)
    return DensePoseBatchPredictor(build_densepose_model(cfg, weights), min_score=min_score), DensePoseInput(cfg)


def positive_int(minimum):
    """argparse type: an int of at least ``minimum``."""
    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def build_parser():
    """Command-line arguments of the extractor."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-dir", required=True, help="data set folder; sidecars go to <dir>/densepose/")
    parser.add_argument("--config", required=True,
                        help="DensePose config, e.g. detectron2/projects/DensePose/configs/"
                             "densepose_rcnn_R_50_FPN_s1x.yaml")
    parser.add_argument("--weights", required=True, help="model weights matching --config: URL or local path")
    parser.add_argument("--device", default=None,
                        help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda when torch finds a GPU, else cpu)")
    parser.add_argument("--batch-size", type=positive_int(1), default=8,
                        help="images per model call (default 8); lower it when the GPU runs out of memory; the "
                             "maps do not depend on it")
    parser.add_argument("--workers", type=positive_int(0), default=2,
                        help="DataLoader processes decoding images (default 2; 0: decode in this process)")
    parser.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE, help=MIN_SCORE_HELP)
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="detectron2 config overrides, as apply_net.py's --opts, e.g. TEST.DETECTIONS_PER_IMAGE 3")
    parser.add_argument("--overwrite", action="store_true", help="rewrite sidecars that already exist")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv=None):
    """Run the extractor; returns the summary dict (exit status 1 when some image files were bad)."""
    args = build_parser().parse_args(argv)
    if not osp.isdir(args.dataset_dir):
        raise SystemExit(f"extract_densepose: error: data set directory {args.dataset_dir} does not exist")
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        raise SystemExit(f"extract_densepose: error: {e}") from None
    why = "--device" if args.device else ("a CUDA GPU was found" if device == "cuda" else "no CUDA GPU found")
    print(f"extract_densepose: running DensePose on {device} ({why}), batches of {args.batch_size}", flush=True)
    predict_batch, prepare = build_predictor(args.config, args.weights, device=device, min_score=args.min_score,
                                             opts=args.opts)
    images = list_dataset_images(args.dataset_dir)
    try:
        summary = extract_densepose_sidecars(args.dataset_dir, images, predict_batch, prepare,
                                             batch_size=args.batch_size, workers=args.workers,
                                             overwrite=args.overwrite, progress=not args.no_progress)
    except torch.cuda.OutOfMemoryError:
        raise SystemExit(f"extract_densepose: error: out of GPU memory with --batch-size {args.batch_size}; run "
                         "again with a smaller --batch-size (finished sidecars are kept)") from None
    print(format_summary(summary, verb="processed"))
    if summary["bad"]:
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
