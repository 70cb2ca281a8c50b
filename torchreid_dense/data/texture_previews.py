"""What SAN's Fig. 6 shows (SAN, AAAI 2020): a few images, their predicted textures and the re-renderings."""
import glob
import os
import os.path as osp

import numpy as np
import torch

from .. import compat
from ..dense.atlas import atlas_shape, render_from_atlas
from ..dense.iuv import read_iuv
from ..dense.sidecar import SIDECAR_KINDS, sidecar_path, sidecar_root
from .texture_io import check_texture_range, texture_to_uint8
from .texture_model import predict_textures
from .transforms import build_image_transform

__all__ = ["pick_images", "texture_previews"]


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
                     norm_std=(0.229, 0.224, 0.225), iuv_kinds=("densepose_gt", "densepose"),
                     texture_range="normalized"):
    """What SAN's Fig. 6 shows, for a few images: inputs, predicted textures and their re-renderings.

    The texture is rendered back onto the body through the image's IUV sidecar (the first of
    ``iuv_kinds`` that exists) with :func:`~torchreid_dense.dense.atlas.render_from_atlas`; the
    background keeps the input, dimmed. That needs the texture in the DensePose atlas layout
    (6N x 4N); otherwise, or without IUV, the re-rendering is None and ``notes`` says why. ``texture_range`` is
    the range the model was trained with (``san.texture_range``), inverted by
    :func:`~torchreid_dense.data.texture_io.texture_to_uint8`.

    Returns:
        dict of lists: ``images`` ``[H, W, 3]`` uint8, ``textures`` ``[Ht, Wt, 3]`` uint8, ``renders``
        (uint8 or None), ``notes`` (str or None), ``names`` (file names).
    """
    check_texture_range(texture_range)
    transform = build_image_transform(height, width, norm_mean, norm_std)
    pil = [compat.read_image(p) for p in image_paths]
    imgs = torch.stack([transform(im) for im in pil])
    textures = texture_to_uint8(predict_textures(model, imgs), norm_mean, norm_std, texture_range)
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
