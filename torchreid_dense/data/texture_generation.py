"""``tools/generate_textures.py``: SAN's pseudo full textures (SAN, AAAI 2020, Sec. 3.1) for every image of a data set.

``python tools/generate_textures.py --config-file configs/san_pg.yaml --weights san_pg.pth --dataset market1501``

* ``--method sanpg`` (default): the model is ``model.name`` of the config (``san_pg``, ``san_pg_r18``, or a step-2
  ``san`` checkpoint's architecture), built without ImageNet weights and loaded from ``--weights``
  (:mod:`.texture_model`); its predictions are written as ``textures`` sidecars (:mod:`.pseudo_textures`);
* ``--method fuse``: each training identity's visible texels fused through its IUV sidecars
  (:mod:`.texture_fusion`), no model;
* images are read like torchreid's test transform (``data.height`` x ``data.width``, ``data.norm_mean``/``std``),
  batched, on the GPU when ``use_gpu`` and there is one; the texture size is ``san.texture_size``; predictions are
  read back to pixels in the range the model was trained with, ``san.texture_range`` (normalised like the images, or
  ``'tanh'``: [-1, 1] as the SAN authors', docs/san_authors_code.md §5);
* resumable: images whose texture file exists are skipped unless ``--overwrite``; every PNG is written
  atomically, so an interrupted run leaves no half-written file.

The building blocks live in their own modules and are re-exported here (their public names).
"""
import argparse

from ..config import ConfigKeyError, ConfigValueError, load_config
from ..utils.cli import exit_status
from .availability import DatasetNotFoundError
from .build import build_dataset, dataset_images, dataset_kwargs
from .pseudo_textures import generate_textures, texture_targets
from .synth_root import resolve_synth_root
from .texture_io import check_texture_range, texture_to_uint8
from .texture_model import build_texture_model, predict_textures
from .texture_previews import pick_images, texture_previews
from .transforms import build_image_transform

__all__ = [
    "build_texture_model",
    "build_image_transform",
    "build_dataset",
    "dataset_images",
    "texture_to_uint8",
    "predict_textures",
    "texture_targets",
    "generate_textures",
    "pick_images",
    "texture_previews",
    "build_parser",
    "main",
    "cli",
]


