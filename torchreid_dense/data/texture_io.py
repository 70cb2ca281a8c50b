"""Full-texture images (SAN targets) as normalised tensors and back: the one implementation.

A texture file is any RGB or RGBA image (the project's DensePose atlas PNGs, or the SAN
authors' 256x256 pseudo textures). With an alpha channel, texels with alpha 0 are invalid
(no target there); without one every texel is valid.
"""
import os

import numpy as np
import torch
from PIL import Image

__all__ = ["TextureReadError", "load_texture", "empty_texture", "texture_to_uint8"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TextureReadError(IOError):
    """A texture file is missing or cannot be decoded."""


def _size(size):
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"texture size must be (height, width); got {size}")
    return size


def load_texture(path, size, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Loads a texture image, resized to ``size`` and normalised like the re-ID images.

    Args:
        path (str): texture image file.
        size (tuple): ``(H, W)``; RGB is resized bilinearly, alpha with nearest neighbour.
        mean, std (sequence of 3 floats): normalisation, ``(x/255 - mean)/std``.

    Returns:
        (texture float32 ``[3, H, W]``, valid bool ``[1, H, W]``).

    Raises:
        TextureReadError: naming the file when it is missing or not a readable image.
    """
    h, w = _size(size)
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
    arr = torch.from_numpy(np.asarray(rgb, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    texture = (arr - mean_t) / std_t
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


def texture_to_uint8(texture, norm_mean, norm_std):
    """Normalised textures ``[B, 3, H, W]`` -> RGB pictures ``[B, H, W, 3]`` uint8 (``x*std + mean``, x255)."""
    mean = torch.as_tensor(norm_mean, dtype=torch.float32, device=texture.device).view(1, 3, 1, 1)
    std = torch.as_tensor(norm_std, dtype=torch.float32, device=texture.device).view(1, 3, 1, 1)
    pixels = ((texture.float() * std + mean) * 255.0).round().clamp_(0, 255)
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
