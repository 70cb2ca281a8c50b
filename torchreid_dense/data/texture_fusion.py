"""IUV-fused pseudo textures: one full-texture atlas per training identity from its own images (no SAN-PG).

SAN (AAAI 2020, Sec. 3.1) regresses a full texture; its pseudo ground truth comes from SAN-PG, a network
trained on synthetic (PIT) pairs, which carries a synthetic-to-real gap. A user with DensePose IUV maps of a
real data set can build the target from the data itself instead: every body pixel of every image of an
identity is written to its texel (:func:`~torchreid_dense.dense.atlas.partial_atlas`), and the views are
fused into one atlas per identity.

Fusion rule (:func:`fuse_views`), per identity:

1. **mean over views**: a texel is the mean of the views that saw it (each view contributes the mean of
   its own pixels on that texel, so a close-up view does not outweigh the others);
2. **mirrored chart**: a texel no view saw takes the texel at the same (U, V) of the left/right mirror
   chart (``parts.FLIP_CHART``: left arm <-> right arm, ...) when a view saw that one;
3. **chart mean**: what is still empty takes the mean of its chart's seen texels;
4. **body mean**: a chart no view saw at all (nor its mirror) takes the mean of every seen texel.

Every training image of the identity gets the same atlas as its ``textures`` sidecar (queries and gallery
images need none: L_Rec is a training loss). Identities with no IUV map at all get none and are listed.

``python tools/generate_textures.py --method fuse --config-file configs/san_market.yaml --dataset market1501
--output-dir DIR`` (see :func:`fuse_dataset`); resumable and atomic like the SAN-PG path.
"""
import os.path as osp
import time
from collections import defaultdict

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import compat
from ..dense.atlas import atlas_shape, atlas_to_dsap, dsap_to_atlas, partial_atlas
from ..dense.iuv import read_iuv
from ..dense.parts import FLIP_CHART, NUM_CHARTS
from ..dense.sidecar import sidecar_path
from ..utils.io import save_png

__all__ = ["fuse_views", "identity_images", "fuse_dataset"]

def fuse_views(atlases, valid):
    """Fuse the partial atlases of one identity's views into one full atlas (rules 1-4 of the module doc).

    Args:
        atlases: ``[V, C, 6N, 4N]`` float partial atlases (``partial_atlas``).
        valid: ``[V, 1, 6N, 4N]`` bool, the texels each view saw.

    Returns:
        ``(atlas [C, 6N, 4N] float, seen [1, 6N, 4N] bool)``; ``seen`` marks the texels of rule 1. When no
        view saw any texel, the atlas is all zeros.
    """
    w = valid.float()
    count = w.sum(0, keepdim=True)
    fused = (atlases * w).sum(0, keepdim=True) / count.clamp(min=1)  # [1, C, 6N, 4N]
    seen = count > 0
    # per chart (the atlas cut into its 24 tiles; the same (U, V) is the same cell in every chart)
    charts, seen_c = atlas_to_dsap(fused), atlas_to_dsap(seen)  # [1, 24, C, N, N], [1, 24, 1, N, N]
    # rule 2: the mirror chart's texel at the same (U, V)
    mirror = torch.as_tensor(FLIP_CHART[1:], dtype=torch.long) - 1  # chart index -> its mirror's index
    from_mirror = ~seen_c & seen_c[:, mirror]
    charts = torch.where(from_mirror, charts[:, mirror], charts)
    filled = seen_c | from_mirror
    # rule 3: the chart's mean over its filled texels; rule 4: the mean over every seen texel
    n_chart = filled.sum((-1, -2), keepdim=True)  # [1, 24, 1, 1, 1]
    chart_mean = (charts * filled).sum((-1, -2), keepdim=True) / n_chart.clamp(min=1)
    body_mean = (fused * seen).sum((-1, -2)) / seen.sum().clamp(min=1)  # [1, C]
    fill = torch.where(n_chart > 0, chart_mean, body_mean[:, None, :, None, None])
    charts = torch.where(filled, charts, fill)
    return dsap_to_atlas(charts)[0], seen[0]


class _ViewList(Dataset):
    """(image uint8 ``[3, H, W]``, IUV uint8 ``[3, H, W]`` or None) of a list of images."""

    def __init__(self, paths, dataset_dir, iuv_kind, sidecar_base):
        self.paths, self.dataset_dir, self.iuv_kind, self.sidecar_base = paths, dataset_dir, iuv_kind, sidecar_base

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        image = np.array(compat.read_image(path), dtype=np.uint8)
        iuv_path = _sidecar(self.dataset_dir, self.sidecar_base, path, self.iuv_kind)
        iuv = read_iuv(iuv_path, size=image.shape[:2], resize=True) if osp.exists(iuv_path) else None
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), None if iuv is None else torch.from_numpy(iuv)


