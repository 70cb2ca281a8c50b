"""A data set's image files as torchreid reads them: listed, sized and decoded, with bad files reported as
:class:`BadImageError` (what to do about them included)."""
import os
import os.path as osp

import numpy as np
from PIL import Image

from .sidecar import SIDECAR_KINDS

__all__ = ["IMAGE_EXTENSIONS", "BadImageError", "list_dataset_images", "read_image_size", "decode_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_IMAGE_HINT = "replace it with the original image or delete it, then run again (finished sidecars are kept)"


class BadImageError(ValueError):
    """A data-set image that cannot be read (empty, cut off, or not an image at all)."""


def list_dataset_images(dataset_dir):
    """Sorted paths of the ``.jpg``/``.jpeg``/``.png`` images under ``dataset_dir`` (sidecar folders excluded)."""
    dataset_dir = osp.abspath(os.fspath(dataset_dir))
    found = []
    for root, dirs, files in os.walk(dataset_dir):
        if root == dataset_dir:
            dirs[:] = [d for d in dirs if d not in SIDECAR_KINDS]
        dirs.sort()
        found.extend(osp.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


def _unreadable(path, error):
    """The :class:`BadImageError` for an image PIL could not read."""
    size = osp.getsize(path) if osp.isfile(path) else None
    what = "it is an empty file" if size == 0 else f"cannot read it as an image ({type(error).__name__}: {error})"
    return BadImageError(f"{what}; {_IMAGE_HINT}")


def read_image_size(path):
    """``(H, W)`` of an image as PIL (and torchreid) open it, after decoding it whole (a cut-off file is bad).

    Raises:
        BadImageError: the file is empty, cut off or not an image PIL can open.
    """
    try:
        with Image.open(path) as im:
            im.load()
            width, height = im.size
    except (OSError, ValueError, Image.DecompressionBombError) as e:  # UnidentifiedImageError is an OSError
        raise _unreadable(path, e) from None
    return height, width


def decode_image(path):
    """``[H, W, 3]`` uint8 RGB pixels exactly as torchreid reads the image (PIL ``convert("RGB")``, no EXIF turn),
    so that an IUV map computed on them lines up with the training images.

    Raises:
        BadImageError: the file is empty, cut off or not an image.
    """
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))  # a writable copy
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise _unreadable(path, e) from None
