"""Ranked lists of trained benchmark jobs (what ``make demo`` shows for the baseline vs DSA-reID).

A job directory (``<output>/<run>/seed<k>``, see :mod:`.runner`) holds the merged ``config.yaml`` and the
checkpoints; :func:`job_features` rebuilds its model, loads the last checkpoint and extracts the test
features, :func:`rank_gallery` ranks the gallery per query the way torchreid's evaluation does (same identity
and camera left out).
"""
import os.path as osp

import torch

from .. import compat
from ..config import load_config
from ..data.transforms import build_image_transform
from .runner import last_checkpoint

__all__ = ["job_features", "rank_gallery"]


@torch.no_grad()
def job_features(job_dir, paths, num_classes, batch_size=128):
    """Features ``[N, D]`` of ``paths`` by the model of a finished job (its config and last checkpoint)."""
    from ..engine.checkpoint import load_weights
    from ..models import build_model_from_config

    cfg = load_config(osp.join(job_dir, "config.yaml"), ["use_gpu", "False", "model.pretrained", "False"])
    weights = last_checkpoint(job_dir)
    if not weights:
        raise FileNotFoundError(f"no checkpoint under {job_dir}/model: has the job finished?")
    model = build_model_from_config(cfg, num_classes)[0]
    load_weights(model, weights)
    model.eval()
    transform = build_image_transform(cfg.data.height, cfg.data.width, cfg.data.norm_mean, cfg.data.norm_std)
    feats = []
    for i in range(0, len(paths), batch_size):
        imgs = torch.stack([transform(compat.read_image(p)) for p in paths[i:i + batch_size]])
        feats.append(model(imgs).float())
    return torch.cat(feats)


def rank_gallery(qf, gf, q_pids, q_cams, g_pids, g_cams, topk=5):
    """Per query, the ``topk`` gallery indices by Euclidean distance (torchreid's default) and whether each
    is a match; gallery images of the query's identity seen by the query's camera are left out, as in
    torchreid's evaluation.

    Returns:
        ``(index [Q, topk] int64, correct [Q, topk] bool)`` numpy arrays.
    """
    dist = torch.cdist(qf.float(), gf.float())
    q_pids, q_cams = torch.as_tensor(q_pids)[:, None], torch.as_tensor(q_cams)[:, None]
    g_pids, g_cams = torch.as_tensor(g_pids)[None], torch.as_tensor(g_cams)[None]
    junk = (q_pids == g_pids) & (q_cams == g_cams)
    dist = dist.masked_fill(junk, float("inf"))
    index = dist.topk(topk, dim=1, largest=False).indices
    correct = torch.gather((q_pids == g_pids).expand_as(dist), 1, index)
    return index.numpy(), correct.numpy().astype(bool)
