"""SAN-PG pseudo ground truth (SAN, AAAI 2020, Sec. 3.1): a full texture predicted for every image of a data set.

Step 1 of SAN trains SAN-PG on PIT pairs; its predictions then serve as the (pseudo) texture targets of the
re-ID images. This module writes them as ``textures`` sidecars (``<dataset_dir>/textures/<rel>/<stem>.png``,
see :func:`torchreid_dense.dense.sidecar.sidecar_path`), which the ``<name>_texture`` data sets read.

``python tools/generate_textures.py --config-file configs/san_pg.yaml --weights san_pg.pth --dataset market1501``

* the model is ``model.name`` of the config (``san_pg``, ``san_pg_r18``, or a step-2 ``san`` checkpoint's
  architecture), built without ImageNet weights and then loaded from ``--weights``;
* images are read like torchreid's test transform (``data.height`` x ``data.width``, ``data.norm_mean``/``std``),
  batched, on the GPU when ``use_gpu`` and there is one;
* the texture size is the model's, ``san.texture_size`` (the SA-Dec output, also the texture wrappers' target);
* resumable: images whose texture file exists are skipped unless ``--overwrite``; every PNG is written
  atomically, so an interrupted run leaves no half-written file.
"""
import argparse
import glob
import os
import os.path as osp
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from .. import compat
from ..config import ConfigKeyError, ConfigValueError
from ..dense.atlas import atlas_shape, render_from_atlas
from ..dense.iuv import read_iuv
from ..dense.sidecar import SIDECAR_KINDS, sidecar_path, sidecar_root
from ..models.san import load_san_pg_weights
from ..registry import MODELS
from ..utils.io import save_png
from .availability import DatasetNotFoundError, check_datasets_present, explain_missing_dataset

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


def build_texture_model(cfg, weights, verbose=True):
    """The texture-predicting model of ``cfg.model.name`` with the weights of a SAN-PG (or SAN) checkpoint.

    The model is built like ``build_model_from_config`` (its registered config adapter gives the
    texture size ``san.texture_size``) but with ``pretrained=False``: the checkpoint replaces every
    encoder and decoder parameter, so ImageNet weights would be downloaded for nothing.

    Args:
        cfg (CfgNode): merged config (``model.name``, ``san.texture_size``, ``use_gpu``).
        weights (str): checkpoint file (torchreid's ``{'state_dict': ...}`` or a bare state dict).

    Returns:
        the model in eval mode (on the GPU when ``cfg.use_gpu`` and CUDA is available).

    Raises:
        KeyError / ValueError: the model cannot predict textures, or the checkpoint does not fit it
        (the messages name the file); FileNotFoundError: ``weights`` does not exist.
    """
    name = cfg.model.name
    if name not in MODELS:
        raise KeyError(
            f"model.name '{name}' cannot predict textures: use a SAN-PG model of torchreid_dense "
            f"(san_pg, san_pg_r18); registered models: {MODELS.names()}"
        )
    cfg_kwargs = MODELS.meta(name).get("cfg_kwargs")
    kwargs = cfg_kwargs(cfg) if cfg_kwargs is not None else {}
    model = MODELS.get(name)(num_classes=1, loss=cfg.loss.name, pretrained=False, use_gpu=cfg.use_gpu, **kwargs)
    if getattr(model, "decoder", None) is None or not hasattr(model, "predict_texture"):
        raise ValueError(f"model '{name}' has no texture decoder; use san_pg or san_pg_r18")
    load_san_pg_weights(model, weights, verbose=verbose)
    if cfg.use_gpu and torch.cuda.is_available():
        model = model.cuda()
    return model.eval()


def build_image_transform(height, width, norm_mean, norm_std):
    """torchreid's test transform: resize to ``(height, width)``, to [0, 1], normalise."""
    return T.Compose([T.Resize((int(height), int(width))), T.ToTensor(),
                      T.Normalize(mean=list(norm_mean), std=list(norm_std))])


class _ImageList(Dataset):
    """Images read from a list of paths: ``(tensor [3, H, W], index)``."""

    def __init__(self, paths, transform):
        self.paths = list(paths)
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.transform(compat.read_image(self.paths[index])), index


