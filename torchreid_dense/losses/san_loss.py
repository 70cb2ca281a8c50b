"""The combined SAN criterion (SAN, AAAI 2020, Sec. 3.2 "Training Scheme")."""
import torch.nn as nn

from ..registry import LOSSES
from ..utils.distributed import all_gather_tensor, all_gather_with_grad
from .hard_mine_triplet import BatchHardTripletLoss
from .reconstruction import ReconstructionLoss
from .terms import check_choice, check_weights, id_criterion
from .triplet_reid import TR_ANCHOR_REDUCTIONS, TR_PAIRINGS, TripletReIDConstraint

__all__ = ["SANLoss"]

_TR_REDUCTIONS = ("mean", "sum")


@LOSSES.register("san")
class SANLoss(nn.Module):
    r"""``L = w_id L_ID + w_tri L_Triplet + w_rec L_Rec + w_tr L_TR`` (SAN Sec. 3.2).

    Re-ID batches use ``(w_id, w_tri, w_rec, w_tr)`` (paper: 0.5, 1.5, 1, 1); PIT batches (synthetic
    pairs, no identities) use only ``pit_weight_rec`` (paper: weights 0, 0, 1, 0): their ID,
    triplet and TR terms are not computed at all, so they give no gradient to the classifier.
    A term whose weight is 0 is skipped (SAN-basic: ``weight_tr=0``). Under DDP the triplet and TR
    terms see the whole global P x K batch (features and decoder maps gathered from every rank).

    ``L_ID`` is torchreid's label-smoothed cross entropy on the logits, ``L_Triplet`` the plugin's
    vectorised :class:`BatchHardTripletLoss` on ``f``, ``L_Rec`` :class:`ReconstructionLoss` on the texture and
    ``L_TR`` :class:`TripletReIDConstraint` on each of ``outputs['dec_feats']`` (the first three
    SA-Dec blocks), averaged over the blocks (``tr_reduction='mean'``, so ``w_tr`` weighs one
    triplet-sized term) or summed (``'sum'``). The SAN authors' L_TR (docs/san_authors_code.md §4) is
    ``tr_pairing='offsets', tr_anchor_reduction='sum', tr_reduction='sum', tr_normalize='all'`` on all four blocks.

    Args:
        num_classes (int): training identities.
        weight_id, weight_triplet, weight_rec, weight_tr (float): re-ID batch weights.
        pit_weight_rec (float): reconstruction weight of PIT batches.
        margin (float): batch-hard triplet margin on f.
        tr_margin (float): Triplet ReID constraint margin.
        tr_reduction (str): ``'mean'`` or ``'sum'`` over the decoder blocks (``san.tr_reduction``).
        tr_pairing (str): ``'random'`` (the paper) or ``'offsets'`` (the authors' fixed triplets; P x K batches in
            identity order): see :class:`TripletReIDConstraint` (``san.tr_pairing``).
        tr_anchor_reduction (str): ``'mean'`` or ``'sum'`` (the authors') over the anchors of a block
            (``san.tr_anchor_reduction``).
        tr_normalize (str): ``'all'`` (default; the authors' code's MSE) or ``'spatial'`` (Eq. 1 as printed):
            see :class:`TripletReIDConstraint`.
        label_smooth (bool): label smoothing of the ID loss.
        use_gpu (bool): passed to torchreid's CrossEntropyLoss (targets on the GPU).
        generator (torch.Generator, optional): randomness of the TR positive/negative draw.
    """

    def __init__(
        self,
        num_classes,
        weight_id=0.5,
        weight_triplet=1.5,
        weight_rec=1.0,
        weight_tr=1.0,
        pit_weight_rec=1.0,
        margin=0.3,
        tr_margin=0.3,
        tr_reduction="mean",
        tr_normalize="all",
        tr_pairing="random",
        tr_anchor_reduction="mean",
        label_smooth=True,
        use_gpu=False,
        generator=None,
    ):
        super().__init__()
        weights = check_weights("SAN", weight_id=weight_id, weight_triplet=weight_triplet, weight_rec=weight_rec,
                                weight_tr=weight_tr, pit_weight_rec=pit_weight_rec)
        check_choice("SAN", "tr_reduction", tr_reduction, _TR_REDUCTIONS, "san.tr_reduction")
        check_choice("SAN", "tr_pairing", tr_pairing, TR_PAIRINGS, "san.tr_pairing")
        check_choice("SAN", "tr_anchor_reduction", tr_anchor_reduction, TR_ANCHOR_REDUCTIONS, "san.tr_anchor_reduction")
        self.weight_id, self.weight_triplet, self.weight_rec, self.weight_tr, self.pit_weight_rec = weights.values()
        self.tr_reduction = tr_reduction
        self.criterion_id = id_criterion(num_classes, label_smooth, use_gpu)
        self.criterion_triplet = BatchHardTripletLoss(margin=margin)
        self.criterion_rec = ReconstructionLoss()
        self.criterion_tr = TripletReIDConstraint(margin=tr_margin, generator=generator, normalize=tr_normalize,
                                                  pairing=tr_pairing, anchor_reduction=tr_anchor_reduction)

    def tr_loss(self, dec_feats, pids):
        """L_TR over the given decoder feature maps, reduced by ``tr_reduction``.

        Under DDP the maps are gathered from every rank (with gradient), so ``pids`` must be the
        global batch's (``all_gather_tensor`` of the local ones); without DDP both are the local batch. Block ``b``
        of ``dec_feats`` (0-based) gets the ``'offsets'`` pairing's triplets of block ``b``.
        """
        terms = [self.criterion_tr(all_gather_with_grad(f.float()), pids, block=b) for b, f in enumerate(dec_feats)]
        total = sum(terms[1:], terms[0])
        return total / len(terms) if self.tr_reduction == "mean" else total

    @property
    def uses_decoder(self):
        """Whether a re-ID batch's loss reads SA-Dec's outputs (L_Rec or L_TR on); the SA-Enc-alone control does not."""
        return self.weight_rec > 0 or self.weight_tr > 0

    def forward(self, outputs, pids=None, rec_target=None, rec_valid=None, pit=False):
        """
        Args:
            outputs (dict or Tensor): SAN training outputs (``logits``, ``feature``, ``dec_feats``,
                ``texture``), or a texture tensor (SAN-PG).
            pids (torch.Tensor): identities ``[B]`` (re-ID batches only).
            rec_target (torch.Tensor): reconstruction target, shaped like the texture.
            rec_valid (torch.Tensor, optional): validity mask ``[B,1,Ht,Wt]`` of the target.
            pit (bool): a PIT (synthetic pair) batch: reconstruction only.

        Returns:
            (total loss tensor, dict name -> detached scalar tensor of the unweighted components computed).
        """
        texture = outputs.get("texture") if isinstance(outputs, dict) else outputs  # None: SA-Dec skipped
        parts = {}
        total = 0.0
        w_rec = self.pit_weight_rec if pit else self.weight_rec
        if w_rec > 0:
            if rec_target is None:
                raise ValueError("SANLoss: the reconstruction term needs rec_target (a texture batch)")
            parts["loss_rec"] = self.criterion_rec(texture, rec_target, rec_valid)
            total = total + w_rec * parts["loss_rec"]
        if not pit:
            if pids is None:
                raise ValueError("SANLoss: re-ID batches need pids")
            local_pids = pids
            pids = all_gather_tensor(pids)  # triplet mining and L_TR see the global P x K batch under DDP
            if self.weight_id > 0:
                parts["loss_id"] = self.criterion_id(outputs["logits"].float(), local_pids)
                total = total + self.weight_id * parts["loss_id"]
            if self.weight_triplet > 0:
                parts["loss_triplet"] = self.criterion_triplet(all_gather_with_grad(outputs["feature"].float()), pids)
                total = total + self.weight_triplet * parts["loss_triplet"]
            if self.weight_tr > 0:
                parts["loss_tr"] = self.tr_loss(outputs["dec_feats"], pids)
                total = total + self.weight_tr * parts["loss_tr"]
        if not parts:
            raise ValueError(f"SANLoss: every weight of this {'PIT' if pit else 're-ID'} batch is 0")
        return total, {k: v.detach() for k, v in parts.items()}
