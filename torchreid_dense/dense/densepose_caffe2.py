"""Classic (Caffe2) DensePose output as IUV sidecars: ``<stem>_IUV.png`` and ``<stem>_INDS.png`` (REFERENCE 1.5).

The 2018 Caffe2 release (``facebookresearch/DensePose``, ``tools/infer_simple.py``; the DensePose that
DSA-reID used) writes, per image with at least one person, an image-sized array whose channels are
(I, U * 255, V * 255) with ``cv2.imwrite``, so the PNG's channels in file (RGB) order are (V, U, I); and a
one-channel ``_INDS.png`` of instance indices. ``<stem>`` is the image's file name up to its first dot.
Images without a detection get no file.

Instance indices: infer_simple numbers the boxes in increasing score order from 0, so the lowest-scoring
person (the only one, in a single-person image) has index 0, like the background. The instances here are
therefore the groups of person pixels (I > 0) by index value, 0 included; the main instance is the one
with the most pixels (ties: the higher index, i.e. the higher score), and the other instances' pixels
become background. Without an ``_INDS.png`` every person pixel is kept.

Layout (:func:`find_legacy_files`): ``DIR/<sub-folder>/<stem>_IUV.png`` mirrors the image
``<dataset_dir>/<sub-folder>/<stem>.jpg``; when that file is not there, a shorter tail of the sub-folder
(e.g. ``DIR/bounding_box_train/`` for ``market1501/Market-1501-v15.09.15/bounding_box_train/``) or ``DIR``
itself is tried, longest first. Each image takes the first file found; a file that is the first find of two
images (the same stem in two splits, both looked up in ``DIR``) is used by neither.
"""
import os
import os.path as osp
from collections import Counter

import numpy as np
from PIL import Image, UnidentifiedImageError

from .densepose_sidecars import list_dataset_images, write_densepose_sidecars
from .iuv import IUVFormatError, validate_iuv

__all__ = ["LegacyIUVError", "IUV_SUFFIX", "INDS_SUFFIX", "legacy_stem", "read_legacy_iuv", "read_legacy_inds",
           "keep_main_instance", "find_legacy_files", "import_legacy_iuv"]

IUV_SUFFIX = "_IUV.png"
INDS_SUFFIX = "_INDS.png"


class LegacyIUVError(ValueError):
    """A Caffe2 DensePose ``_IUV.png`` / ``_INDS.png`` that is unreadable or does not fit its image."""


def legacy_stem(image_path):
    """infer_simple's name stem of an image: its file name up to the first dot."""
    return osp.basename(os.fspath(image_path)).split(".")[0]


def _read_png(path, what):
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise LegacyIUVError(f"{path}: cannot read the {what} ({e}); the file is corrupt or not a PNG") from e


def read_legacy_iuv(path, size=None):
    """A cv2-written ``_IUV.png`` (file channels V, U, I) as the project's ``[3, H, W]`` uint8 (I, U, V).

    Raises:
        LegacyIUVError: naming ``path``, when it is unreadable, not 3-channel 8-bit, holds labels above 24,
            or is not ``size`` ``(H, W)`` (the image's size; infer_simple writes the image's size).
    """
    arr = _read_png(path, "Caffe2 DensePose IUV map")
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise LegacyIUVError(f"{path}: a Caffe2 DensePose IUV map is a 3-channel 8-bit PNG, got shape {arr.shape} "
                             f"{arr.dtype}")
    iuv = np.ascontiguousarray(arr[:, :, ::-1].transpose(2, 0, 1))  # file (V, U, I) -> (I, U, V)
    try:
        return validate_iuv(iuv, source=path, size=size)
    except IUVFormatError as e:
        raise LegacyIUVError(f"{e} (read as a Caffe2 DensePose file: I is the file's third channel)") from None


def read_legacy_inds(path, size=None):
    """An ``_INDS.png`` instance map as ``[H, W]`` uint8 (a grey PNG; an RGB one must have equal channels)."""
    arr = _read_png(path, "Caffe2 DensePose instance map")
    if arr.ndim == 3 and arr.shape[2] in (3, 4) and (arr[..., :3] == arr[..., :1]).all():
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise LegacyIUVError(f"{path}: a Caffe2 DensePose instance map is a one-channel 8-bit PNG, got shape "
                             f"{arr.shape} {arr.dtype}")
    if size is not None and arr.shape != tuple(size):
        raise LegacyIUVError(f"{path}: instance map is {arr.shape[0]}x{arr.shape[1]} (HxW) but its image is "
                             f"{size[0]}x{size[1]}")
    return arr