def build_dataset(name, root, **kwargs):
    """torchreid's data set ``name`` under ``root`` (stock or plugin), built quietly.

    ``kwargs`` are the data-set arguments torchreid's data manager passes (``split_id``,
    ``cuhk03_labeled``, ``cuhk03_classic_split``, ``market1501_500k``, ...).

    Raises:
        DatasetNotFoundError: the data set's directory is missing (with how to get it).
    """
    check_datasets_present(root, [name])
    try:
        return compat.data.datasets.init_image_dataset(name, root=root, mode="train", verbose=False, **kwargs)
    except RuntimeError as err:
        explained = explain_missing_dataset(err, root, [name])
        if explained is None:
            raise
        raise explained from err


def dataset_images(dataset):
    """Every image path of ``dataset``'s train, query and gallery sets, once each, in that order."""
    paths = (item[0] for split in (dataset.train, dataset.query, dataset.gallery) for item in split)
    return list(dict.fromkeys(paths))


def texture_to_uint8(texture, norm_mean, norm_std):
    """Normalised textures ``[B, 3, H, W]`` -> RGB pictures ``[B, H, W, 3]`` uint8 (``x*std + mean``, x255)."""
    mean = torch.as_tensor(norm_mean, dtype=torch.float32, device=texture.device).view(1, 3, 1, 1)
    std = torch.as_tensor(norm_std, dtype=torch.float32, device=texture.device).view(1, 3, 1, 1)
    pixels = ((texture.float() * std + mean) * 255.0).round().clamp_(0, 255)
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


@torch.no_grad()
def predict_textures(model, imgs):
    """Predicted textures ``[B, 3, Ht, Wt]`` (normalised image space) of normalised images, one batched call."""
    bare = getattr(model, "module", model)
    device = next(bare.parameters()).device
    return bare.predict_texture(imgs.to(device, non_blocking=True))


def texture_targets(image_paths, dataset_dir, output_dir=None):
    """The ``textures`` sidecar path of every image; with ``output_dir`` the same layout under that directory.

    ``output_dir`` keeps existing textures apart (e.g. SynthReID's ground-truth atlases): image
    ``<dataset_dir>/<rel>/<stem>.jpg`` -> ``<output_dir>/textures/<rel>/<stem>.png``.
    """
    targets = [sidecar_path(dataset_dir, p, "textures") for p in image_paths]
    if output_dir is None:
        return targets
    base = osp.abspath(dataset_dir)
    return [osp.join(osp.abspath(output_dir), osp.relpath(t, base)) for t in targets]


def generate_textures(model, image_paths, dataset_dir, height=256, width=128, norm_mean=(0.485, 0.456, 0.406),
                      norm_std=(0.229, 0.224, 0.225), batch_size=64, overwrite=False, workers=0, progress=True,
                      output_dir=None):
    """Predict a pseudo full texture for every image and write it as its ``textures`` sidecar.

    Args:
        model: a texture-predicting model (``predict_texture``), e.g. from :func:`build_texture_model`.
        image_paths (list of str): images under ``dataset_dir``.
        dataset_dir (str): the sidecar base (torchreid's ``dataset_dir`` of the data set).
        height, width, norm_mean, norm_std: the model's input transform.
        batch_size (int): images per forward pass.
        overwrite (bool): rewrite textures that exist (default: skip them, so a run can resume).
        workers (int): DataLoader processes reading the images.
        progress (bool): show a tqdm progress bar.
        output_dir (str, optional): write the sidecar layout under this directory instead of
            ``dataset_dir`` (see :func:`texture_targets`).

    Returns:
        dict: ``images`` (total), ``written``, ``skipped`` (already there), ``texture_size`` ``(Ht, Wt)``,
        ``textures_dir`` and ``seconds``.
    """
    from tqdm import tqdm

    start = time.time()
    targets = texture_targets(image_paths, dataset_dir, output_dir)
    todo = [i for i, t in enumerate(targets) if overwrite or not osp.exists(t)]
    was_training = model.training
    model.eval()
    texture_size = tuple(getattr(model, "module", model).texture_size)
    use_pin = next(model.parameters()).is_cuda
    loader = DataLoader(_ImageList([image_paths[i] for i in todo], build_image_transform(height, width, norm_mean,
                                                                                         norm_std)),
                        batch_size=int(batch_size), shuffle=False, num_workers=int(workers), pin_memory=use_pin)
    written = 0
    try:
        with tqdm(total=len(todo), desc="textures", unit="img", disable=not progress) as bar:
            for imgs, index in loader:
                pictures = texture_to_uint8(predict_textures(model, imgs), norm_mean, norm_std)
                for k, picture in zip(index.tolist(), pictures):
                    save_png(targets[todo[k]], picture)
                written += len(pictures)
                bar.update(len(pictures))
    finally:
        model.train(was_training)
    return {
        "images": len(image_paths),
        "written": written,
        "skipped": len(image_paths) - len(todo),
        "texture_size": texture_size,
        "textures_dir": sidecar_root(osp.abspath(output_dir or dataset_dir), "textures"),
        "seconds": time.time() - start,
    }


