"""Batch-hard triplet loss (Hermans et al. 2017), as used by DSA-reID (Sec. 3.2.4) and SAN (Sec. 3.2).

Same definition as torchreid's ``TripletLoss`` (Euclidean distance, hardest positive and hardest
negative per anchor, hinge with a margin) but fully vectorised and computed in fp32.
"""
import torch
import torch.nn as nn

from ..registry import LOSSES

__all__ = ["BatchHardTripletLoss"]


@LOSSES.register("batch_hard_triplet")
class BatchHardTripletLoss(nn.Module):
    """Batch-hard triplet loss ``mean_a max(0, max_p d(a, p) - min_n d(a, n) + margin)``.

    Args:
        margin (float): the margin (paper setting 0.3).

    Anchors without a positive (identities with one image in the batch) use d(a, p) = 0, like
    torchreid's implementation which takes the anchor itself as its hardest positive; anchors
    without a negative are left out.
    """

    def __init__(self, margin=0.3):
        super().__init__()
        self.margin = margin

    def forward(self, features, targets):
        x = features.float()
        sq = x.pow(2).sum(dim=1, keepdim=True)
        dist = (sq + sq.t() - 2.0 * x @ x.t()).clamp(min=1e-12).sqrt()
        same = targets.view(-1, 1) == targets.view(1, -1)
        dist_ap = dist.masked_fill(~same, float("-inf")).amax(dim=1)
        dist_an = dist.masked_fill(same, float("inf")).amin(dim=1)
        has_negative = torch.isfinite(dist_an)
        if not bool(has_negative.any()):
            return x.sum() * 0.0
        losses = torch.relu(dist_ap - dist_an + self.margin)
        return losses[has_negative].mean()
