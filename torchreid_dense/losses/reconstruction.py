"""Reconstruction loss L_Rec between the predicted and the (pseudo) ground-truth texture (SAN Sec. 3.2)."""
import torch.nn as nn

from ..registry import LOSSES

__all__ = ["ReconstructionLoss"]


@LOSSES.register("reconstruction")
class ReconstructionLoss(nn.Module):
    """L1 reconstruction loss L_Rec (SAN Sec. 3.2), optionally restricted to valid texels; fp32.

    Examples::

        >>> import torch
        >>> crit = ReconstructionLoss()
        >>> pred = torch.zeros(1, 3, 2, 2); target = torch.ones(1, 3, 2, 2)
        >>> float(crit(pred, target))
        1.0
    """

    def forward(self, pred, target, valid=None):
        """
        Args:
            pred (torch.Tensor): predicted texture ``[B, C, H, W]``.
            target (torch.Tensor): target texture, same shape.
            valid (torch.Tensor, optional): bool/0-1 mask ``[B, 1, H, W]`` (or ``[B, C, H, W]``) of
                texels that have a target (e.g. False everywhere for a missing texture).

        Returns:
            mean absolute error over the valid elements (a zero that keeps the graph of ``pred``
            when nothing is valid).
        """
        if pred.shape != target.shape:
            raise ValueError(
                f"ReconstructionLoss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} "
                "differ; the decoder's texture_size must match the texture data"
            )
        diff = (pred.float() - target.float()).abs()
        if valid is None:
            return diff.mean()
        mask = valid.to(device=diff.device, dtype=diff.dtype).expand_as(diff)
        count = mask.sum()
        if float(count) == 0.0:
            return pred.sum() * 0.0
        return (diff * mask).sum() / count
