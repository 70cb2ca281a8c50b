"""Shared building blocks: G parallel branches computed as one grouped layer, and a two-FC classifier.

A stage of G branches that "do not share weights" (DSA-reID Sec. 3.2.1) is a grouped convolution
with ``groups=G``: channel block ``g`` of the input only reaches channel block ``g`` of the output,
so no Python loop over branches is needed. Per-channel BatchNorm over the grouped channels is the
same as one BatchNorm per branch.
"""
import math

import torch
import torch.nn as nn

__all__ = [
    "GroupedBasicBlock",
    "GroupedBottleneck",
    "make_grouped_stage",
    "GroupedLinear",
    "TwoFCClassifier",
    "BNNeckClassifier",
    "FCEmbedding",
    "init_conv_bn",
    "init_xavier_conv_bn",
]


def _conv(in_per_group, out_per_group, groups, kernel_size, stride=1):
    """A bias-free grouped convolution of G branches, ``in_per_group -> out_per_group`` channels each."""
    return nn.Conv2d(
        in_per_group * groups,
        out_per_group * groups,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        groups=groups,
        bias=False,
    )


def _shortcut(in_per_group, out_per_group, groups, stride):
    """Identity, or a 1x1 grouped projection + BN when the shape changes (ResNet option B)."""
    if stride == 1 and in_per_group == out_per_group:
        return nn.Identity()
    return nn.Sequential(
        _conv(in_per_group, out_per_group, groups, 1, stride),
        nn.BatchNorm2d(out_per_group * groups),
    )


class _GroupedResidual(nn.Module):
    """A ResNet block for G independent branches at once: ``relu(bn_k(conv_k(...)) + shortcut(x))``, each
    conv but the last followed by BN + ReLU, the last by BN only.

    Args:
        convs: ``(in_per_group, out_per_group, kernel_size, stride)`` of ``conv1``, ``conv2``, ... in order.
        groups (int): number of branches G; tensors carry ``G * channels`` channels, branch-major.
        shortcut: ``(in_per_group, out_per_group, stride)`` of the shortcut (see :func:`_shortcut`).
    """

    def __init__(self, convs, groups, shortcut):
        super().__init__()
        self.depth = len(convs)
        for i, (cin, cout, kernel_size, stride) in enumerate(convs, 1):
            setattr(self, f"conv{i}", _conv(cin, cout, groups, kernel_size, stride))
            setattr(self, f"bn{i}", nn.BatchNorm2d(cout * groups))
        self.relu = nn.ReLU(inplace=True)
        cin, cout, stride = shortcut
        self.shortcut = _shortcut(cin, cout, groups, stride)

    def forward(self, x):
        out = x
        for i in range(1, self.depth + 1):
            out = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(out))
            if i < self.depth:
                out = self.relu(out)
        return self.relu(out + self.shortcut(x))


class GroupedBasicBlock(_GroupedResidual):
    """ResNet basic block [3x3; 3x3] for G independent branches at once (He et al. CVPR 2016).

    Args:
        in_per_group (int): input channels of one branch.
        out_per_group (int): output channels of one branch.
        groups (int): number of branches G; tensors carry ``G * channels`` channels, branch-major.
        stride (int): stride of the first convolution (down-sampling).
    """

    def __init__(self, in_per_group, out_per_group, groups=1, stride=1):
        convs = [(in_per_group, out_per_group, 3, stride), (out_per_group, out_per_group, 3, 1)]
        super().__init__(convs, groups, (in_per_group, out_per_group, stride))


class GroupedBottleneck(_GroupedResidual):
    """ResNet bottleneck [1x1; 3x3; 1x1] for G independent branches at once (He et al. CVPR 2016).

    Args:
        in_per_group (int): input channels of one branch.
        mid_per_group (int): bottleneck width of one branch.
        out_per_group (int): output channels of one branch.
        groups (int): number of branches G.
        stride (int): stride of the 3x3 convolution (torchvision's ResNet v1.5 placement).
    """

    def __init__(self, in_per_group, mid_per_group, out_per_group, groups=1, stride=1):
        convs = [(in_per_group, mid_per_group, 1, 1), (mid_per_group, mid_per_group, 3, stride),
                 (mid_per_group, out_per_group, 1, 1)]
        super().__init__(convs, groups, (in_per_group, out_per_group, stride))


