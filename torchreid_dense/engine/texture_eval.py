"""Texture L1 of a texture-predicting model over PIT pairs (SAN, AAAI 2020, Sec. 3.1: SAN-PG's held-out measure)."""
import torch

from ..data.texture_io import IMAGENET_STD
from ..utils.device import to_device, unwrap

__all__ = ["evaluate_texture_l1"]


@torch.no_grad()
def evaluate_texture_l1(model, loader, norm_std=IMAGENET_STD, use_gpu=False):
    """Texture L1 of a texture-predicting model over a PIT loader (valid texels only).

    Returns:
        dict: ``l1`` (normalised units, the training loss), ``l1_pixel`` (in [0, 1] pixel units,
        i.e. the error times the per-channel std) and ``num_images``.
    """
    was_training = model.training
    model.eval()
    std = torch.tensor(norm_std, dtype=torch.float32).view(1, 3, 1, 1)
    total = total_px = count = 0.0
    n_img = 0
    try:
        for batch in loader:
            imgs, target, valid = to_device((batch["img"], batch["texture"], batch["texture_valid"]), use_gpu)
            pred = unwrap(model).predict_texture(imgs).float()
            diff = (pred - target.float()).abs()
            mask = valid.to(diff.dtype).expand_as(diff)
            total += float((diff * mask).sum())
            total_px += float((diff * std.to(diff.device) * mask).sum())
            count += float(mask.sum())
            n_img += imgs.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("no valid texel in the evaluation loader")
    return {"l1": total / count, "l1_pixel": total_px / count, "num_images": n_img}