def keep_main_instance(iuv, inds=None):
    """``iuv`` with only the main instance's pixels (module doc), or None when it holds no person pixel."""
    person = iuv[0] > 0
    if not person.any():
        return None
    if inds is None:
        return iuv
    counts = np.bincount(inds[person], minlength=256)
    main = 255 - int(np.argmax(counts[::-1]))  # the largest group; ties to the higher index
    keep = person & (inds == main)
    return np.where(keep[None], iuv, 0).astype(np.uint8)


def _tails(rel_dir):
    parts = [p for p in rel_dir.split("/") if p and p != "."]
    return ["/".join(parts[i:]) for i in range(len(parts) + 1)]  # the full sub-folder first, DIR itself last


def find_legacy_files(legacy_dir, dataset_dir, image_paths):
    """``{image: (iuv_path, inds_path or None)}`` for the images whose ``_IUV.png`` is in ``legacy_dir``."""
    legacy_dir, dataset_dir = osp.abspath(os.fspath(legacy_dir)), osp.abspath(os.fspath(dataset_dir))
    present = set()
    for root, _, files in os.walk(legacy_dir):
        rel_root = osp.relpath(root, legacy_dir).replace(os.sep, "/")
        present.update(f if rel_root == "." else f"{rel_root}/{f}" for f in files)
    candidates = {}
    for image in image_paths:
        rel_dir = osp.relpath(osp.dirname(osp.abspath(image)), dataset_dir).replace(os.sep, "/")
        stem = legacy_stem(image)
        candidates[image] = [f"{t}/{stem}" if t else stem for t in _tails(rel_dir)]
    best = {image: next((c for c in cands if c + IUV_SUFFIX in present), None) for image, cands in candidates.items()}
    claims = Counter(best.values())
    found = {}
    for image, match in best.items():
        if match is not None and claims[match] == 1:  # a file two images would read is nobody's
            inds = match + INDS_SUFFIX
            found[image] = (osp.join(legacy_dir, match + IUV_SUFFIX),
                            osp.join(legacy_dir, inds) if inds in present else None)
    return found


def import_legacy_iuv(legacy_dir, dataset_dir, overwrite=False, progress=True):
    """Write the IUV sidecar of every data-set image from Caffe2 DensePose files (``import_densepose.py
    --legacy-iuv-dir``); resumable (existing sidecars are kept unless ``overwrite``) and atomic.

    Images without an ``_IUV.png`` (infer_simple found no person) or whose main instance is empty are listed
    in ``<dataset_dir>/densepose/no_detection.txt``; unreadable files and files of another size than their
    image are listed in the summary's ``bad`` and get no sidecar.

    Returns:
        the summary dict of :func:`~torchreid_dense.dense.densepose_sidecars.write_densepose_sidecars`.

    Raises:
        LegacyIUVError: when a directory does not exist, or no image of the data set has a file in
            ``legacy_dir`` (the layout it expects is named).
    """
    legacy_dir, dataset_dir = osp.abspath(os.fspath(legacy_dir)), osp.abspath(os.fspath(dataset_dir))
    for what, d in (("Caffe2 DensePose output directory", legacy_dir), ("data set directory", dataset_dir)):
        if not osp.isdir(d):
            raise LegacyIUVError(f"{what} {d} does not exist")
    images = [p for p in list_dataset_images(dataset_dir) if not p.startswith(legacy_dir + os.sep)]
    found = find_legacy_files(legacy_dir, dataset_dir, images)
    if images and not found:
        example = osp.relpath(images[0], dataset_dir)
        raise LegacyIUVError(
            f"none of the {len(images)} images of {dataset_dir} has a Caffe2 DensePose file in {legacy_dir}; "
            f"expected e.g. {osp.join(legacy_dir, osp.dirname(example), legacy_stem(example) + IUV_SUFFIX)} (the "
            "data set's sub-folders mirrored, or a tail of them) with an optional _INDS.png beside it")

    def estimate(image_path, image_size):
        if image_path not in found:
            return None
        iuv_path, inds_path = found[image_path]
        iuv = read_legacy_iuv(iuv_path, size=image_size)
        inds = read_legacy_inds(inds_path, size=image_size) if inds_path else None
        return keep_main_instance(iuv, inds)

    return write_densepose_sidecars(dataset_dir, images, estimate, overwrite=overwrite, progress=progress,
                                    desc="import Caffe2 densepose", errors=(LegacyIUVError,))
