"""Full-texture images (SAN targets) as normalised tensors and back: the one implementation.

A texture file is any RGB or RGBA image (the project's DensePose atlas PNGs, or the SAN
authors' 256x256 pseudo textures). With an alpha channel, texels with alpha 0 are invalid
(no target there); without one every texel is valid.

The targets' range (``san.texture_range``) is ``'normalized'`` (like the re-ID images, the project's default) or
``'tanh'`` ([-1, 1], the SAN authors'): :func:`convert_texture_range` converts both ways, for every reader and writer.
"""
import os

import numpy as np
import torch
from PIL import Image

__all__ = ["TextureReadError", "load_texture", "empty_texture", "texture_to_uint8", "convert_texture_range",
           "texture_norm", "check_texture_range", "TEXTURE_RANGES"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TEXTURE_RANGES = ("normalized", "tanh")  # (x/255 - mean)/std like the images, or x/127.5 - 1 (the SAN authors')


class TextureReadError(IOError):
    """A texture file is missing or cannot be decoded."""


def _size(size):
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"texture size must be (height, width); got {size}")
    return size


def check_texture_range(texture_range):
    """``texture_range`` if it is one of :data:`TEXTURE_RANGES`; else a ValueError naming ``san.texture_range``."""
    if texture_range not in TEXTURE_RANGES:
        raise ValueError(f"san.texture_range must be one of {TEXTURE_RANGES}; got {texture_range!r}: 'normalized' "
                         "(texture targets normalised like the images) or 'tanh' ([-1, 1], the SAN authors' code)")
    return texture_range


def texture_norm(texture_range, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The ``(mean, std)`` that ``texture_range`` normalises [0, 1] pixels with: the images' ``mean``, ``std``
    (``'normalized'``) or 0.5, 0.5 (``'tanh'``: ``x/127.5 - 1``, the SAN authors', docs/san_authors_code.md §5).

    Also what turns a texture error into [0, 1] pixel units (times ``std``).
    """
    return (mean, std) if check_texture_range(texture_range) == "normalized" else ((0.5,) * 3, (0.5,) * 3)


def convert_texture_range(x, texture_range="normalized", mean=IMAGENET_MEAN, std=IMAGENET_STD, inverse=False):
    """Texture pixels (0-255, ``[..., 3, H, W]``) to ``texture_range`` targets, or back (docs/san_authors_code.md §5).

    ``(x/255 - m)/s``, inverse ``(t*s + m)*255``, with ``(m, s)`` = :func:`texture_norm`: for ``'tanh'`` that is
    ``x/127.5 - 1`` and ``(t + 1)*127.5`` bit for bit (the authors' ``ToTensor`` + ``Normalize(0.5, 0.5)`` and
    ``(out/2 + 0.5)*255``). Rounded, the round trip of uint8 values is exact.
    """
    mean, std = texture_norm(texture_range, mean, std)
    mean = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(3, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(3, 1, 1)
    return (x * std + mean) * 255.0 if inverse else (x / 255.0 - mean) / std


def load_texture(path, size, mean=IMAGENET_MEAN, std=IMAGENET_STD, texture_range="normalized"):
    """Loads a texture image, resized to ``size``, as a ``texture_range`` target (default: normalised like the images).

    Args:
        path (str): texture image file.
        size (tuple): ``(H, W)``; RGB is resized bilinearly, alpha with nearest neighbour.
        mean, std (sequence of 3 floats): the images' normalisation, ``(x/255 - mean)/std``.
        texture_range (str): ``'normalized'`` (``mean``, ``std``) or ``'tanh'`` (``x/127.5 - 1``, the SAN authors');
            see :func:`convert_texture_range`.

    Returns:
        (texture float32 ``[3, H, W]``, valid bool ``[1, H, W]``).

    Raises:
        TextureReadError: naming the file when it is missing or not a readable image.
    """
    h, w = _size(size)
    check_texture_range(texture_range)
    path = os.fspath(path)
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
            rgba = im.convert("RGBA") if has_alpha else None
            rgb = im.convert("RGB")
    except FileNotFoundError:
        raise TextureReadError(
            f"texture file '{path}' does not exist; generate the textures (tools/generate_textures.py) "
            "or fetch them (tools/fetch_textures.py)"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise TextureReadError(
            f"texture file '{path}' is not a readable image ({exc}); delete it and generate it again"
        ) from exc
    if rgb.size != (w, h):
        rgb = rgb.resize((w, h), Image.BILINEAR)
    pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32).copy()).permute(2, 0, 1)
    texture = convert_texture_range(pixels, texture_range, mean, std)
    if rgba is None:
        valid = torch.ones(1, h, w, dtype=torch.bool)
    else:
        alpha = rgba.getchannel("A")
        if alpha.size != (w, h):
            alpha = alpha.resize((w, h), Image.NEAREST)
        valid = torch.from_numpy(np.asarray(alpha) > 0).unsqueeze(0)
    return texture, valid


def empty_texture(size):
    """Stand-in for a missing texture: zeros ``[3, H, W]`` and an all-False valid mask ``[1, H, W]``."""
    h, w = _size(size)
    return torch.zeros(3, h, w), torch.zeros(1, h, w, dtype=torch.bool)


def texture_to_uint8(texture, norm_mean, norm_std, texture_range="normalized"):
    """Textures ``[B, 3, H, W]`` in ``texture_range`` (predictions, or targets) -> RGB pictures ``[B, H, W, 3]`` uint8.

    ``texture_range`` is the range the model was trained with (``san.texture_range``): the inverse of
    :func:`convert_texture_range`, rounded and clipped to 0-255.
    """
    pixels = convert_texture_range(texture.float(), texture_range, norm_mean, norm_std, inverse=True)
    pixels = pixels.round().clamp_(0, 255)
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
