"""Full-texture atlas in DensePose's layout (REFERENCE 1.3; SAN's texture target, Sec. 3).

The atlas of tile size ``N`` is an image ``6N`` high and ``4N`` wide holding 24 tiles of
``N x N``: chart ``p`` (``k = p - 1``) occupies rows ``N*(k % 6)`` .. and columns ``N*(k // 6)`` ..;
inside a tile, column ``x = int(U * (N - 1))`` and row ``y = int((1 - V) * (N - 1))``.

DSAP-images (DSA-reID Sec. 3.1) index the same UV square the other way round (rows = U,
columns = V, no flip); :func:`dsap_cells_to_tile` is the single place that converts between them.
"""
import torch
import torch.nn.functional as F

from .iuv import unpack_iuv, uv_floor
from .parts import NUM_CHARTS

__all__ = [
    "atlas_shape", "atlas_index", "render_from_atlas", "partial_atlas",
    "dsap_cells_to_tile", "tile_to_dsap_cells", "dsap_to_atlas", "atlas_to_dsap",
]

_ROWS, _COLS = 6, 4  # tiles per atlas column and row


def atlas_shape(tile):
    """``(height, width)`` of the atlas with ``tile x tile`` charts: ``(6N, 4N)``."""
    return _ROWS * tile, _COLS * tile


def _tile_of(shape):
    h, w = shape[-2:]
    if h % _ROWS or w % _COLS or h // _ROWS != w // _COLS:
        raise ValueError(f"a texture atlas is 6N x 4N pixels (DensePose layout), got {h}x{w}")
    return h // _ROWS


def atlas_index(labels, u, v, tile):
    """Atlas pixel ``(ys, xs)`` of body points with chart ``labels`` (1..24) at ``(u, v)``.

    ``u``, ``v`` are quantized integers (0..255) or floats in [0, 1] (see ``iuv.unpack_iuv``).
    Background points (label 0) get the coordinates of chart 1 and must be masked by the caller.
    """
    k = (labels - 1).clamp(min=0)
    ys = tile * (k % _ROWS) + uv_floor(v, tile - 1, flip=True)
    xs = tile * (k // _ROWS) + uv_floor(u, tile - 1)
    return ys, xs


def render_from_atlas(atlas, iuv):
    """Render person images by looking every body pixel up in its atlas (DensePose texture transfer).

    Args:
        atlas: ``[B, C, 6N, 4N]`` (or ``[1, C, 6N, 4N]``, shared by the batch).
        iuv: ``[B, 3, H, W]`` quantized uint8 or float IUV maps.

    Returns:
        ``(image [B, C, H, W], mask [B, 1, H, W])``; background pixels are 0 and not in ``mask``.
    """
    labels, u, v = unpack_iuv(iuv)
    b, h, w = labels.shape
    tile = _tile_of(atlas.shape)
    atlas = atlas.expand(b, -1, -1, -1)
    ys, xs = atlas_index(labels, u, v, tile)
    flat = (ys * atlas.shape[-1] + xs).view(b, 1, h * w).expand(-1, atlas.shape[1], -1)
    image = torch.gather(atlas.flatten(2), 2, flat).view(b, atlas.shape[1], h, w)
    mask = (labels > 0).unsqueeze(1)
    return image * mask, mask


def partial_atlas(images, iuv, tile):
    """The visible texture: every body pixel is written to its texel (mean where several land).

    Returns ``(atlas [B, C, 6N, 4N] float, valid [B, 1, 6N, 4N] bool)``; texels no pixel reached are 0.
    """
    labels, u, v = unpack_iuv(iuv)
    b, c = images.shape[:2]
    ah, aw = atlas_shape(tile)
    ys, xs = atlas_index(labels, u, v, tile)
    person = (labels > 0).flatten()
    batch = torch.arange(b, device=labels.device).view(b, 1, 1).expand_as(labels)
    idx = ((batch * ah + ys) * aw + xs).flatten()[person]
    pix = images.float().permute(0, 2, 3, 1).reshape(-1, c)[person]
    sums = torch.zeros(b * ah * aw, c, dtype=pix.dtype, device=pix.device).index_add_(0, idx, pix)
    counts = torch.bincount(idx, minlength=b * ah * aw).to(pix.dtype)
    atlas = (sums / counts.clamp(min=1).unsqueeze(1)).view(b, ah, aw, c).permute(0, 3, 1, 2)
    valid = (counts > 0).view(b, 1, ah, aw)
    return atlas.contiguous(), valid


def dsap_cells_to_tile(cells):
    """DSAP cells ``[..., S, S]`` (rows = U, columns = V) -> atlas tile (columns = U, rows = 1 - V).

    The only place that knows the two conventions differ; :func:`tile_to_dsap_cells` inverts it.
    """
    return cells.transpose(-1, -2).flip(-2)


def tile_to_dsap_cells(tile):
    """Atlas tile ``[..., N, N]`` -> DSAP cells; the inverse of :func:`dsap_cells_to_tile`."""
    return tile.flip(-2).transpose(-1, -2)


def dsap_to_atlas(dsap):
    """Arrange 24 DSAP-images ``[B, 24, C, S, S]`` as a ``[B, C, 6S, 4S]`` atlas (cell for cell)."""
    b, n, c, s, _ = dsap.shape
    if n != NUM_CHARTS:
        raise ValueError(f"expected {NUM_CHARTS} DSAP-images, got {n}")
    tiles = dsap_cells_to_tile(dsap).reshape(b, _COLS, _ROWS, c, s, s)  # chart k -> (k // 6, k % 6)
    return tiles.permute(0, 3, 2, 4, 1, 5).reshape(b, c, _ROWS * s, _COLS * s)


def atlas_to_dsap(atlas, size=None):
    """Cut a ``[B, C, 6N, 4N]`` atlas into 24 DSAP-images ``[B, 24, C, S, S]`` (S = N unless ``size``).

    With ``size != N`` each tile is resized (bilinear, antialiased) after reorientation.
    """
    b, c = atlas.shape[:2]
    n = _tile_of(atlas.shape)
    tiles = atlas.reshape(b, c, _ROWS, n, _COLS, n).permute(0, 4, 2, 1, 3, 5).reshape(b, NUM_CHARTS, c, n, n)
    cells = tile_to_dsap_cells(tiles)
    if size is not None and size != n:
        cells = F.interpolate(cells.reshape(b * NUM_CHARTS, c, n, n).float(), size=(size, size),
                              mode="bilinear", align_corners=False, antialias=True)
        cells = cells.view(b, NUM_CHARTS, c, size, size)
    return cells.contiguous()
