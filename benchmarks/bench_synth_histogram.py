"""Sanity check of SynthReID (issue 3): a colour-histogram matcher must score clearly low.

Per image a joint RGB histogram (``--bins`` per channel, L1-normalised), Euclidean distance between
query and gallery histograms, torchreid's ranking protocol. If colour alone solved the data set
the data set would be wrong: identities share a small palette and differ in where patterns sit.

    python benchmarks/bench_synth_histogram.py --root DATA [--preset small] [--seed 0]
"""
import argparse
import time

import cv2
import numpy as np
import torch

from torchreid_dense.data.datasets.synthreid import SynthReID
from torchreid_dense.data.synth.generate import ensure_dataset, make_config
from torchreid_dense.dense.iuv import read_iuv
from torchreid_dense.dense.parts import MERGE_LEVEL2
from torchreid_dense.dense.sidecar import sidecar_path
from torchreid_dense.metrics import evaluate_rank


def histograms(paths, bins, masks=None):
    """``[N, bins^3]`` L1-normalised joint RGB histograms of the images at ``paths``.

    ``masks``: optional IUV paths; only their body pixels (label > 0) are counted.
    """
    out = np.zeros((len(paths), bins ** 3), np.float32)
    for i, p in enumerate(paths):
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        idx = (img.astype(np.int32) * bins) // 256
        flat = (idx[..., 0] * bins + idx[..., 1]) * bins + idx[..., 2]
        if masks is not None:
            flat = flat[read_iuv(masks[i])[0] > 0]
        out[i] = np.bincount(flat.ravel(), minlength=bins ** 3) / max(flat.size, 1)
    return out


def part_colours(paths, iuv_paths):
    """Mean colour of each of DSA-reID's 8 level-2 parts (``[N, 8, 3]``) and their visibility ``[N, 8]``.

    Parts come from the (estimated) IUV sidecars; a missing sidecar leaves every part invisible.
    """
    part_of = np.zeros(25, np.int64)
    for i, group in enumerate(MERGE_LEVEL2):
        part_of[list(group)] = i + 1
    feats = np.zeros((len(paths), 8, 3), np.float32)
    seen = np.zeros((len(paths), 8), np.float32)
    for i, (p, q) in enumerate(zip(paths, iuv_paths)):
        try:
            labels = part_of[read_iuv(q)[0]].ravel()
        except FileNotFoundError:
            continue
        img = cv2.imread(p, cv2.IMREAD_COLOR).reshape(-1, 3).astype(np.float32) / 255.0
        counts = np.bincount(labels, minlength=9)[1:]
        for c in range(3):
            feats[i, :, c] = np.bincount(labels, weights=img[:, c], minlength=9)[1:] / np.maximum(counts, 1)
        seen[i] = counts >= 5
    return torch.from_numpy(feats), torch.from_numpy(seen)


def part_distance(qf, qm, gf, gm):
    """Mean squared colour difference over the parts visible in both images (large if none are)."""
    qn, gn = (qf ** 2).sum(-1) * qm, (gf ** 2).sum(-1) * gm
    cross = torch.einsum("qpc,gpc->qg", qf * qm[..., None], gf * gm[..., None])
    both = qm @ gm.T
    sq = qn @ gm.T + qm @ gn.T - 2 * cross
    return torch.where(both > 0, sq / both.clamp(min=1), torch.full_like(sq, 1e3))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--preset", default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bins", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="processes if the set must be generated")
    a = p.parse_args(argv)
    t = time.time()
    path = ensure_dataset(a.root, a.preset, a.seed, config=make_config(a.preset), workers=a.workers)
    print(f"data set {path} ready in {time.time() - t:.1f}s")
    query = SynthReID.process_dir(f"{path}/query")
    gallery = SynthReID.process_dir(f"{path}/bounding_box_test")
    q_pids, q_cams = np.array([q[1] for q in query]), np.array([q[2] for q in query])
    g_pids, g_cams = np.array([g[1] for g in gallery]), np.array([g[2] for g in gallery])
    print(f"SynthReID {a.preset} seed {a.seed}: {len(query)} queries, {len(gallery)} gallery images; "
          f"joint RGB histogram ({a.bins}^3 bins), Euclidean distance")
    for label, person_only in (("whole image", False), ("person pixels only (ground-truth mask)", True)):
        feats = []
        for items in (query, gallery):
            paths = [x[0] for x in items]
            masks = [sidecar_path(path, x, "densepose_gt") for x in paths] if person_only else None
            feats.append(torch.from_numpy(histograms(paths, a.bins, masks)))
        dist = torch.cdist(*feats).numpy()
        cmc, mAP = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20)
        print(f"  {label:40s} R1 {100 * cmc[0]:5.1f}  R5 {100 * cmc[4]:5.1f}  R10 {100 * cmc[9]:5.1f}  "
              f"mAP {100 * mAP:5.1f}")
    # contrast: colour aligned by the estimated dense semantics (what DSA-reID exploits), still no learning
    feats = [part_colours([x[0] for x in items], [sidecar_path(path, x[0], "densepose") for x in items])
             for items in (query, gallery)]
    cmc, mAP = evaluate_rank(part_distance(*feats[0], *feats[1]).numpy(), q_pids, g_pids, q_cams, g_cams,
                             max_rank=20)
    print(f"  {'per-part mean colour (estimated IUV)':40s} R1 {100 * cmc[0]:5.1f}  R5 {100 * cmc[4]:5.1f}  "
          f"R10 {100 * cmc[9]:5.1f}  mAP {100 * mAP:5.1f}")

if __name__ == "__main__":
    main()
