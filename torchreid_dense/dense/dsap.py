"""DSAP-images: the densely semantically aligned part images of DSA-reID (Sec. 3.1).

Every person pixel with chart ``i`` and surface coordinates ``(u, v)`` is copied into the
``S x S`` image of chart ``i`` at ``(row, col) = (floor(u * S), floor(v * S))`` (1.0 lands in the
last row/column). Cells no pixel reaches keep the image's per-channel mean.
"""
import torch
from torchvision.ops import roi_align

from . import dsap_kernel
from .iuv import unpack_iuv, uv_floor
from .parts import NUM_CHARTS

__all__ = ["warp_dsap", "crop_parts"]

_REDUCTIONS = ("mean", "last")
_BACKENDS = ("auto", "torch", "kernel")


def _float_images(images):
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape [B, 3, H, W], got {tuple(images.shape)}")
    return images.float()


def warp_dsap(images, iuv, size=32, reduce="last", backend="auto"):
    """Warp images into 24 DSAP-images through their IUV maps (DSA-reID Sec. 3.1).

    Args:
        images: ``[B, 3, H, W]`` uint8 or float images.
        iuv: ``[B, 3, H, W]`` IUV maps, quantized uint8 or float (label, u, v in [0, 1]).
        size: ``S``, the side of each DSAP-image (paper: 32).
        reduce: what a cell reached by several pixels holds. The paper lets any one of them win;
            ``"last"`` (default) keeps the pixel latest in raster order, ``"mean"`` averages them
            (smoother, about twice the cost). Both are deterministic and identical on CPU and GPU
            (``"mean"`` exactly so for uint8 images).
        backend: ``"torch"`` (any device), ``"kernel"`` (the fused single-pass Numba kernel of
            :mod:`~torchreid_dense.dense.dsap_kernel`: CPU, uint8 IUV, uint8 or float32 images, no
            autograd) or ``"auto"`` (the kernel where it applies, torch otherwise). Same results.

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
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape [B, 3, H, W], got {tuple(images.shape)}")
    if iuv.dim() != 4 or images.shape[0] != iuv.shape[0] or images.shape[2:] != iuv.shape[2:]:
        raise ValueError(f"images {tuple(images.shape)} and IUV maps {tuple(iuv.shape)} must be [B, 3, H, W] "
                         "with the same B, H and W")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    use_kernel = _kernel_applies(images, iuv)
    if backend == "kernel" and not use_kernel:
        raise ValueError("backend='kernel' needs numba installed (pip install numba), CPU tensors, a uint8 IUV "
                         f"map and uint8/float32 images without autograd; got images {images.dtype} on "
                         f"{images.device}, IUV {iuv.dtype}" + ("" if dsap_kernel.available() else ", numba missing"))
    if use_kernel and backend != "torch":
        return _warp_dsap_kernel(images, iuv, size, reduce)
    b, c, h, w = images.shape
    device = images.device
    cells = (NUM_CHARTS + 1) * size * size  # one extra chart collects background pixels
    index = _cell_index(iuv, size)  # [B, H * W] int64
    if reduce == "mean":
        values = torch.empty(b, c + 1, h * w, device=device)
        values[:, :c].copy_(images.reshape(b, c, h * w))  # converts uint8 in the same pass
        values[:, c].fill_(1.0)
        sums = torch.zeros(b, c + 1, cells, device=device)
        sums.scatter_add_(2, index.unsqueeze(1).expand(b, c + 1, h * w), values)
        filled = sums[:, c] > 0
        values = sums[:, :c] / sums[:, c:].clamp(min=1)
    else:
        source = torch.arange(h * w, dtype=torch.int32, device=device).expand(b, h * w)
        winner = torch.full((b, cells), -1, dtype=torch.int32, device=device)
        winner.scatter_reduce_(1, index, source, reduce="amax")
        filled = winner >= 0
        pick = winner[:, :NUM_CHARTS * size * size].clamp(min=0).long().unsqueeze(1).expand(b, c, -1)
        values = torch.gather(images.reshape(b, c, h * w), 2, pick).float()  # gather, then convert
    keep = NUM_CHARTS * size * size  # drop the background chart
    filled = filled[:, :keep].view(b, NUM_CHARTS, 1, size, size)
    values = values[:, :, :keep].reshape(b, c, NUM_CHARTS, size, size).transpose(1, 2)
    dsap = torch.where(filled, values, _channel_mean(images).view(b, 1, c, 1, 1))
    return dsap.contiguous(), filled.view(b, NUM_CHARTS, -1).any(dim=2)


def _cell_index(iuv, size):
    """Per pixel, the flat index ``(chart - 1) * S * S + row * S + col`` of its DSAP cell, ``[B, H * W]``.

    Background pixels (and labels outside 1..24) go to an extra 25th chart that callers drop.
    Quantized maps use two look-up tables (labels, and (U, V) pairs) built from the same rule.
    """
    b, _, h, w = iuv.shape
    trash = NUM_CHARTS * size * size
    if iuv.dtype == torch.uint8:
        code = torch.arange(256, device=iuv.device)
        chart = torch.where((code >= 1) & (code <= NUM_CHARTS), (code - 1) * size * size, trash)
        cell = uv_floor(code, size).clamp(max=size - 1)
        uv_table = (cell.view(256, 1) * size + cell.view(1, 256)).view(-1)
        flat = iuv.reshape(b, 3, h * w)
        uv_key = flat[:, 1].int() * 256 + flat[:, 2]
        return (chart.index_select(0, flat[:, 0].reshape(-1).int())
                + uv_table.index_select(0, uv_key.reshape(-1))).view(b, h * w)
    labels, u, v = unpack_iuv(iuv)
    rows = uv_floor(u, size).clamp(0, size - 1)
    cols = uv_floor(v, size).clamp(0, size - 1)
    person = (labels >= 1) & (labels <= NUM_CHARTS)
    return torch.where(person, ((labels - 1) * size + rows) * size + cols, trash).view(b, h * w)


def _channel_mean(images, kernel=False):
    """Per-image, per-channel mean ``[B, C]`` float32, the value of cells no pixel reaches.

    For uint8 images the sum is an exact integer (int64, or float32 up to 65,793 pixels), so every
    way of summing gives the same bits; float images are summed in float32 the same way on both paths.
    """
    b, c, h, w = images.shape
    if images.dtype != torch.uint8:
        return images.reshape(b, c, h * w).float().sum(dim=2) / (h * w)
    if kernel:  # the fused path's one-pass sum (torch's int64 reduction is ~10x slower on the CPU)
        sums = torch.from_numpy(dsap_kernel.channel_sums(images.contiguous().numpy()))
    else:
        sums = images.sum(dim=(2, 3), dtype=torch.int64)
    return sums.float() / (h * w)


def _kernel_applies(images, iuv):
    return (dsap_kernel.available() and images.device.type == "cpu" and iuv.device.type == "cpu"
            and iuv.dtype == torch.uint8 and images.dtype in (torch.uint8, torch.float32)
            and not (images.requires_grad and torch.is_grad_enabled()))


def _warp_dsap_kernel(images, iuv, size, reduce):
    """:func:`warp_dsap` through the fused CPU kernel (same outputs as the torch path)."""
    images = images.detach()
    mean = _channel_mean(images, kernel=True)
    warp = dsap_kernel.warp_last if reduce == "last" else dsap_kernel.warp_mean
    out, valid = warp(images.contiguous().numpy(), iuv.contiguous().numpy(), mean.numpy(), size)
    return torch.from_numpy(out), torch.from_numpy(valid)


def crop_parts(images, iuv, size=32):
    """Coarse semantic alignment (the CSA ablation of DSA-reID Table 4).

    Each chart's bounding box in the image is cropped and resized to ``S x S`` (bilinear
    ``roi_align``), background included; charts absent from the image keep the image mean.
    Same inputs and outputs as :func:`warp_dsap`.
    """
    imgs = _float_images(images)
    labels, _, _ = unpack_iuv(iuv)
    if imgs.shape[0] != labels.shape[0] or imgs.shape[2:] != labels.shape[1:]:
        raise ValueError(f"images {tuple(imgs.shape)} and IUV maps {tuple(iuv.shape)} must share B, H and W")
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
