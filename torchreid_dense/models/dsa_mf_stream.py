"""The MF-Stream of DSA-reID (Sec. 3.2.2): ResNet to conv4_x, a global conv5_x branch and 8 part branches."""
import torch.nn as nn

from .dsa_branches import BRANCHES, NUM_PARTS, lookup
from .layers import GroupedBasicBlock, GroupedBottleneck, init_conv_bn, make_grouped_stage
from .pretrained import imagenet_resnet

__all__ = ["MFStream", "remove_last_stride", "BACKBONES"]

# Per-backbone facts: torchvision model name, conv4_x / conv5_x widths, part-branch block,
# and the defaults of the DSAG-Stream width multiplier and the classifiers' hidden width.
BACKBONES = {
    # dsag_width 1.0: Table 1 as printed
    "resnet50": dict(arch="resnet50", f_channels=1024, conv5_channels=2048, local_block=GroupedBottleneck,
                     conv5_blocks=3, dsag_width=1.0, classifier_hidden=512),
    # dsag_width 0.25: every Table 1 width / 4, so dG = 512 and dL,i = 64 as in the MF-Stream
    "resnet18": dict(arch="resnet18", f_channels=256, conv5_channels=512, local_block=GroupedBasicBlock,
                     conv5_blocks=2, dsag_width=0.25, classifier_hidden=256),
}


class MFStream(nn.Module):
    """Main full-image stream (Sec. 3.2.2): backbone to conv4_x, global conv5_x branch, 8 part branches.

    Args:
        backbone (str): ``'resnet50'`` (paper) or ``'resnet18'``.
        pretrained (bool or str): ImageNet weights for conv1..conv4_x: True = torchvision's file (torch hub
            download), a path = a local copy of it (:func:`~torchreid_dense.models.pretrained.imagenet_resnet`).
        branches (str): ``'both'``, ``'global'`` or ``'local'`` (Table 3 single-branch ablations).
        imagenet_global_head (bool): also copy ImageNet conv5_x into the global branch. The paper
            initialises the whole head randomly (Sec. 4.2), so this is off by default.

    The part branches are always randomly initialised: every ImageNet conv5_x filter mixes all
    conv4_x channels, so a 1/8-width branch on one channel slice has no exact counterpart to copy.

    ``forward(imgs)`` returns a dict with ``f_g`` ``[B, C5]`` and/or ``f_l`` ``[B, 8, C5/8]``.
    """

    def __init__(self, backbone="resnet50", pretrained=True, branches="both", imagenet_global_head=False):
        super().__init__()
        spec = lookup(BACKBONES, backbone, "backbone")
        self.branches = lookup(BRANCHES, branches, "branches")
        net = imagenet_resnet(spec["arch"], pretrained, what=f"DSA-reID MF-Stream ({backbone})")
        self.backbone = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3
        )
        self.f_channels = spec["f_channels"]
        self.global_dim = spec["conv5_channels"]
        self.part_dim = spec["conv5_channels"] // NUM_PARTS
        if "g" in self.branches:
            conv5 = net.layer4
            if not imagenet_global_head:
                init_conv_bn(conv5)
            remove_last_stride(conv5)
            self.global_branch = conv5
        if "l" in self.branches:
            self.local_branch = make_grouped_stage(
                spec["local_block"],
                self.f_channels // NUM_PARTS,
                self.part_dim,
                NUM_PARTS,
                spec["conv5_blocks"],
                stride=1,
            )
            init_conv_bn(self.local_branch)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, imgs):
        fmap = self.backbone(imgs)
        out = {}
        if "g" in self.branches:
            out["g"] = self.pool(self.global_branch(fmap)).flatten(1)
        if "l" in self.branches:
            out["l"] = self.pool(self.local_branch(fmap)).flatten(1).view(-1, NUM_PARTS, self.part_dim)
        return out


def remove_last_stride(layer):
    """Set conv5_x's down-sampling stride to 1 (Sec. 4.2, after [35]); works for both block types."""
    first = layer[0]
    conv = first.conv2 if hasattr(first, "conv3") else first.conv1
    conv.stride = (1, 1)
    if first.downsample is not None:
        first.downsample[0].stride = (1, 1)
