"""Z-buffered renderer of SynthReID: one pass writes the image and its exact IUV map.

Rays are orthographic (the camera looks along -z). Every primitive is intersected only with the
pixels of its own bounding box, but all (pixel, primitive) pairs of all primitives are solved at
once as one flat vectorised batch; the z-buffer keeps, per pixel, the nearest hit (one sort).
Body pixels are coloured by looking the identity's atlas up through the *quantized* IUV with
``dense.atlas.atlas_index``, the same lookup ``dense.atlas.render_from_atlas`` does, so that
rendering the atlas through the ground-truth IUV reproduces :attr:`Rendering.albedo` exactly.
"""
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ...dense.atlas import atlas_index
from ...dense.iuv import quantize_iuv
from .body import MODE_FRONT_BACK, MODE_HEAD, MODE_SINGLE
from .scene import background, occluder

__all__ = ["Raster", "Rendering", "rasterize", "surface_uv", "albedo_from_atlas", "render"]


@dataclass
class Raster:
    """Visible surface per pixel: chart ``labels`` [H, W] int64 (0 = background), ``u``, ``v``
    [H, W] float32 in [0, 1], unit world ``normal`` [H, W, 3] float32 (0 on background)."""

    labels: np.ndarray
    u: np.ndarray
    v: np.ndarray
    normal: np.ndarray


@dataclass
class Rendering:
    """One rendered person image.

    ``image`` [H, W, 3] uint8 RGB (final, after lighting, background, occluder, blur, noise);
    ``iuv`` [3, H, W] uint8 ground-truth IUV of the visible body (occluded pixels are background);
    ``albedo`` [H, W, 3] uint8: atlas colour of every body pixel before lighting/noise, 0 elsewhere;
    ``occluder`` [H, W] bool or None.
    """

    image: np.ndarray
    iuv: np.ndarray
    albedo: np.ndarray
    occluder: np.ndarray


def _pairs(prims, scale, cx, ground, height, width):
    """Flat (primitive, row, col) pairs covering every primitive's screen bounding box (+ run lengths)."""
    top = prims.origin
    bottom = top + prims.length[:, None] * prims.frame[:, 1]
    lo = np.minimum(top, bottom) - prims.reach[:, None]
    hi = np.maximum(top, bottom) + prims.reach[:, None]
    c0 = np.clip(np.floor(cx + scale * lo[:, 0] - 0.5), 0, width).astype(np.int64)
    c1 = np.clip(np.ceil(cx + scale * hi[:, 0] + 0.5), 0, width).astype(np.int64)
    r0 = np.clip(np.floor(ground - scale * hi[:, 1] - 0.5), 0, height).astype(np.int64)
    r1 = np.clip(np.ceil(ground - scale * lo[:, 1] + 0.5), 0, height).astype(np.int64)
    w, h = np.maximum(c1 - c0, 0), np.maximum(r1 - r0, 0)
    n = w * h
    k = np.repeat(np.arange(len(n)), n)
    j = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    wk = np.maximum(w[k], 1)
    return k, r0[k] + j // wk, c0[k] + j % wk, n


def surface_uv(prims, k, x, y, z):
    """Chart and ``(U, V)`` of surface points ``(x, y, z)`` (local frame of primitive ``k``).

    U runs around the primitive, increasing left to right as a viewer facing the chart sees it;
    V runs along it, 1 at the top. Returns ``(labels int64, u, v float32)``.
    """
    xn, zn = x * np.sqrt(prims.ia[k]), z * np.sqrt(prims.ib[k])
    mode = prims.mode[k]
    front = zn >= 0
    u_fb = np.where(front, np.arctan2(xn, zn), np.arctan2(-xn, -zn)) / np.pi + 0.5
    u_single = np.arctan2(xn, zn) / (2 * np.pi) + 0.5
    right = xn < 0
    u_head = np.where(right, np.arctan2(zn, -xn), np.arctan2(-zn, xn)) / np.pi + 0.5
    u = np.where(mode == MODE_FRONT_BACK, u_fb, np.where(mode == MODE_SINGLE, u_single, u_head))
    second = np.where(mode == MODE_FRONT_BACK, ~front, (mode == MODE_HEAD) & ~right)
    labels = np.where(second, prims.chart_b[k], prims.chart_a[k])
    v = 1.0 - y / prims.length[k]
    return labels.astype(np.int64), np.clip(u, 0, 1).astype(np.float32), np.clip(v, 0, 1).astype(np.float32)


