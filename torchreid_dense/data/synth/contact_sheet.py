"""Contact sheet of a SynthReID directory: identities across cameras, each image beside its
estimated IUV, and the identity's texture atlas (issue 3, "Quality bars").

``tools/visualize.py synth`` calls :func:`save_contact_sheet`; it also runs as
``python -m torchreid_dense.data.synth.contact_sheet DATASET_DIR OUT.png``.
"""
import argparse
import colorsys
import glob
import os.path as osp
import re

import cv2
import numpy as np

from ...dense.iuv import read_iuv
from ...dense.parts import NUM_CHARTS
from ...dense.sidecar import sidecar_path
from ...utils.io import save_png

__all__ = ["save_contact_sheet", "iuv_to_rgb", "main"]

_NAME = re.compile(r"([-\d]+)_c(\d)")
# one colour per chart, hues spread so that neighbouring charts differ
_CHART_RGB = np.array([(0, 0, 0)] + [
    tuple(int(255 * c) for c in colorsys.hsv_to_rgb(((i * 7) % NUM_CHARTS) / NUM_CHARTS, 0.85, 1.0))
    for i in range(NUM_CHARTS)], dtype=np.float32)


def iuv_to_rgb(iuv):
    """``[3, H, W]`` IUV -> ``[H, W, 3]`` uint8: colour by chart, brightness by U (black background)."""
    colour = _CHART_RGB[iuv[0]] * (0.45 + 0.55 * iuv[1, ..., None] / 255.0)
    return colour.astype(np.uint8)


def _missing(h, w):
    cell = np.full((h, w, 3), 70, np.uint8)
    cv2.line(cell, (0, 0), (w - 1, h - 1), (150, 150, 150), 1)
    cv2.line(cell, (w - 1, 0), (0, h - 1), (150, 150, 150), 1)
    cv2.putText(cell, "no det", (2, h // 2), cv2.FONT_HERSHEY_PLAIN, 0.7, (230, 230, 230), 1)
    return cell


def _read_rgb(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return img[..., ::-1]


def save_contact_sheet(dataset_dir, out_png, num_ids=6, per_id=6, split="test", seed=0, scale=2):
    """Save a PNG contact sheet of ``dataset_dir`` and return its path.

    Args:
        dataset_dir: a generated SynthReID directory (``.../synthreid/<preset>_s<seed>``).
        out_png: the PNG to write.
        num_ids: identities (rows), those seen by the most cameras first, ties broken by ``seed``.
        per_id: images per identity, from different cameras where possible.
        split: ``"test"`` (query + gallery) or ``"train"``.
        scale: integer upscaling of the whole sheet (nearest neighbour).

    Every row: the identity's atlas, then per image the RGB image and its estimated IUV (a crossed
    grey cell where DensePose found nobody), labelled with the camera.
    """
    dirs = ("query", "bounding_box_test") if split == "test" else ("bounding_box_train",)
    by_pid = {}
    for d in dirs:
        for path in sorted(glob.glob(osp.join(dataset_dir, d, "*.jpg"))):
            pid, cam = map(int, _NAME.search(osp.basename(path)).groups())
            if pid > 0:
                by_pid.setdefault(pid, {}).setdefault(cam, []).append(path)
    if not by_pid:
        raise FileNotFoundError(f"no images with an identity under {dataset_dir}/{'|'.join(dirs)}; "
                                "is it a SynthReID (Market-1501 layout) directory?")
    rng = np.random.default_rng(seed)
    pids = sorted(by_pid, key=lambda p: (-len(by_pid[p]), rng.random()))[:num_ids]
    rows = []
    for pid in pids:
        cams = sorted(by_pid[pid])
        picks = []
        while len(picks) < per_id and any(by_pid[pid][c] for c in cams):
            for c in cams:
                if by_pid[pid][c] and len(picks) < per_id:
                    picks.append((c, by_pid[pid][c].pop(0)))
        first = _read_rgb(picks[0][1])
        h, w = first.shape[:2]
        atlas = _read_rgb(sidecar_path(dataset_dir, picks[0][1], "textures"))
        atlas = cv2.resize(atlas, (int(round(atlas.shape[1] * h / atlas.shape[0])), h), interpolation=cv2.INTER_NEAREST)
        cv2.putText(atlas, f"id {pid}", (2, 10), cv2.FONT_HERSHEY_PLAIN, 0.7, (255, 255, 255), 1)
        cells = [atlas, np.zeros((h, 4, 3), np.uint8)]
        for cam, path in picks:
            img = np.ascontiguousarray(_read_rgb(path))
            cv2.putText(img, f"c{cam}", (2, 10), cv2.FONT_HERSHEY_PLAIN, 0.7, (255, 255, 0), 1)
            dp = sidecar_path(dataset_dir, path, "densepose")
            est = iuv_to_rgb(read_iuv(dp, size=(h, w))) if osp.exists(dp) else _missing(h, w)
            cells += [img, est, np.zeros((h, 2, 3), np.uint8)]
        row = np.concatenate(cells, axis=1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 3), (0, width - r.shape[1]), (0, 0))) for r in rows]
    sheet = np.concatenate(rows, axis=0)
    if scale > 1:
        sheet = cv2.resize(sheet, (sheet.shape[1] * scale, sheet.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    save_png(out_png, sheet)
    return out_png


def main(argv=None):
    """Command line: ``DATASET_DIR OUT.png [--num-ids N] [--per-id K] [--split test|train]``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset_dir")
    p.add_argument("out_png")
    p.add_argument("--num-ids", type=int, default=6)
    p.add_argument("--per-id", type=int, default=6)
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=2)
    a = p.parse_args(argv)
    print(save_contact_sheet(a.dataset_dir, a.out_png, num_ids=a.num_ids, per_id=a.per_id, split=a.split,
                             seed=a.seed, scale=a.scale))


if __name__ == "__main__":
    main()
