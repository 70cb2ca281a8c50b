"""The DSAG-Stream of DSA-reID (Sec. 3.2.1, Table 1): 24 DSAP-images through grouped branches and two merges."""
import torch
import torch.nn as nn

from ..dense.parts import MERGE_LEVEL1, MERGE_LEVEL2, NUM_CHARTS, merge_matrix
from .dsa_branches import BRANCHES, NUM_PARTS, lookup
from .layers import GroupedBasicBlock, init_conv_bn, make_grouped_stage

__all__ = ["DSAGStream", "DSAG_WIDTHS", "scaled_widths"]

# DSAG-Stream widths of Table 1 (per branch): conv1, conv2, conv3_x, conv4_x, conv5_g, conv5_l.
DSAG_WIDTHS = (32, 64, 64, 128, 2048, 256)


def scaled_widths(multiplier):
    """Every width of Table 1 times ``multiplier`` (rounded, at least 1)."""
    return tuple(max(1, int(round(w * multiplier))) for w in DSAG_WIDTHS)


class DSAGStream(nn.Module):
    """Densely semantically aligned guiding stream, Table 1 (Sec. 3.2.1).

    Args:
        widths (tuple): per-branch widths ``(conv1, conv2, conv3_x, conv4_x, conv5_g, conv5_l)``;
            Table 1 is ``(32, 64, 64, 128, 2048, 256)``.
        branches (str): which heads to build (``'both'``, ``'global'``, ``'local'``).

    ``forward(dsap)`` takes ``[B, 24, 3, S, S]`` (S = 32) and returns ``{'g': dG [B, conv5_g],
    'l': dL [B, 8, conv5_l]}``. :meth:`stages` returns every intermediate output as well.
    """

    def __init__(self, widths=DSAG_WIDTHS, branches="both"):
        super().__init__()
        c1, c2, c3, c4, c5g, c5l = widths
        self.widths = tuple(widths)
        self.branches = lookup(BRANCHES, branches, "branches")
        n24, n13, n8 = NUM_CHARTS, len(MERGE_LEVEL1), NUM_PARTS
        self.conv1 = nn.Sequential(
            nn.Conv2d(3 * n24, c1 * n24, 5, padding=2, groups=n24, bias=False),
            nn.BatchNorm2d(c1 * n24),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(c1 * n24, c2 * n24, 3, padding=1, groups=n24, bias=False),
            nn.BatchNorm2d(c2 * n24),
            nn.ReLU(inplace=True),
        )
        self.conv3 = make_grouped_stage(GroupedBasicBlock, c2, c3, n24, 2, stride=2)
        self.conv4 = make_grouped_stage(GroupedBasicBlock, c3, c4, n13, 2, stride=2)
        if "g" in self.branches:
            self.conv5_g = make_grouped_stage(GroupedBasicBlock, n8 * c4, c5g, 1, 2, stride=1)
        if "l" in self.branches:
            self.conv5_l = make_grouped_stage(GroupedBasicBlock, c4, c5l, n8, 2, stride=1)
        singletons = tuple((c,) for c in range(1, n24 + 1))
        # Not persistent: the merge matrices are facts of the part layout, not learned state.
        self.register_buffer("merge1", merge_matrix(singletons, MERGE_LEVEL1), persistent=False)
        self.register_buffer("merge2", merge_matrix(MERGE_LEVEL1, MERGE_LEVEL2), persistent=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        init_conv_bn(self)

    @staticmethod
    def merge(x, matrix):
        """Element-wise add of branch groups (Sec. 3.2.1): ``[B, Gs*C, H, W] -> [B, Gd*C, H, W]``."""
        b, _, h, w = x.shape
        gd, gs = matrix.shape
        y = torch.einsum("ds,bschw->bdchw", matrix.to(x.dtype), x.view(b, gs, -1, h, w))
        return y.reshape(b, -1, h, w)

    def stages(self, dsap):
        """Every stage's output in Table 1 order (dict), ending with ``'g'``/``'l'``."""
        if dsap.dim() != 5 or dsap.shape[1] != NUM_CHARTS or dsap.shape[2] != 3:
            raise ValueError(
                f"DSAG-Stream expects DSAP-images of shape [B, {NUM_CHARTS}, 3, S, S], got {list(dsap.shape)}"
            )
        out = {}
        x = dsap.flatten(1, 2)
        out["conv1"] = x = self.conv1(x)
        out["conv2"] = x = self.conv2(x)
        out["conv3"] = x = self.conv3(x)
        out["merge1"] = x = self.merge(x, self.merge1)
        out["conv4"] = x = self.conv4(x)
        out["merge2"] = x = self.merge(x, self.merge2)
        if "g" in self.branches:
            out["g"] = self.pool(self.conv5_g(x)).flatten(1)
        if "l" in self.branches:
            out["l"] = self.pool(self.conv5_l(x)).flatten(1).view(-1, NUM_PARTS, self.widths[5])
        return out

    def forward(self, dsap):
        out = self.stages(dsap)
        return {k: out[k] for k in self.branches}