def rasterize(prims, scale, cx, ground, height, width):
    """Ray-cast every primitive at once and keep the nearest hit per pixel (z-buffer).

    Args:
        prims: ``body.Primitives`` in world units.
        scale: pixels per world unit; ``cx``, ``ground``: image position of the world origin.

    Returns:
        Raster of ``height x width``.
    """
    k, py, px, runs = _pairs(prims, scale, cx, ground, height, width)
    f = prims.frame  # [K, 3 local axes, 3 world coordinates]
    # local ray origin of pixel (px, py): o_i = A_i px + B_i py + C_i (pixel centres, orthographic)
    const = -np.einsum("kij,kj->ki", f, prims.origin)
    ca, cb = f[:, :, 0] / scale, -f[:, :, 1] / scale
    cc = const + f[:, :, 0] * (0.5 - cx) / scale + f[:, :, 1] * (ground - 0.5) / scale
    d = -f[:, :, 2]  # the ray direction (0, 0, -1) in each local frame
    ia, ib, al, be, ga = prims.ia, prims.ib, prims.alpha, prims.beta, prims.gamma
    qa = ia * d[:, 0] ** 2 + ib * d[:, 2] ** 2 + al * d[:, 1] ** 2
    per_prim = np.concatenate([
        ca.T, cb.T, cc.T,                                               # 0..8: origin coefficients
        np.stack([2 * ia * d[:, 0], 2 * al * d[:, 1], 2 * ib * d[:, 2], be * d[:, 1]]),  # 9..12: qb
        np.stack([ia, al, ib, be, ga, 0.25 / np.maximum(qa, 1e-12), qa, prims.length]),  # 13..20
    ]).astype(np.float32)
    p = np.repeat(per_prim, runs, axis=1)  # == per_prim[:, k] (pairs come in runs of one primitive)
    pxf, pyf = px.astype(np.float32), py.astype(np.float32)
    ox = p[0] * pxf + p[3] * pyf + p[6]
    oy = p[1] * pxf + p[4] * pyf + p[7]
    oz = p[2] * pxf + p[5] * pyf + p[8]
    qb = p[9] * ox + p[10] * oy + p[11] * oz + p[12]
    qc = p[13] * ox * ox + (p[14] * oy + p[16]) * oy + p[15] * oz * oz + p[17]
    disc = qb * qb - 4.0 * p[19] * qc
    cand = np.flatnonzero((disc >= 0) & (p[19] > 1e-9))
    p, qb, oy = p[:, cand], qb[cand], oy[cand]
    root = np.sqrt(disc[cand])
    t_near, t_far = (-qb - root) * (2 * p[18]), (-qb + root) * (2 * p[18])
    dy = np.take(d[:, 1].astype(np.float32), k[cand])
    y_near, y_far = oy + t_near * dy, oy + t_far * dy
    near_ok = (y_near >= 0) & (y_near <= p[20])
    far_ok = ~near_ok & (y_far >= 0) & (y_far <= p[20])  # seen through an open end: the inside
    hit = np.flatnonzero(near_ok | far_ok)
    t = np.where(near_ok, t_near, t_far)[hit].astype(np.float64)
    pix = (py[cand] * width + px[cand])[hit]
    # z-buffer: sort by (pixel, depth) and keep the first of every pixel
    tmin = t.min() if len(t) else 0.0
    span = float(t.max() - tmin) + 1.0 if len(t) else 1.0
    order = np.argsort(pix * span + (t - tmin), kind="stable")
    ps = pix[order]
    first = np.ones(len(ps), bool)
    first[1:] = ps[1:] != ps[:-1]
    win = hit[order[first]]  # indices into cand
    wpix = ps[first]
    kw = k[cand][win]
    tw = t[order[first]]
    inside = ~near_ok[win]
    wc = cand[win]
    x = (ox[wc] + tw * d[kw, 0]).astype(np.float64)
    y = (oy[win] + tw * d[kw, 1]).astype(np.float64)
    z = (oz[wc] + tw * d[kw, 2]).astype(np.float64)
    lab, uu, vv = surface_uv(prims, kw, x, y, z)
    # normal: half the quadric's gradient, in world coordinates; the inside faces the other way
    nl = np.stack([ia[kw] * x, al[kw] * y + 0.5 * be[kw], ib[kw] * z], axis=1)
    nl *= np.where(inside, -1.0, 1.0)[:, None]
    nw = np.einsum("ni,nij->nj", nl, f[kw])
    nw /= np.linalg.norm(nw, axis=1, keepdims=True) + 1e-12
    labels = np.zeros(height * width, np.int64)
    u = np.zeros(height * width, np.float32)
    v = np.zeros(height * width, np.float32)
    normal = np.zeros((height * width, 3), np.float32)
    labels[wpix], u[wpix], v[wpix], normal[wpix] = lab, uu, vv, nw
    return Raster(labels.reshape(height, width), u.reshape(height, width), v.reshape(height, width),
                  normal.reshape(height, width, 3))