def make_grouped_stage(block, in_per_group, out_per_group, groups, num_blocks, stride=1, expansion=None):
    """A ResNet stage ``conv{n}_x`` of ``num_blocks`` blocks over G branches; down-sampling in its first block.

    Args:
        block: :class:`GroupedBasicBlock` or :class:`GroupedBottleneck`.
        in_per_group (int): input channels of one branch.
        out_per_group (int): output channels of one branch.
        groups (int): number of branches G.
        num_blocks (int): blocks stacked.
        stride (int): stride of the first block.
        expansion (int, optional): for bottlenecks, ``out / mid`` (4 in ResNet-50).

    Returns:
        nn.Sequential
    """
    blocks = []
    for i in range(num_blocks):
        cin = in_per_group if i == 0 else out_per_group
        s = stride if i == 0 else 1
        if block is GroupedBottleneck:
            blocks.append(block(cin, out_per_group // (expansion or 4), out_per_group, groups, s))
        else:
            blocks.append(block(cin, out_per_group, groups, s))
    return nn.Sequential(*blocks)


def init_conv_bn(module):
    """Random initialisation of a freshly built stage: Kaiming (fan-out) convs, BN weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_xavier_conv_bn(module, gain=0.02):
    """The SAN authors' decoder init (docs/san_authors_code.md §3.3): Xavier-normal convs at ``gain`` with zero bias,
    BN weight N(1, ``gain``) and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


class GroupedLinear(nn.Module):
    """G independent linear layers applied as one batched matmul: ``[B, G, in] -> [B, G, out]``.

    Group ``g`` has its own weight ``weight[g]`` of shape ``[in, out]``; initialised like ``nn.Linear``
    (or with ``std`` when given).
    """

    def __init__(self, groups, in_features, out_features, bias=True, std=None):
        super().__init__()
        self.groups = groups
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(groups, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(groups, out_features)) if bias else None
        self.reset_parameters(std)

    def reset_parameters(self, std=None):
        bound = 1.0 / math.sqrt(self.in_features)
        if std is None:
            nn.init.uniform_(self.weight, -bound, bound)
        else:
            nn.init.normal_(self.weight, 0.0, std)
        if self.bias is not None:
            if std is None:
                nn.init.uniform_(self.bias, -bound, bound)
            else:
                nn.init.zeros_(self.bias)

    def forward(self, x):
        out = torch.einsum("bgi,gio->bgo", x, self.weight)
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self):
        return f"groups={self.groups}, in_features={self.in_features}, out_features={self.out_features}"


class TwoFCClassifier(nn.Module):
    """ID classifier of two FC layers, FC -> BN -> ReLU -> FC, logits for a softmax (DSA-reID Sec. 3.2.4).

    The paper says "two fully connected layers followed by a SoftMax"; the hidden BN + ReLU is this
    project's choice (a non-linearity makes the two layers more than one linear map).
    With ``groups > 1`` it is G independent classifiers (one per part feature) run as one batched matmul.

    Args:
        in_features (int): feature dimension (per group).
        num_classes (int): number of identities.
        hidden_features (int): width of the hidden layer.
        groups (int): number of independent classifiers G.

    Input ``[B, in]`` (groups=1) or ``[B, G, in]`` / ``[B, G*in]`` (groups=G); output ``[B, num_classes]``
    (groups=1) or ``[B, G, num_classes]``.
    """

    def __init__(self, in_features, num_classes, hidden_features=512, groups=1):
        super().__init__()
        self.groups = groups
        self.in_features = in_features
        self.fc1 = GroupedLinear(groups, in_features, hidden_features)
        self.bn = nn.BatchNorm1d(groups * hidden_features)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = GroupedLinear(groups, hidden_features, num_classes, std=0.001)

    def forward(self, x):
        b = x.shape[0]
        h = self.fc1(x.reshape(b, self.groups, self.in_features))
        h = self.relu(self.bn(h.reshape(b, -1))).reshape(b, self.groups, -1)
        out = self.fc2(h)
        return out[:, 0] if self.groups == 1 else out


class BNNeckClassifier(nn.Module):
    """BNNeck ID classifier (Luo et al., "Bag of Tricks", CVPRW 2019): BN on the feature, then a bias-free FC.

    The triplet loss stays on the feature before the BN and the ID loss sees the normalised one, so the two
    losses stop pulling one embedding in two directions. The BN's shift is frozen at 0 (as in the strong
    baseline) and the FC starts at std 0.001.
    """

    def __init__(self, in_features, num_classes):
        super().__init__()
        self.in_features, self.out_features = in_features, num_classes
        self.bn = nn.BatchNorm1d(in_features)
        self.bn.bias.requires_grad_(False)
        self.fc = nn.Linear(in_features, num_classes, bias=False)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        nn.init.normal_(self.fc.weight, 0.0, 0.001)

    def forward(self, x):
        return self.fc(self.bn(x))


class FCEmbedding(nn.Module):
    """FC -> BN1d -> ReLU on the pooled feature, no dropout: torchreid's ``resnet50_fc512`` head as the SAN authors
    use it (docs/san_authors_code.md §3.1). FC weights N(0, 0.01) with zero bias, BN weight 1 and bias 0.

    Input ``[B, in_features]``, output ``[B, out_features]`` (non-negative, post-ReLU).
    """

    def __init__(self, in_features, out_features=512):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.fc = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)
        self.relu = nn.ReLU(inplace=True)
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x):
        return self.relu(self.bn(self.fc(x)))
