#!/usr/bin/env python
"""Import a detectron2 DensePose ``apply_net.py dump`` file as IUV sidecars, without detectron2.

For every image of the dump, the main person box (largest clipped area x score) is pasted into an
image-sized IUV map written to ``<dataset_dir>/densepose/<rel>/<stem>.png``. The dump is read with a
restricted unpickler: nothing it references beyond torch tensors and DensePose results is run.

Examples::

    # on a machine with detectron2, from the data set folder:
    #   python apply_net.py dump densepose_rcnn_R_50_FPN_s1x.yaml model_final_162be9.pkl \
    #       "bounding_box_train/*.jpg" --output results.pkl
    python tools/import_densepose.py --dump results.pkl --dataset-dir data/market1501
"""
import argparse
import sys

from torchreid_dense.dense.densepose import DensePoseDumpError, format_summary, import_dump


def build_parser():
    """Command-line arguments of the importer."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dump", required=True, help="pickle written by DensePose apply_net.py dump")
    parser.add_argument("--dataset-dir", required=True, help="data set folder; sidecars go to <dir>/densepose/")
    parser.add_argument("--images-root", default=None,
                        help="folder relative file names of the dump are resolved against (the folder apply_net.py "
                             "was run from); default: --dataset-dir")
    parser.add_argument("--min-score", type=float, default=0.0, help="ignore boxes scoring below this")
    parser.add_argument("--overwrite", action="store_true", help="rewrite sidecars that already exist")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv=None):
    """Run the importer; returns the summary dict."""
    args = build_parser().parse_args(argv)
    try:
        summary = import_dump(args.dump, args.dataset_dir, images_root=args.images_root, overwrite=args.overwrite,
                              progress=not args.no_progress, min_score=args.min_score)
    except (DensePoseDumpError, FileNotFoundError) as e:
        raise SystemExit(f"import_densepose: error: {e}") from None
    print(format_summary(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