def _sidecar(dataset_dir, sidecar_base, image_path, kind):
    """The sidecar of ``image_path``, under ``sidecar_base`` (``dense.sidecar_root``) when given."""
    path = sidecar_path(dataset_dir, image_path, kind)
    if not sidecar_base:
        return path
    return osp.join(osp.abspath(sidecar_base), osp.relpath(path, osp.abspath(dataset_dir)))


def identity_images(train):
    """``{pid: [image paths]}`` of a torchreid training split (``(path, pid, camid, ...)`` items), sorted."""
    by_pid = defaultdict(list)
    for item in train:
        by_pid[int(item[1])].append(item[0])
    return {pid: sorted(paths) for pid, paths in sorted(by_pid.items())}


def _same_size(items):
    """The (image, IUV) pairs that have an IUV map, grouped by image size (one ``partial_atlas`` call each)."""
    groups = defaultdict(list)
    for img, iuv in items:
        if iuv is not None:
            groups[tuple(img.shape)].append((img, iuv))
    return list(groups.values())


def _stack(group):
    return torch.stack([img for img, _ in group]), torch.stack([iuv for _, iuv in group])


def _collate(items):
    return items  # images of one identity may differ in size: fused one by one below


def fuse_dataset(train, dataset_dir, texture_size, iuv_kind="densepose", output_dir=None, sidecar_base="",
                 overwrite=False, workers=0, progress=True):
    """Write the IUV-fused atlas of every training identity as the ``textures`` sidecar of each of its images.

    Args:
        train: the data set's training split (torchreid ``(path, pid, camid, ...)`` items).
        dataset_dir (str): the data set directory (sidecar base).
        texture_size (tuple): ``(Ht, Wt)`` of the written atlas; must be a ``6N x 4N`` atlas.
        iuv_kind (str): the IUV sidecar kind read (``densepose``: estimated, what a user has).
        output_dir (str, optional): write ``<output_dir>/textures/<rel>/<stem>.png`` (the data set stays
            untouched; read it back with ``dense.sidecar_root``).
        sidecar_base (str): where the IUV sidecars live when not beside the data set (``dense.sidecar_root``).
        overwrite (bool): rewrite identities whose textures all exist (default: skip them; resumable).
        workers (int): DataLoader processes reading images and IUV maps.
        progress (bool): tqdm progress bar over identities.

    Returns:
        dict: ``identities``, ``images``, ``written`` (images), ``skipped`` (images already there),
        ``no_iuv`` (list of pids with no IUV map, given no texture), ``seen_fraction`` (mean share of
        texels some view saw; None when every identity was skipped), ``textures_dir`` and ``seconds``.
    """
    from tqdm import tqdm

    from .pseudo_textures import texture_targets

    start = time.time()
    ht, wt = (int(s) for s in texture_size)
    tile = ht // 6
    if atlas_shape(tile) != (ht, wt):
        raise ValueError(f"san.texture_size {ht}x{wt} is not a 6N x 4N DensePose atlas: IUV fusion writes atlases")
    groups = identity_images(train)
    todo, skipped = [], 0
    for pid, paths in groups.items():
        targets = texture_targets(paths, dataset_dir, output_dir)
        if not overwrite and all(osp.exists(t) for t in targets):
            skipped += len(paths)
        else:
            todo.append((pid, paths, targets))
    flat = [p for _, paths, _ in todo for p in paths]
    loader = DataLoader(_ViewList(flat, dataset_dir, iuv_kind, sidecar_base), batch_size=64, shuffle=False,
                        num_workers=int(workers), collate_fn=_collate)
    views = iter(item for batch in loader for item in batch)
    written, no_iuv, seen_fraction = 0, [], []
    with tqdm(total=len(todo), desc="fused textures", unit="id", disable=not progress) as bar:
        for pid, paths, targets in todo:
            items = [next(views) for _ in paths]
            parts = [partial_atlas(*_stack(group), tile) for group in _same_size(items)]
            if not parts:
                no_iuv.append(pid)
                bar.update(1)
                continue
            atlas, seen = fuse_views(torch.cat([a for a, _ in parts]), torch.cat([v for _, v in parts]))
            seen_fraction.append(seen.float().mean().item())
            picture = atlas.round().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
            for target in targets:
                save_png(target, picture)
            written += len(targets)
            bar.update(1)
    return {
        "identities": len(groups),
        "images": sum(len(p) for p in groups.values()),
        "written": written,
        "skipped": skipped,
        "no_iuv": no_iuv,
        "seen_fraction": float(np.mean(seen_fraction)) if seen_fraction else None,
        "textures_dir": osp.join(osp.abspath(output_dir or dataset_dir), "textures"),
        "seconds": time.time() - start,
    }