def build_parser():
    """The command-line parser of ``tools/generate_textures.py``."""
    parser = argparse.ArgumentParser(
        description="Predict SAN-PG pseudo full textures for every image of a data set (SAN, Sec. 3.1) and "
                    "write them as textures/ sidecars.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config-file", default="", help="YAML config naming the SAN-PG model (configs/san_pg.yaml)")
    parser.add_argument("--method", choices=sorted(_METHODS), default="sanpg",
                        help="sanpg: predict with a SAN-PG checkpoint (--weights); fuse: fuse each training "
                             "identity's visible texels through its IUV sidecars (dense.iuv_kind), no model")
    parser.add_argument("--weights", default="", help="SAN-PG checkpoint (step 1); --method sanpg")
    parser.add_argument("--dataset", required=True, nargs="+", help="registered data set name(s), e.g. market1501")
    parser.add_argument("--root", default=None, help="data root (default: the config's data.root)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    parser.add_argument("--overwrite", action="store_true", help="rewrite textures that already exist")
    parser.add_argument("--output-dir", default=None,
                        help="write <output-dir>/textures/<rel>/<stem>.png instead of beside the data set "
                             "(keeps existing textures, e.g. SynthReID's ground truth; one data set only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="config overrides as KEY VALUE pairs, e.g. data.workers 0 use_gpu False")
    return parser


def _seen(fraction):
    """The fused atlases' mean seen share, in words (None: no identity was fused in this call)."""
    return "no identity fused in this call" if fraction is None else f"{fraction:.1%} of the texels seen on average"


def _fuse_main(args, cfg, root):
    """``--method fuse``: IUV-fused atlases per training identity (:mod:`.texture_fusion`)."""
    from .texture_fusion import fuse_dataset

    if args.output_dir and len(args.dataset) > 1:
        raise ValueError("--output-dir takes one data set at a time (their sidecar layouts would mix)")
    results = {}
    for name in args.dataset:
        dataset = build_dataset(name, root, **dataset_kwargs(cfg))
        print(f"=> {name}: fusing the '{cfg.dense.iuv_kind}' IUV views of {dataset.num_train_pids} training "
              f"identities ({len(dataset.train)} images) under {dataset.dataset_dir} into "
              f"{cfg.san.texture_size[0]}x{cfg.san.texture_size[1]} atlases")
        summary = fuse_dataset(dataset.train, dataset.dataset_dir, cfg.san.texture_size, iuv_kind=cfg.dense.iuv_kind,
                               output_dir=args.output_dir, sidecar_base=cfg.dense.sidecar_root,
                               overwrite=args.overwrite, workers=cfg.data.workers, progress=not args.no_progress)
        lacking = summary["no_iuv"]
        print(f"=> {name}: {summary['written']} textures written, {summary['skipped']} skipped (already there; "
              f"--overwrite rewrites them), under {summary['textures_dir']}; {_seen(summary['seen_fraction'])}, "
              f"{len(lacking)} identities without any IUV map"
              f"{' (e.g. pid ' + ', '.join(map(str, lacking[:5])) + ')' if lacking else ''} "
              f"({summary['seconds']:.1f} s)")
        results[name] = summary
    return results


def _sanpg_main(args, cfg, root):
    """``--method sanpg``: SAN-PG predictions for every image (the paper's pseudo ground truth)."""
    if not args.weights:
        raise ValueError("--method sanpg needs --weights (a SAN-PG checkpoint of step 1); or use --method fuse")
    texture_range = check_texture_range(cfg.san.texture_range)  # the range SAN-PG was trained with
    model = build_texture_model(cfg, args.weights)
    device = "GPU" if next(model.parameters()).is_cuda else "CPU"
    if args.output_dir and len(args.dataset) > 1:
        raise ValueError("--output-dir takes one data set at a time (their sidecar layouts would mix)")
    results = {}
    for name in args.dataset:
        dataset = build_dataset(name, root, **dataset_kwargs(cfg))
        paths = dataset_images(dataset)
        print(f"=> {name}: {len(paths)} images (train + query + gallery) under {dataset.dataset_dir}; "
              f"predicting {model.texture_size[0]}x{model.texture_size[1]} textures on the {device}")
        summary = generate_textures(
            model, paths, dataset.dataset_dir, height=cfg.data.height, width=cfg.data.width,
            norm_mean=cfg.data.norm_mean, norm_std=cfg.data.norm_std, batch_size=args.batch_size,
            overwrite=args.overwrite, workers=cfg.data.workers, progress=not args.no_progress,
            output_dir=args.output_dir, texture_range=texture_range,
        )
        print(f"=> {name}: {summary['written']} textures written, {summary['skipped']} skipped (already there; "
              f"--overwrite rewrites them), {summary['images']} images in all, under {summary['textures_dir']} "
              f"({summary['seconds']:.1f} s)")
        results[name] = summary
    return results


# --method -> what writes the textures
_METHODS = {"sanpg": _sanpg_main, "fuse": _fuse_main}


def main(argv=None):
    """Run ``tools/generate_textures.py``; returns ``{dataset name: summary dict}``."""
    args = build_parser().parse_args(argv)
    root_opts = ["data.root", args.root] if args.root is not None else []
    cfg = resolve_synth_root(load_config(args.config_file, (args.opts or []) + root_opts), names=args.dataset)
    return _METHODS[args.method](args, cfg, cfg.data.root)


# Errors that are the user's to fix: reported as one line, no traceback.
_USER_ERRORS = (ConfigKeyError, ConfigValueError, FileNotFoundError, DatasetNotFoundError, KeyError, ValueError)


def cli(argv=None):
    """``tools/generate_textures.py``: :func:`main` with user errors printed as ``error: ...`` (exit status 2)."""
    return exit_status(main, argv, _USER_ERRORS)
