"""The joint DSA-reID criterion (DSA-reID, CVPR 2019, Sec. 3.2.4 and 4.2)."""
import torch.nn as nn

from ..models.dsa_branches import BRANCHES  # branches -> the feature branches ('g' global, 'l' part-aware/local)
from ..registry import LOSSES
from ..utils.distributed import all_gather_tensor, all_gather_with_grad
from .hard_mine_triplet import BatchHardTripletLoss
from .terms import check_weights, id_criterion

__all__ = ["DSALoss"]

# part_id_reduction -> how the 8 part ID losses ID(fL,i) become one term: 'mean' weighs all parts together by
# weight_id_mf, 'sum' weighs each part by weight_id_mf (the literal reading of Sec. 4.2's 0.5)
_PART_REDUCTIONS = ("mean", "sum")


@LOSSES.register("dsa")
class DSALoss(nn.Module):
    r"""``L = w_mf (ID(fG) + R_i ID(fL,i)) + w_tri (Tri(zG) + Tri(zL)) + w_fused (ID(zG) + ID(zL))``.

    Sec. 3.2.4: ID loss on the MF-Stream's fG and on each part feature fL,i (i = 1..8, reduced over
    the 8 parts by ``R`` = mean or sum, ``part_id_reduction``); ID loss and batch-hard triplet loss on the fused zG and zL. Paper weights
    (Sec. 4.2): 0.5 (ID on MF features), 1.5 (triplet), 1.0 (ID on fused features). The ID loss is
    torchreid's label-smoothed cross entropy, the triplet loss the plugin's vectorised
    :class:`BatchHardTripletLoss` (torchreid's definition), mined over the whole global P x K batch
    under DDP (features and pids gathered from every rank); both run in fp32 whatever the model's
    precision. A term of weight 0 is skipped.

    Args:
        num_classes (int): training identities.
        weight_id_mf (float): weight of the ID losses on fG and fL,i.
        weight_triplet (float): weight of the triplet losses on zG and zL.
        weight_id_fused (float): weight of the ID losses on zG and zL.
        label_smooth (bool): label smoothing (eps 0.1) of every ID loss.
        margin (float): triplet margin (paper: 0.3).
        branches (str): ``'both'``, ``'global'`` or ``'local'``: the terms of the branches the model
            has (Table 3 DSA-Global/Local (Single)).
        part_id_reduction (str): ``'sum'`` (default: each part weighs ``weight_id_mf``, the literal reading of
            the paper's 0.5) or ``'mean'`` (the 8 part ID losses weigh ``weight_id_mf`` together).
        use_gpu (bool): passed to torchreid's CrossEntropyLoss (puts its targets on the GPU).

    ``forward(outputs, pids)`` takes the training dict of :class:`~torchreid_dense.models.dsa_reid.DSAReID`
    and returns ``(total, components)``, the components being unweighted detached scalar tensors named
    ``loss_id_fg``, ``loss_id_fl``, ``loss_tri_zg``, ``loss_tri_zl``, ``loss_id_zg``, ``loss_id_zl``.
    """

    def __init__(
        self,
        num_classes,
        weight_id_mf=0.5,
        weight_triplet=1.5,
        weight_id_fused=1.0,
        label_smooth=True,
        margin=0.3,
        branches="both",
        part_id_reduction="sum",
        use_gpu=False,
    ):
        super().__init__()
        weights = check_weights("DSA", weight_id_mf=weight_id_mf, weight_triplet=weight_triplet,
                                weight_id_fused=weight_id_fused)
        if branches not in BRANCHES:
            raise ValueError(f"unknown branches '{branches}'; choose one of {sorted(BRANCHES)}")
        if part_id_reduction not in _PART_REDUCTIONS:
            raise ValueError(f"part_id_reduction must be one of {_PART_REDUCTIONS}; got '{part_id_reduction}'")
        self.part_id_reduction = part_id_reduction
        self.weight_id_mf, self.weight_triplet, self.weight_id_fused = weights.values()
        self.branches = branches
        self.criterion_id = id_criterion(num_classes, label_smooth, use_gpu)
        self.criterion_triplet = BatchHardTripletLoss(margin=margin)
        # (component name, weight, function of (outputs, pids)) for the branches present
        terms = {
            "g": (
                ("loss_id_fg", self.weight_id_mf, lambda o, y: self.id_loss(o["logits_fg"], y)),
                ("loss_tri_zg", self.weight_triplet, lambda o, y: self.triplet_loss(o["z_g"], y)),
                ("loss_id_zg", self.weight_id_fused, lambda o, y: self.id_loss(o["logits_zg"], y)),
            ),
            "l": (
                ("loss_id_fl", self.weight_id_mf, lambda o, y: self.part_id_loss(o["logits_fl"], y)),
                ("loss_tri_zl", self.weight_triplet, lambda o, y: self.triplet_loss(o["z_l"], y)),
                ("loss_id_zl", self.weight_id_fused, lambda o, y: self.id_loss(o["logits_zl"], y)),
            ),
        }
        self._terms = tuple(t for k in BRANCHES[branches] for t in terms[k] if t[1] > 0)
        if not self._terms:
            raise ValueError(f"every DSA loss weight is 0: {weights}")

    def id_loss(self, logits, pids):
        """Label-smoothed cross entropy of ``[B, K]`` logits, in fp32."""
        return self.criterion_id(logits.float(), pids)

    def part_id_loss(self, logits, pids):
        """Mean (or sum, ``part_id_reduction``) over the parts of the ID losses of ``[B, P, K]`` part logits."""
        b, p, k = logits.shape
        mean = self.criterion_id(logits.float().reshape(b * p, k), pids.repeat_interleave(p))
        return mean * p if self.part_id_reduction == "sum" else mean

    def triplet_loss(self, features, pids):
        """Batch-hard triplet loss on ``[B, D]`` features, in fp32, over the global batch under DDP."""
        return self.criterion_triplet(all_gather_with_grad(features.float().flatten(1)), all_gather_tensor(pids))

    def forward(self, outputs, pids):
        components = {}
        total = 0.0
        for name, weight, fn in self._terms:
            try:
                value = fn(outputs, pids)
            except KeyError as err:
                raise KeyError(
                    f"DSALoss(branches='{self.branches}') needs model output {err} for '{name}'; the model "
                    "was probably built with other branches: pass the model's branches to DSALoss"
                ) from None
            components[name] = value.detach()
            total = total + weight * value
        return total, components
