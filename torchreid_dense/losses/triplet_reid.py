"""Triplet ReID constraint on SA-Dec feature maps (SAN, AAAI 2020, Sec. 3.2, Eq. 1)."""
import torch
import torch.nn as nn

from ..registry import LOSSES
from .terms import check_choice

__all__ = ["TripletReIDConstraint", "sample_triplets", "offset_triplets", "identity_groups", "TR_NORMALIZATIONS",
           "TR_PAIRINGS", "TR_ANCHOR_REDUCTIONS"]

TR_NORMALIZATIONS = ("spatial", "all")  # squared distances over h*w (Eq. 1) or over c*h*w
TR_PAIRINGS = ("random", "offsets")  # a random positive/negative per anchor (the paper), or the authors' fixed offsets
TR_ANCHOR_REDUCTIONS = ("mean", "sum")  # over the anchors: mean (the project), or sum (the authors' code)
TR_OFFSET_BLOCKS = 4  # decoder blocks the authors' offset loop defines a pairing for


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


def identity_groups(pids):
    """``(P, K)`` of a batch of P identities x K consecutive images (RandomIdentitySampler's order), from the pid runs.

    Raises:
        ValueError: the runs of equal pids are not all of one length K >= 2 (a shuffled batch, K = 1, or a batch
            cut across identity groups); the message names the config keys to change.
    """
    _, counts = torch.unique_consecutive(pids.reshape(-1), return_counts=True)
    k = int(counts[0]) if counts.numel() else 0
    if k < 2 or not bool((counts == k).all()):
        shown = counts.tolist()
        raise ValueError(
            "san.tr_pairing 'offsets' (the SAN authors' fixed L_TR triplets) needs a P x K batch in identity order: "
            "K >= 2 consecutive images of each identity, as sampler.train_sampler 'RandomIdentitySampler' yields "
            "when train.batch_size is a multiple of sampler.num_instances; got runs of equal pids of lengths "
            f"{shown[:16]}{' ...' if len(shown) > 16 else ''}. Use that sampler, or san.tr_pairing 'random'")
    return counts.numel(), k


def _offset_slots(block, k):
    """(anchor, positive, negative-in-the-next-identity) image slots of ``block`` for K images per identity."""
    if block < TR_OFFSET_BLOCKS - 1:
        return block % k, (block + 1) % k, block % k
    return k - 1, 0, 0


def offset_triplets(pids, block):
    r"""The SAN authors' L_TR triplets of decoder block ``block`` (0-3), for any K (docs/san_authors_code.md §4).

    Their loop (main.py:410-420) takes anchors ``i = 0, K, ..., (P-2)K`` (every identity but the last) and the
    triplets ``(i, i+1, i+4)``, ``(i+1, i+2, i+5)``, ``(i+2, i+3, i+6)`` for blocks 1-3 and, for block 4,
    ``d(i, i+3) - d(i+3, i+4)``: the triplet (anchor ``i+3``, positive ``i``, negative ``i+4``). Its offsets are
    hard-coded for K = 4: at K = 2 block 2's positive and block 4's positive pair are other identities and the
    last anchor reads past the batch (IndexError); at K = 3 block 3's and block 4's positives are other identities,
    block 4's negative the same identity, and it reads past the batch; at K = 5 block 1's and block 4's negatives,
    at K = 6 blocks 1, 2 and 4's, and at K >= 7 (e.g. 8) every negative is the anchor's own identity.

    Generalisation (identical triplets at K = 4): with slot ``s`` = an image's position within its identity's K
    images, block ``b`` < 3 takes anchor slot ``b mod K``, positive slot ``(b + 1) mod K`` of the same identity
    and negative the anchor's slot in the next identity; block 3 takes anchor slot ``K - 1``, positive slot 0 of
    the same identity and negative slot 0 of the next identity (``d(i, i+K-1) - d(i+K-1, i+K)``). As in their
    loop, not cyclic: the anchors are the first P - 1 identities (the last one only gives negatives), one anchor
    per identity and block; for K > 4 slots 3 .. K-2 are never anchors.

    Args:
        pids (torch.Tensor): identities ``[B]`` of a P x K batch in identity order (see :func:`identity_groups`).
        block (int): decoder block, 0-based (0-3).

    Returns:
        (anchor, positive, negative) long tensors ``[P - 1]`` of batch indices, on ``pids``' device.

    Examples::

        >>> import torch
        >>> [t.tolist() for t in offset_triplets(torch.arange(3).repeat_interleave(4), 3)]
        [[3, 7], [0, 4], [4, 8]]
    """
    block = int(block)
    if not 0 <= block < TR_OFFSET_BLOCKS:
        raise ValueError(f"san.tr_pairing 'offsets' defines the authors' {TR_OFFSET_BLOCKS} decoder blocks (0-based "
                         f"0-{TR_OFFSET_BLOCKS - 1}); got block {block}: set san.tr_blocks <= {TR_OFFSET_BLOCKS}")
    p, k = identity_groups(pids)
    a, pos, neg = _offset_slots(block, k)
    first = torch.arange(p - 1, device=pids.device) * k  # first image of every anchor identity
    return first + a, first + pos, first + k + neg


