#!/usr/bin/env python
"""Import DensePose output as IUV sidecars, without detectron2 or Caffe2.

Two inputs, each written to ``<dataset_dir>/densepose/<rel>/<stem>.png`` (resumable: existing sidecars are
kept unless --overwrite; images without a person are listed in ``densepose/no_detection.txt``; images whose
files are bad, unreadable images or DensePose files, are listed with their problem in ``densepose/bad_files.txt``
and skipped, and the exit status is then 1):

- ``--dump``: a detectron2 DensePose ``apply_net.py dump`` file (any version from v0.1). For every image the
  main person box (largest clipped area x score, among boxes scoring at least --min-score) is pasted into an
  image-sized IUV map, exactly as ``tools/extract_densepose.py`` does with the same default --min-score. The
  dump is read with a restricted unpickler: nothing it references beyond torch tensors and DensePose results
  is run.
- ``--legacy-iuv-dir``: the ``<stem>_IUV.png`` (+ optional ``<stem>_INDS.png``) files of the classic Caffe2
  DensePose ``infer_simple.py``, in a folder mirroring the data set's sub-folders; the main (largest)
  instance is kept, the others become background.

Examples::

    # on a machine with detectron2, from the data set folder:
    #   python apply_net.py dump densepose_rcnn_R_50_FPN_s1x.yaml model_final_162be9.pkl \
    #       "bounding_box_train/*.jpg" --output results.pkl
    python tools/import_densepose.py --dump results.pkl --dataset-dir data/market1501
    # Caffe2 DensePose outputs in iuv/Market-1501-v15.09.15/bounding_box_train/0002_c1s1_000451_03_IUV.png, ...
    python tools/import_densepose.py --legacy-iuv-dir iuv --dataset-dir data/market1501
"""
import argparse
import sys

from torchreid_dense.dense.densepose import DEFAULT_MIN_SCORE, DensePoseDumpError, format_summary, import_dump
from torchreid_dense.dense.densepose_caffe2 import LegacyIUVError, import_legacy_iuv


def build_parser():
    """Command-line arguments of the importer."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dump", help="pickle written by DensePose apply_net.py dump")
    source.add_argument("--legacy-iuv-dir",
                        help="folder of Caffe2 DensePose <stem>_IUV.png / <stem>_INDS.png files (infer_simple.py), "
                             "mirroring the data set's sub-folders")
    parser.add_argument("--dataset-dir", required=True, help="data set folder; sidecars go to <dir>/densepose/")
    parser.add_argument("--images-root", default=None,
                        help="folder relative file names of the dump are resolved against (the folder apply_net.py "
                             "was run from; --dump only); default: --dataset-dir")
    parser.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                        help=f"--dump only: ignore person boxes scoring below this (default {DEFAULT_MIN_SCORE}, the "
                             "same in tools/extract_densepose.py so both tools write the same maps: it is what "
                             "`apply_net.py show` draws, and an image without a box gets the mean-initialised DSAP "
                             "fallback while a wrong low-score box gives wrong body parts; `apply_net.py dump` "
                             "keeps boxes down to the config's SCORE_THRESH_TEST 0.05, so 0.05 or 0 keeps all)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite sidecars that already exist")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv=None):
    """Run the importer; returns the summary dict (exit status 1 when some DensePose files were bad)."""
    args = build_parser().parse_args(argv)
    try:
        if args.legacy_iuv_dir:
            summary = import_legacy_iuv(args.legacy_iuv_dir, args.dataset_dir, overwrite=args.overwrite,
                                        progress=not args.no_progress)
        else:
            summary = import_dump(args.dump, args.dataset_dir, images_root=args.images_root,
                                  overwrite=args.overwrite, progress=not args.no_progress, min_score=args.min_score)
    except (DensePoseDumpError, LegacyIUVError, FileNotFoundError) as e:
        raise SystemExit(f"import_densepose: error: {e}") from None
    print(format_summary(summary))
    if summary["bad"]:
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
