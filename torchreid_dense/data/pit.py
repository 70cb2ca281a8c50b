"""Paired image/texture (PIT) data for SAN-PG and SAN step 2 (SAN, AAAI 2020, Sec. 3.1).

PIT pairs live in a SynthReID data-set directory: person images ``<ds_dir>/pit/*.jpg`` and their
full textures at ``sidecar_path(ds_dir, image, 'textures')`` (``<ds_dir>/textures/pit/<stem>.png``).
Images are read like torchreid's test transform (resize, to [0,1], normalise); no flip, since a
mirrored image would belong to a mirrored (left/right swapped) texture. Textures are targets of ``texture_range``
(``san.texture_range``: normalised like the images, or [-1, 1] as the SAN authors').
"""
import glob
import os
import os.path as osp
import re

import torch
from torch.utils.data import Dataset

from .. import compat
from ..dense.sidecar import sidecar_path
from .texture_io import IMAGENET_MEAN, IMAGENET_STD, check_texture_range, load_texture
from .transforms import build_image_transform

__all__ = ["PITDataset", "pit_group", "split_pit_by_texture", "PITDataManager", "pit_pairs_dir", "ensure_pit_pairs"]

_IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def pit_group(image_path):
    """The texture a PIT image was rendered from: ``t0001_v03.jpg`` -> ``t0001`` (else the stem)."""
    stem = osp.splitext(osp.basename(image_path))[0]
    match = re.match(r"^(.*)_v\d+$", stem)
    return match.group(1) if match else stem


class PITDataset(Dataset):
    """(person image, full texture) pairs of the PIT data (Sec. 3.1) as torchreid-style dict samples.

    Args:
        ds_dir (str): data-set directory holding ``pit/`` and ``textures/pit/``.
        height, width (int): image size.
        texture_size (tuple): ``(Ht, Wt)`` of the texture tensors (the decoder's output size).
        norm_mean, norm_std (sequence): normalisation of the images (and of the textures when ``'normalized'``).
        image_paths (list, optional): a subset of the pairs (defaults to all of ``pit/``).
        texture_range (str): ``'normalized'`` or ``'tanh'`` (``x/127.5 - 1``, the SAN authors'), see
            :func:`~torchreid_dense.data.texture_io.convert_texture_range`.

    Each sample is ``{'img': [3,H,W], 'texture': [3,Ht,Wt], 'texture_valid': [1,Ht,Wt] bool,
    'impath': str}``.
    """

    def __init__(self, ds_dir, height=256, width=128, texture_size=(240, 160),
                 norm_mean=IMAGENET_MEAN, norm_std=IMAGENET_STD, image_paths=None, texture_range="normalized"):
        self.ds_dir = osp.abspath(os.fspath(ds_dir))
        self.texture_range = check_texture_range(texture_range)
        self.texture_size = tuple(int(s) for s in texture_size)
        self.norm_mean = tuple(norm_mean)
        self.norm_std = tuple(norm_std)
        if image_paths is None:
            image_paths = self.list_images(self.ds_dir)
        self.image_paths = list(image_paths)
        self.texture_paths = [sidecar_path(self.ds_dir, p, "textures") for p in self.image_paths]
        missing = [t for t in self.texture_paths if not osp.isfile(t)]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(self.texture_paths)} PIT images have no texture "
                f"(first: '{missing[0]}'); regenerate the PIT pairs of {self.ds_dir}"
            )
        self.transform = build_image_transform(height, width, self.norm_mean, self.norm_std)

    @staticmethod
    def list_images(ds_dir):
        """Sorted PIT image paths under ``<ds_dir>/pit/``; raises when there are none."""
        pit_dir = osp.join(ds_dir, "pit")
        paths = sorted(p for p in glob.glob(osp.join(pit_dir, "*")) if p.lower().endswith(_IMAGE_EXTS))
        if not paths:
            raise FileNotFoundError(
                f"no PIT images (*.jpg) under '{pit_dir}'; build a SynthReID data set with PIT pairs "
                "and point san.pit_root at it"
            )
        return paths

    def __len__(self):
        return len(self.image_paths)

    def __getitem__(self, index):
        path = self.image_paths[index]
        img = compat.read_image(path)  # a bad file raises ImageReadError naming it
        texture, valid = load_texture(self.texture_paths[index], self.texture_size,
                                      self.norm_mean, self.norm_std, self.texture_range)
        return {"img": self.transform(img), "texture": texture, "texture_valid": valid, "impath": path}


def pit_pairs_dir(root, preset="full", seed=0, height=256, width=128):
    """Where :func:`ensure_pit_pairs` keeps its pairs: ``<root>/synthreid/pit_<preset>_<H>x<W>_s<seed>``."""
    from .synth.generate import dataset_dir

    return dataset_dir(root, _pit_label(preset, height, width), seed)


def _pit_label(preset, height, width):
    return f"pit_{preset}_{int(height)}x{int(width)}"


def ensure_pit_pairs(root, preset="full", seed=0, height=256, width=128, workers=1, progress=True):
    """SynthReID's PIT pairs alone, rendered at ``height x width``: generated on first use, reused afterwards.

    The pairs are those of the SynthReID ``preset`` (its PIT textures and views: ``tiny`` 8 x 3, ``small``
    200 x 4, ``full`` 1,000 x 4; the paper rendered 929 x 10 from SURREAL) without its re-ID images, in
    :func:`pit_pairs_dir`. A directory generated with other settings raises
    :class:`~torchreid_dense.data.synth.ManifestMismatchError` (never silently reused).

    Returns:
        str: the directory, holding ``pit/`` and ``textures/pit/`` (a ``san.pit_root``).
    """
    from .synth.generate import ensure_dataset, make_config

    config = make_config(preset, height=height, width=width, num_train_ids=0, num_test_ids=0, distractors=0)
    return ensure_dataset(root, _pit_label(preset, height, width), seed, config=config, workers=workers,
                          progress=progress)


def split_pit_by_texture(image_paths, val_fraction=0.1, seed=0):
    """Splits PIT images into (train, held-out) lists by texture, so held-out textures are unseen.

    ``val_fraction`` of the textures (at least one when ``val_fraction > 0`` and there are two or
    more textures) go to the held-out list.
    """
    groups = sorted({pit_group(p) for p in image_paths})
    n_val = int(round(len(groups) * float(val_fraction)))
    if val_fraction > 0 and len(groups) > 1:
        n_val = min(max(n_val, 1), len(groups) - 1)
    order = torch.randperm(len(groups), generator=torch.Generator().manual_seed(int(seed))).tolist()
    held = {groups[i] for i in order[:n_val]}
    train = [p for p in image_paths if pit_group(p) not in held]
    val = [p for p in image_paths if pit_group(p) in held]
    return train, val


class PITDataManager:
    """Minimal torchreid-style data manager over PIT loaders (for the ``san_pg`` engine).

    ``train_loader`` yields PIT batches, ``val_loader`` the held-out pairs (or None); there are
    no identities and no query/gallery test loaders.
    """

    def __init__(self, train_loader, val_loader=None, height=256, width=128):
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.test_loader = {}
        self.sources = []
        self.targets = []
        self.num_train_pids = 0
        self.num_train_cams = 0
        self.height = height
        self.width = width
        self.data_type = "image"
