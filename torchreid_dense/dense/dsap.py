"""DSAP-images: the densely semantically aligned part images of DSA-reID (Sec. 3.1).

Every person pixel with chart ``i`` and surface coordinates ``(u, v)`` is copied into the
``S x S`` image of chart ``i`` at ``(row, col) = (floor(u * S), floor(v * S))`` (1.0 lands in the
last row/column). Cells no pixel reaches keep the image's per-channel mean.
"""
import torch
from torchvision.ops import roi_align

from .iuv import unpack_iuv, uv_floor
from .parts import NUM_CHARTS

__all__ = ["warp_dsap", "crop_parts"]

_REDUCTIONS = ("mean", "last")


def _float_images(images):
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape [B, 3, H, W], got {tuple(images.shape)}")
    return images.float()


def _check_pair(images, labels):
    if images.shape[0] != labels.shape[0] or images.shape[2:] != labels.shape[1:]:
        raise ValueError(
            f"images {tuple(images.shape)} and IUV maps {tuple(labels.shape)} must share batch size and H x W"
        )


def warp_dsap(images, iuv, size=32, reduce="mean"):
    """Warp images into 24 DSAP-images through their IUV maps (DSA-reID Sec. 3.1).

    Args:
        images: ``[B, 3, H, W]`` uint8 or float images.
        iuv: ``[B, 3, H, W]`` IUV maps, quantized uint8 or float (label, u, v in [0, 1]).
        size: ``S``, the side of each DSAP-image (paper: 32).
        reduce: what a cell reached by several pixels holds: ``"mean"`` of them (default; exact and
            identical on CPU and GPU for uint8 images) or ``"last"``, the pixel latest in raster order.

    Returns:
        ``(dsap [B, 24, 3, S, S] float32`` in the value scale of ``images``, ``valid [B, 24] bool)``,
        ``valid`` marking the charts that received at least one pixel.

    Examples::

        >>> dsap, valid = warp_dsap(torch.zeros(2, 3, 8, 4, dtype=torch.uint8), torch.zeros(2, 3, 8, 4, dtype=torch.uint8))
        >>> dsap.shape, valid.any().item()
        (torch.Size([2, 24, 3, 32, 32]), False)
    """
    if reduce not in _REDUCTIONS:
        raise ValueError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}")
    imgs = _float_images(images)
    labels, u, v = unpack_iuv(iuv)
    _check_pair(imgs, labels)
    b, c, h, w = imgs.shape
    cells = NUM_CHARTS * size * size
    rows = uv_floor(u, size).clamp(0, size - 1)
    cols = uv_floor(v, size).clamp(0, size - 1)
    person = (labels > 0) & (labels <= NUM_CHARTS)
    batch = torch.arange(b, device=labels.device).view(b, 1, 1)
    target = (batch * cells + ((labels - 1) * size + rows) * size + cols).flatten()
    keep = person.flatten()
    target = target[keep]
    pixels = imgs.permute(0, 2, 3, 1).reshape(-1, c)
    counts = torch.bincount(target, minlength=b * cells)
    if reduce == "mean":
        sums = torch.zeros(b * cells, c, device=imgs.device).index_add_(0, target, pixels[keep])
        values = sums / counts.clamp(min=1).unsqueeze(1).float()
    else:
        source = torch.arange(b * h * w, device=imgs.device)[keep]
        winner = torch.full((b * cells,), -1, dtype=torch.long, device=imgs.device)
        winner.scatter_reduce_(0, target, source, reduce="amax")
        values = pixels[winner.clamp(min=0)]
    mean = imgs.mean(dim=(2, 3))  # per-image, per-channel initialisation
    filled = (counts > 0).view(b, NUM_CHARTS, size, size)
    values = values.view(b, NUM_CHARTS, size, size, c).permute(0, 1, 4, 2, 3)
    dsap = torch.where(filled.unsqueeze(2), values, mean.view(b, 1, c, 1, 1))
    return dsap.contiguous(), filled.flatten(2).any(dim=2)


def crop_parts(images, iuv, size=32):
    """Coarse semantic alignment (the CSA ablation of DSA-reID Table 4).

    Each chart's bounding box in the image is cropped and resized to ``S x S`` (bilinear
    ``roi_align``), background included; charts absent from the image keep the image mean.
    Same inputs and outputs as :func:`warp_dsap`.
    """
    imgs = _float_images(images)
    labels, _, _ = unpack_iuv(iuv)
    _check_pair(imgs, labels)
    b, c, h, w = imgs.shape
    charts = torch.arange(1, NUM_CHARTS + 1, device=labels.device).view(1, NUM_CHARTS, 1, 1)
    onehot = labels.unsqueeze(1) == charts  # [B, 24, H, W]
    in_row, in_col = onehot.any(dim=3), onehot.any(dim=2)  # [B, 24, H], [B, 24, W]
    valid = in_row.any(dim=2)
    ar_h = torch.arange(h, device=labels.device, dtype=imgs.dtype)
    ar_w = torch.arange(w, device=labels.device, dtype=imgs.dtype)
    big = float(max(h, w) + 1)
    y0 = torch.where(in_row, ar_h, big).amin(dim=2)
    y1 = torch.where(in_row, ar_h, -big).amax(dim=2)
    x0 = torch.where(in_col, ar_w, big).amin(dim=2)
    x1 = torch.where(in_col, ar_w, -big).amax(dim=2)
    batch = torch.arange(b, device=imgs.device, dtype=imgs.dtype).view(b, 1).expand(b, NUM_CHARTS)
    boxes = torch.stack([batch, x0, y0, x1, y1], dim=2).reshape(-1, 5)
    boxes = torch.where(valid.reshape(-1, 1), boxes, torch.tensor([0.0, 0, 0, 1, 1]).to(boxes).expand_as(boxes))
    boxes[:, 0] = batch.reshape(-1)
    # boxes span the centres of the chart's first and last pixels: samples never mix in outside pixels
    crops = roi_align(imgs, boxes, output_size=(size, size), spatial_scale=1.0, sampling_ratio=2, aligned=False)
    crops = crops.view(b, NUM_CHARTS, c, size, size)
    mean = imgs.mean(dim=(2, 3)).view(b, 1, c, 1, 1)
    return torch.where(valid.view(b, NUM_CHARTS, 1, 1, 1), crops, mean).contiguous(), valid