def pick_images(dataset_dir, num):
    """``num`` images spread evenly over the sorted images of ``dataset_dir`` (sidecar folders excluded)."""
    dataset_dir = osp.abspath(dataset_dir)
    skip = tuple(sidecar_root(dataset_dir, kind) + os.sep for kind in SIDECAR_KINDS)
    paths = sorted(p for p in glob.glob(osp.join(dataset_dir, "**", "*"), recursive=True)
                   if p.lower().endswith((".jpg", ".jpeg", ".png")) and not p.startswith(skip))
    if not paths:
        raise FileNotFoundError(f"no image (*.jpg, *.png) under '{dataset_dir}'")
    picks = np.linspace(0, len(paths) - 1, num=min(int(num), len(paths))).round().astype(int)
    return [paths[i] for i in dict.fromkeys(picks.tolist())]


def texture_previews(model, image_paths, dataset_dir, height=256, width=128, norm_mean=(0.485, 0.456, 0.406),
                     norm_std=(0.229, 0.224, 0.225), iuv_kinds=("densepose_gt", "densepose")):
    """What SAN's Fig. 6 shows, for a few images: inputs, predicted textures and their re-renderings.

    The texture is rendered back onto the body through the image's IUV sidecar (the first of
    ``iuv_kinds`` that exists) with :func:`~torchreid_dense.dense.atlas.render_from_atlas`; the
    background keeps the input, dimmed. That needs the texture in the DensePose atlas layout
    (6N x 4N); otherwise, or without IUV, the re-rendering is None and ``notes`` says why.

    Returns:
        dict of lists: ``images`` ``[H, W, 3]`` uint8, ``textures`` ``[Ht, Wt, 3]`` uint8, ``renders``
        (uint8 or None), ``notes`` (str or None), ``names`` (file names).
    """
    transform = build_image_transform(height, width, norm_mean, norm_std)
    pil = [compat.read_image(p) for p in image_paths]
    imgs = torch.stack([transform(im) for im in pil])
    textures = texture_to_uint8(predict_textures(model, imgs), norm_mean, norm_std)
    th, tw = textures.shape[1:3]
    is_atlas = th >= 6 and atlas_shape(th // 6) == (th, tw)
    out = {"images": [np.asarray(im) for im in pil], "textures": list(textures), "renders": [], "notes": [],
           "names": [osp.basename(p) for p in image_paths]}
    for path, image, texture in zip(image_paths, out["images"], textures):
        iuv_path = next((q for q in (sidecar_path(dataset_dir, path, k) for k in iuv_kinds) if osp.exists(q)), None)
        if not is_atlas:
            render, note = None, f"texture {th}x{tw} is not a 6N x 4N DensePose atlas: not re-rendered"
        elif iuv_path is None:
            render, note = None, f"no IUV sidecar ({' / '.join(iuv_kinds)})"
        else:
            iuv = torch.from_numpy(read_iuv(iuv_path, size=image.shape[:2], resize=True))[None]
            atlas = torch.from_numpy(texture).permute(2, 0, 1)[None].float()
            body, mask = render_from_atlas(atlas, iuv)
            body = body[0].permute(1, 2, 0).numpy()
            render = np.where(mask[0, 0].numpy()[..., None], body, image * 0.35).round().astype(np.uint8)
            note = None
        out["renders"].append(render)
        out["notes"].append(note)
    return out


def _dataset_kwargs(cfg):
    """The data-set arguments torchreid's data manager passes, from the config."""
    return {
        "split_id": cfg.data.split_id,
        "cuhk03_labeled": cfg.cuhk03.labeled_images,
        "cuhk03_classic_split": cfg.cuhk03.classic_split,
        "market1501_500k": cfg.market1501.use_500k_distractors,
    }


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


def _fuse_main(args, cfg, root):
    """``--method fuse``: IUV-fused atlases per training identity (:mod:`.texture_fusion`)."""
    from .texture_fusion import fuse_dataset

    if args.output_dir and len(args.dataset) > 1:
        raise ValueError("--output-dir takes one data set at a time (their sidecar layouts would mix)")
    results = {}
    for name in args.dataset:
        dataset = build_dataset(name, root, **_dataset_kwargs(cfg))
        print(f"=> {name}: fusing the '{cfg.dense.iuv_kind}' IUV views of {dataset.num_train_pids} training "
              f"identities ({len(dataset.train)} images) under {dataset.dataset_dir} into "
              f"{cfg.san.texture_size[0]}x{cfg.san.texture_size[1]} atlases")
        summary = fuse_dataset(dataset.train, dataset.dataset_dir, cfg.san.texture_size, iuv_kind=cfg.dense.iuv_kind,
                               output_dir=args.output_dir, sidecar_base=cfg.dense.sidecar_root,
                               overwrite=args.overwrite, workers=cfg.data.workers, progress=not args.no_progress)
        lacking = summary["no_iuv"]
        print(f"=> {name}: {summary['written']} textures written, {summary['skipped']} skipped (already there; "
              f"--overwrite rewrites them), under {summary['textures_dir']}; {summary['seen_fraction']:.1%} of the "
              f"texels seen on average, {len(lacking)} identities without any IUV map"
              f"{' (e.g. pid ' + ', '.join(map(str, lacking[:5])) + ')' if lacking else ''} "
              f"({summary['seconds']:.1f} s)")
        results[name] = summary
    return results


def _sanpg_main(args, cfg, root):
    """``--method sanpg``: SAN-PG predictions for every image (the paper's pseudo ground truth)."""
    if not args.weights:
        raise ValueError("--method sanpg needs --weights (a SAN-PG checkpoint of step 1); or use --method fuse")
    model = build_texture_model(cfg, args.weights)
    device = "GPU" if next(model.parameters()).is_cuda else "CPU"
    if args.output_dir and len(args.dataset) > 1:
        raise ValueError("--output-dir takes one data set at a time (their sidecar layouts would mix)")
    results = {}
    for name in args.dataset:
        dataset = build_dataset(name, root, **_dataset_kwargs(cfg))
        paths = dataset_images(dataset)
        print(f"=> {name}: {len(paths)} images (train + query + gallery) under {dataset.dataset_dir}; "
              f"predicting {model.texture_size[0]}x{model.texture_size[1]} textures on the {device}")
        summary = generate_textures(
            model, paths, dataset.dataset_dir, height=cfg.data.height, width=cfg.data.width,
            norm_mean=cfg.data.norm_mean, norm_std=cfg.data.norm_std, batch_size=args.batch_size,
            overwrite=args.overwrite, workers=cfg.data.workers, progress=not args.no_progress,
            output_dir=args.output_dir,
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
    from ..engine.launch import load_config, resolve_synth_root

    args = build_parser().parse_args(argv)
    root_opts = ["data.root", args.root] if args.root is not None else []
    cfg = resolve_synth_root(load_config(args.config_file, (args.opts or []) + root_opts), names=args.dataset)
    return _METHODS[args.method](args, cfg, cfg.data.root)


# Errors that are the user's to fix: reported as one line, no traceback.
_USER_ERRORS = (ConfigKeyError, ConfigValueError, FileNotFoundError, DatasetNotFoundError, KeyError, ValueError)


def cli(argv=None):
    """``tools/generate_textures.py``: :func:`main` with user errors printed as ``error: ...`` (exit status 2)."""
    try:
        main(argv)
    except _USER_ERRORS as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
    return 0
