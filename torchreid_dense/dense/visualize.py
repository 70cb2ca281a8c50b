"""Pictures of dense semantics: colour-coded IUV maps and DSA-reID's Fig. 2 (image, IUV, 24 DSAP-images)."""
import numpy as np

from .iuv import dequantize_iuv
from .parts import NUM_CHARTS, PART_NAMES

__all__ = ["CHART_COLOURS", "RANK_COLOURS", "colorize_iuv", "save_dsap_figure", "save_texture_figure",
           "save_ranked_figure"]


def _chart_colours():
    import matplotlib

    cmap = matplotlib.colormaps["tab20b"].colors + matplotlib.colormaps["tab20c"].colors[:4]
    colours = np.zeros((NUM_CHARTS + 1, 3), dtype=np.float32)
    colours[1:] = np.asarray(cmap[:NUM_CHARTS], dtype=np.float32)
    return colours


CHART_COLOURS = _chart_colours()  # [25, 3] in [0, 1]; row 0 (background) is black


def _save(fig, out_png, title=None, title_size=9, dpi=100):
    """Title, lay out, write ``fig`` atomically as a PNG and close it (every figure of this module)."""
    import matplotlib.pyplot as plt

    from ..utils.io import atomic_write

    if title:
        fig.suptitle(title, fontsize=title_size)
    fig.tight_layout()
    with atomic_write(out_png) as f:
        fig.savefig(f, format="png", dpi=dpi)
    plt.close(fig)


def colorize_iuv(iuv, shade_uv=True):
    """``[3, H, W]`` IUV map -> ``[H, W, 3]`` uint8 picture: one colour per chart, shaded by U and V."""
    labels, u, v = dequantize_iuv(np.asarray(iuv))
    rgb = CHART_COLOURS[labels]
    if shade_uv:
        rgb = rgb * (0.55 + 0.45 * ((u + v) / 2.0))[..., None]
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def save_dsap_figure(out_png, image, iuv, dsap, valid=None, title=None):
    """Save DSA-reID's Fig. 2 for one image: the image, its colour-coded IUV and its 24 DSAP-images.

    Args:
        out_png: output path (parent folders are created).
        image: ``[H, W, 3]`` uint8. iuv: ``[3, H, W]`` uint8. dsap: ``[24, 3, S, S]`` in 0..255.
        valid: optional ``[24]`` bool; empty charts are marked in their title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dsap = np.clip(np.asarray(dsap, dtype=np.float32), 0, 255).astype(np.uint8)
    fig = plt.figure(figsize=(13, 5.2))
    grid = fig.add_gridspec(4, 8, width_ratios=[1.4, 1.4, 1, 1, 1, 1, 1, 1])
    for col, (pic, name) in enumerate(((image, "image"), (colorize_iuv(iuv), "IUV (DensePose)"))):
        ax = fig.add_subplot(grid[:, col])
        ax.imshow(pic, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    for k in range(NUM_CHARTS):
        ax = fig.add_subplot(grid[k // 6, 2 + k % 6])
        ax.imshow(dsap[k].transpose(1, 2, 0), interpolation="nearest")
        empty = valid is not None and not bool(valid[k])
        ax.set_title(f"{k + 1} {PART_NAMES[k]}" + (" (empty)" if empty else ""), fontsize=6)
        ax.axis("off")
    _save(fig, out_png, title, title_size=10, dpi=110)


def save_texture_figure(out_png, images, textures, renders=None, notes=None, titles=None, title=None):
    """Save SAN's Fig. 6: input images beside their predicted full textures, and the texture rendered back
    onto the body through the image's IUV where there is one.

    Args:
        out_png: output path (parent folders are created).
        images: list of ``[H, W, 3]`` uint8 input images (one row each).
        textures: list of ``[Ht, Wt, 3]`` uint8 predicted textures.
        renders: optional list of ``[H, W, 3]`` uint8 re-renderings, None where there is none.
        notes: optional list of strings shown in place of a missing re-rendering (why it is missing).
        titles: optional list of row titles (e.g. file names). title: optional figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    if n == 0 or len(textures) != n:
        raise ValueError(f"save_texture_figure: need one texture per image, got {n} images and {len(textures)} textures")
    renders = list(renders) if renders is not None else [None] * n
    notes = list(notes) if notes is not None else [None] * n
    fig, axes = plt.subplots(n, 3, figsize=(6.6, 2.5 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.6, 1]})
    for row in range(n):
        panels = ((images[row], "input"), (textures[row], "predicted texture"), (renders[row], "re-rendered via IUV"))
        for col, (pic, name) in enumerate(panels):
            ax = axes[row, col]
            ax.axis("off")
            label = name if col or not titles else f"{name}: {titles[row]}"
            ax.set_title(label, fontsize=7)
            if pic is not None:
                ax.imshow(np.asarray(pic, dtype=np.uint8), interpolation="nearest")
            else:
                ax.text(0.5, 0.5, notes[row] or "no IUV", ha="center", va="center", wrap=True, fontsize=6,
                        transform=ax.transAxes)
    _save(fig, out_png, title, title_size=9, dpi=100)


RANK_COLOURS = {True: (44, 160, 44), False: (214, 39, 40), None: (128, 128, 128)}  # match, no match, the query


def save_ranked_figure(out_png, queries, models, topk=5, title=None, cell=(256, 128), border=5, gap=6):
    """Save ranked lists of several models side by side, as torchreid's ``visrank`` rows: each row a query (grey
    frame), then each model's top-k gallery images framed green (same identity, another camera) or red.

    Every image is resized (nearest) to ``cell`` = (height, width) pixels, so low-resolution crops show their
    clothing; the picture is composed in pixels (no plotting library), about 1,500 x 1,700 for 6 queries and 2 x 5.

    Args:
        out_png: output path (parent folders are created).
        queries: list of ``[H, W, 3]`` uint8 query images (one row each).
        models: list of ``(name, ranked)`` where ``ranked`` holds, per query, ``topk`` pairs
            ``(image [H, W, 3] uint8, correct bool)``.
        topk (int): gallery images shown per model. title: optional line above the grid.
        cell (tuple): cell size ``(H, W)``; border, gap (int): frame width and space between cells.
    """
    from PIL import Image, ImageDraw, ImageFont

    from ..utils.io import atomic_write

    h, w = (int(v) for v in cell)
    font = ImageFont.load_default(size=max(12, h // 14))
    text_h = font.size + 8
    group = gap * 4  # space between the query column and each model's block
    block = topk * (w + gap) - gap
    width = w + len(models) * (group + block) + 2 * gap
    top = (text_h if title else 0) + text_h  # the title line, then the column headers
    height = top + len(queries) * (h + gap) + gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((gap, 4), title, fill="black", font=font)
    head = top - text_h + 4
    draw.text((gap, head), "query", fill="black", font=font)
    starts = [gap + w + group + m * (block + group) for m in range(len(models))]
    for x0, (name, _) in zip(starts, models):
        draw.text((x0, head), name, fill="black", font=font)

    def paste(image, x, y, correct):
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=RANK_COLOURS[correct])
        inner = Image.fromarray(np.ascontiguousarray(image)).resize((w - 2 * border, h - 2 * border), Image.NEAREST)
        canvas.paste(inner, (x + border, y + border))

    for row, query in enumerate(queries):
        y = top + row * (h + gap)
        paste(query, gap, y, None)
        for x0, (_, ranked) in zip(starts, models):
            for k, (image, correct) in enumerate(ranked[row][:topk]):
                paste(image, x0 + k * (w + gap), y, bool(correct))
    with atomic_write(out_png) as f:
        canvas.save(f, format="PNG")