@LOSSES.register("triplet_reid_constraint")
class TripletReIDConstraint(nn.Module):
    r"""Triplet ReID constraint :math:`L_{TR}^l` (SAN Sec. 3.2, Eq. 1) on one decoder feature map.

    ``max(||F(a)-F(p)||^2 / (h*w) - ||F(a)-F(n)||^2 / (h*w) + m, 0)``, the squared norm summing over all
    positions and channels, computed in fp32. ``pairing='random'`` (default, the paper) draws a random positive
    and a random negative for every anchor that has both in the batch (identities with a single image are not
    anchors); ``'offsets'`` takes the SAN authors' fixed triplets of the block (:func:`offset_triplets`, P x K
    batches in identity order only). The hinge terms are averaged (``anchor_reduction='mean'``) or summed
    (``'sum'``, the authors' code) over the anchors.

    Args:
        margin (float): the margin ``m`` (paper: 0.3).
        generator (torch.Generator, optional): default randomness for the positive/negative draw.
        normalize (str): ``'spatial'`` divides the squared distances by ``h*w`` (Eq. 1 as printed);
            ``'all'`` by ``c*h*w`` (a mean over every element, the authors' ``nn.MSELoss``, so the term's scale does
            not grow with the decoder's widths).
        pairing (str): ``'random'`` or ``'offsets'`` (config key ``san.tr_pairing``).
        anchor_reduction (str): ``'mean'`` or ``'sum'`` over the anchors (config key ``san.tr_anchor_reduction``).

    Examples::

        >>> import torch
        >>> crit = TripletReIDConstraint(margin=0.3)
        >>> feats = torch.zeros(4, 2, 3, 3); pids = torch.tensor([0, 0, 1, 1])
        >>> round(float(crit(feats, pids)), 4)
        0.3
        >>> authors = TripletReIDConstraint(0.3, normalize="all", pairing="offsets", anchor_reduction="sum")
        >>> round(float(authors(torch.arange(16.).view(16, 1, 1, 1), torch.arange(4).repeat_interleave(4), block=3)), 4)
        24.9
    """

    def __init__(self, margin=0.3, generator=None, normalize="spatial", pairing="random", anchor_reduction="mean"):
        super().__init__()
        if normalize not in TR_NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {TR_NORMALIZATIONS}; got '{normalize}'")
        self.margin = float(margin)
        self.generator = generator
        self.normalize = normalize
        self.pairing = check_choice("L_TR", "pairing", pairing, TR_PAIRINGS, "san.tr_pairing")
        self.anchor_reduction = check_choice("L_TR", "anchor_reduction", anchor_reduction, TR_ANCHOR_REDUCTIONS,
                                             "san.tr_anchor_reduction")

    def forward(self, feats, pids, generator=None, block=0):
        """
        Args:
            feats (torch.Tensor): decoder feature maps ``[B, C, H, W]``.
            pids (torch.Tensor): identities ``[B]``.
            generator (torch.Generator, optional): overrides the constructor's generator (``'random'`` pairing).
            block (int): the decoder block these maps come from, 0-based (``'offsets'`` pairing: its triplets).

        Returns:
            scalar tensor (zero, still attached to ``feats``, when no anchor is valid).
        """
        if feats.dim() != 4 or feats.shape[0] != pids.numel():
            raise ValueError(
                f"TripletReIDConstraint expects feature maps [B,C,H,W] and pids [B]; got "
                f"{tuple(feats.shape)} and {tuple(pids.shape)}"
            )
        pids = pids.to(feats.device)
        if self.pairing == "offsets":
            anchor, pos, neg = offset_triplets(pids, block)
            valid = None
            if anchor.numel() == 0:  # a single identity: no negative
                return feats.sum() * 0.0
        else:
            pos, neg, valid = sample_triplets(pids, generator or self.generator)
            if not bool(valid.any()):
                return feats.sum() * 0.0
        hw = feats.shape[-2] * feats.shape[-1] * (feats.shape[1] if self.normalize == "all" else 1)
        flat = feats.float().flatten(1)
        # rows are gathered with index_select: its backward is deterministic on several CPU threads (flat[idx]'s is not)
        anchors = flat if valid is not None else flat.index_select(0, anchor)
        d_ap = (anchors - flat.index_select(0, pos)).pow(2).sum(1) / hw
        d_an = (anchors - flat.index_select(0, neg)).pow(2).sum(1) / hw
        hinge = torch.relu(d_ap - d_an + self.margin)
        if valid is not None:
            hinge = hinge[valid]
        return hinge.sum() if self.anchor_reduction == "sum" else hinge.mean()
