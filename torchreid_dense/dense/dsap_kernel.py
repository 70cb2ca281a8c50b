"""Fused single-pass CPU kernel for DSAP warping (DSA-reID Sec. 3.1), compiled with Numba.

The pure-torch path of :func:`~torchreid_dense.dense.dsap.warp_dsap` makes about eight passes over
the pixels (conversions, look-ups, a scatter); this kernel reads each pixel once and writes its
colour straight into its cell. It is used for CPU tensors with quantized (uint8) IUV maps when
Numba is installed and gives results identical to the torch path (tested); the cell rule is not
restated here: the wrapper passes look-up tables built by :func:`~torchreid_dense.dense.iuv.uv_floor`.
The kernel is serial on purpose: DataLoader workers warp one image each, and Numba's thread pool is
not safe across ``fork``.
"""
import functools

import numpy as np
import torch

from ..utils.jit import available, jit
from .iuv import uv_floor
from .parts import NUM_CHARTS

__all__ = ["available", "channel_sums", "warp_last", "warp_mean"]

@jit
def _channel_sums(images, sums):
    """Exact per-image, per-channel integer sums of uint8 images ``[B, C, P]`` into ``sums [B, C]``."""
    batch, channels, pixels = images.shape
    for b in range(batch):
        for k in range(channels):
            total = 0
            for p in range(pixels):
                total += images[b, k, p]
            sums[b, k] = total


@jit
def _pixel_cell(iuv, b, p, chart_lut, cell_lut, size):
    """``(chart index, row * S + col)`` of pixel ``p`` of map ``b`` (chart -1: background)."""
    return chart_lut[iuv[b, 0, p]], cell_lut[iuv[b, 1, p]] * size + cell_lut[iuv[b, 2, p]]


@jit
def _warp_last(images, iuv, chart_lut, cell_lut, mean, out, valid):
    """Fill ``out [B, 24, C, S*S]`` with ``mean [B, C]``, then the last pixel in raster order wins."""
    batch, channels, pixels = images.shape
    charts, cells = out.shape[1], out.shape[3]
    size = int(np.sqrt(cells) + 0.5)
    for b in range(batch):
        for chart in range(charts):
            for k in range(channels):
                value = mean[b, k]
                for cell in range(cells):
                    out[b, chart, k, cell] = value
        for p in range(pixels):
            chart, cell = _pixel_cell(iuv, b, p, chart_lut, cell_lut, size)
            if chart < 0:
                continue
            for k in range(channels):
                out[b, chart, k, cell] = images[b, k, p]
            valid[b, chart] = True


@jit
def _warp_mean(images, iuv, chart_lut, cell_lut, mean, out, counts, valid):
    """Average the pixels of each cell (summed in raster order in float32); empty cells hold ``mean``.

    ``out [B, 24, C, S*S]`` and ``counts [B, 24, S*S]`` arrive zeroed.
    """
    batch, channels, pixels = images.shape
    charts, cells = out.shape[1], out.shape[3]
    size = int(np.sqrt(cells) + 0.5)
    for b in range(batch):
        for p in range(pixels):
            chart, cell = _pixel_cell(iuv, b, p, chart_lut, cell_lut, size)
            if chart < 0:
                continue
            for k in range(channels):
                out[b, chart, k, cell] += np.float32(images[b, k, p])
            counts[b, chart, cell] += 1
            valid[b, chart] = True
        for chart in range(charts):
            for cell in range(cells):
                n = counts[b, chart, cell]
                for k in range(channels):
                    out[b, chart, k, cell] = out[b, chart, k, cell] / np.float32(n) if n > 0 else mean[b, k]


@functools.lru_cache(maxsize=None)
def _luts(size):
    """Look-up tables from a quantized byte to its chart index (-1: background) and to its cell."""
    code = torch.arange(256)
    chart = torch.where((code >= 1) & (code <= NUM_CHARTS), code - 1, -1).to(torch.int32).numpy()
    cell = uv_floor(code, size).clamp(max=size - 1).to(torch.int32).numpy()
    return chart, cell


def channel_sums(images):
    """Exact per-channel sums ``[B, C]`` int64 of a uint8 ``[B, C, H, W]`` array."""
    b, c = images.shape[:2]
    sums = np.empty((b, c), dtype=np.int64)
    _channel_sums(images.reshape(b, c, -1), sums)
    return sums


def warp_last(images, iuv, mean, size):
    """``[B, 24, C, S, S]`` float32 DSAP-images (cells no pixel reaches hold ``mean`` ``[B, C]``) and ``[B, 24]`` valid."""
    b, c = images.shape[:2]
    chart, cell = _luts(size)
    out = np.empty((b, NUM_CHARTS, c, size * size), dtype=np.float32)
    valid = np.zeros((b, NUM_CHARTS), dtype=np.bool_)
    _warp_last(images.reshape(b, c, -1), iuv.reshape(b, 3, -1), chart, cell, mean, out, valid)
    return out.reshape(b, NUM_CHARTS, c, size, size), valid


def warp_mean(images, iuv, mean, size):
    """Like :func:`warp_last` with ``reduce='mean'``: each reached cell holds the mean of its pixels."""
    b, c = images.shape[:2]
    chart, cell = _luts(size)
    out = np.zeros((b, NUM_CHARTS, c, size * size), dtype=np.float32)
    counts = np.zeros((b, NUM_CHARTS, size * size), dtype=np.int32)
    valid = np.zeros((b, NUM_CHARTS), dtype=np.bool_)
    _warp_mean(images.reshape(b, c, -1), iuv.reshape(b, 3, -1), chart, cell, mean, out, counts, valid)
    return out.reshape(b, NUM_CHARTS, c, size, size), valid