def albedo_from_atlas(atlas, iuv):
    """Atlas colour of every body pixel of a quantized ``iuv`` (``[H, W, 3]`` uint8, 0 elsewhere)."""
    body = np.flatnonzero(iuv[0])
    out = np.zeros((iuv.shape[1] * iuv.shape[2], atlas.shape[2]), np.uint8)
    if len(body):
        flat = torch.from_numpy(iuv.reshape(3, -1)[:, body].astype(np.int64))
        ys, xs = atlas_index(flat[0], flat[1], flat[2], atlas.shape[0] // 6)
        out[body] = atlas[ys.numpy(), xs.numpy()]
    return out.reshape(iuv.shape[1], iuv.shape[2], atlas.shape[2])


def _blur_and_resolution(img, sigma, keep):
    h, w = img.shape[:2]
    if keep < 0.999:
        small = cv2.resize(img, (max(4, int(round(w * keep))), max(8, int(round(h * keep)))),
                           interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if sigma > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return img


def render(prims, atlas, view, style, rng, height, width, occluder_prob=0.15):
    """Render one person: geometry, IUV, atlas colours, lighting, background, occluder, camera.

    Args:
        prims: posed body (``body.build_body``); atlas: ``[6N, 4N, 3]`` uint8 identity texture.
        view: ``cameras.View``; style: its ``cameras.CameraStyle``; rng: numpy Generator.
        occluder_prob: probability of an object in front of the person.

    Returns:
        Rendering.
    """
    ras = rasterize(prims, view.scale, view.cx, view.ground, height, width)
    occ, occ_colour = occluder(rng, height, width, occluder_prob)
    labels = np.where(occ, 0, ras.labels) if occ is not None else ras.labels
    iuv = quantize_iuv(labels, ras.u, ras.v)
    albedo = albedo_from_atlas(atlas, iuv)
    gains = np.asarray(view.gains, np.float32)
    img = background(rng, style, height, width).reshape(-1, 3)
    body = np.flatnonzero(iuv[0])
    light = np.asarray(view.light, np.float32)
    diffuse = np.clip(ras.normal.reshape(-1, 3)[body] @ light, 0.0, 1.0)
    shade = view.ambient + (1.0 - view.ambient) * 1.25 * diffuse
    img[body] = albedo.reshape(-1, 3)[body] * shade[:, None]
    img = img.reshape(height, width, 3)
    if occ is not None:
        img[occ] = occ_colour[occ]
    img *= gains
    img = _blur_and_resolution(img, view.blur, view.resolution)
    img += view.noise * rng.standard_normal(size=(height, width, 1), dtype=np.float32)
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return Rendering(image=img, iuv=iuv, albedo=albedo, occluder=occ)
