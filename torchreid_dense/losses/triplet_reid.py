"""Triplet ReID constraint on SA-Dec feature maps (SAN, AAAI 2020, Sec. 3.2, Eq. 1)."""
import torch
import torch.nn as nn

from ..registry import LOSSES

__all__ = ["TripletReIDConstraint", "sample_triplets", "TR_NORMALIZATIONS"]

TR_NORMALIZATIONS = ("spatial", "all")  # squared distances over h*w (Eq. 1) or over c*h*w


def sample_triplets(pids, generator=None):
    """For every anchor, a random positive (same pid, other index) and a random negative (other pid).

    Args:
        pids (torch.Tensor): identities ``[B]``.
        generator (torch.Generator, optional): source of randomness (its device is used for sampling).

    Returns:
        (pos ``[B]`` long, neg ``[B]`` long, valid ``[B]`` bool): indices into the batch; ``valid``
        marks anchors that have at least one positive and one negative (the indices of the
        others are arbitrary and must be ignored).
    """
    pids = pids.reshape(-1)
    n = pids.numel()
    same = pids[:, None] == pids[None, :]
    pos_mask = same & ~torch.eye(n, dtype=torch.bool, device=pids.device)
    neg_mask = ~same
    valid = pos_mask.any(1) & neg_mask.any(1)
    # rows without a candidate get uniform weights so multinomial is defined; they are masked out
    masks = torch.stack([pos_mask, neg_mask]).float()
    masks[~masks.bool().any(-1)] = 1.0
    device = generator.device if generator is not None else pids.device
    idx = torch.multinomial(masks.reshape(2 * n, n).to(device), 1, generator=generator)
    idx = idx.reshape(2, n).to(pids.device)
    return idx[0], idx[1], valid


@LOSSES.register("triplet_reid_constraint")
class TripletReIDConstraint(nn.Module):
    r"""Triplet ReID constraint :math:`L_{TR}^l` (SAN Sec. 3.2, Eq. 1) on one decoder feature map.

    ``max(||F(a)-F(p)||^2 / (h*w) - ||F(a)-F(n)||^2 / (h*w) + m, 0)`` with a random positive and a
    random negative per anchor, the squared norm summing over all positions and channels,
    averaged over the anchors that have a positive and a negative in the batch (identities with a
    single image in the batch are not anchors). Computed in fp32.

    Args:
        margin (float): the margin ``m`` (paper: 0.3).
        generator (torch.Generator, optional): default randomness for the positive/negative draw.
        normalize (str): ``'spatial'`` divides the squared distances by ``h*w`` (Eq. 1 as printed);
            ``'all'`` by ``c*h*w`` (a mean over every element, so the term's scale does not grow with the
            decoder's widths).

    Examples::

        >>> import torch
        >>> crit = TripletReIDConstraint(margin=0.3)
        >>> feats = torch.zeros(4, 2, 3, 3); pids = torch.tensor([0, 0, 1, 1])
        >>> round(float(crit(feats, pids)), 4)
        0.3
    """

    def __init__(self, margin=0.3, generator=None, normalize="spatial"):
        super().__init__()
        if normalize not in TR_NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {TR_NORMALIZATIONS}; got '{normalize}'")
        self.margin = float(margin)
        self.generator = generator
        self.normalize = normalize

    def forward(self, feats, pids, generator=None):
        """
        Args:
            feats (torch.Tensor): decoder feature maps ``[B, C, H, W]``.
            pids (torch.Tensor): identities ``[B]``.
            generator (torch.Generator, optional): overrides the constructor's generator.

        Returns:
            scalar tensor (zero, still attached to ``feats``, when no anchor is valid).
        """
        if feats.dim() != 4 or feats.shape[0] != pids.numel():
            raise ValueError(
                f"TripletReIDConstraint expects feature maps [B,C,H,W] and pids [B]; got "
                f"{tuple(feats.shape)} and {tuple(pids.shape)}"
            )
        pos, neg, valid = sample_triplets(pids.to(feats.device), generator or self.generator)
        if not bool(valid.any()):
            return feats.sum() * 0.0
        hw = feats.shape[-2] * feats.shape[-1] * (feats.shape[1] if self.normalize == "all" else 1)
        flat = feats.float().flatten(1)
        d_ap = (flat - flat.index_select(0, pos)).pow(2).sum(1) / hw
        d_an = (flat - flat.index_select(0, neg)).pow(2).sum(1) / hw
        hinge = torch.relu(d_ap - d_an + self.margin)
        return hinge[valid].mean()
