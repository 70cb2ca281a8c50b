"""DSA-reID: densely semantically aligned person re-ID (Zhang et al., CVPR 2019).

Two streams trained jointly (Sec. 3.2, Fig. 3):

- ``mf_stream`` (Sec. 3.2.2): ResNet conv1..conv4_x -> F, then a global branch (conv5_x, last stride
  removed) -> fG and 8 part-aware branches (conv5_x with 1/8 of the channels, branch i on the i-th
  channel slice of F) -> fL,i. Kept at inference: the feature is ``[fG, fL]``.
- ``dsag_stream`` (Sec. 3.2.1, Table 1): 24 DSAP-images -> 24 branches -> level-1 merge (24 -> 13)
  -> 13 branches -> level-2 merge (13 -> 8) -> D -> conv5_g -> dG and conv5_l -> dL,i.
  Only used for training.

Fusion (Sec. 3.2.3): ``zG = fG + dG``, ``zL = fL + dL``. Every multi-branch stage is one grouped
convolution; the merges are one einsum with the 0/1 merge matrix.

Examples::

    >>> import torch, torchreid_dense
    >>> from torchreid_dense.models.dsa_reid import build_dsa_reid
    >>> model = build_dsa_reid(10, backbone="resnet18", pretrained=False).eval()
    >>> model(torch.rand(2, 3, 128, 64)).shape
    torch.Size([2, 1024])
"""
import torch
import torch.nn as nn

from ..dense.parts import MERGE_LEVEL1, MERGE_LEVEL2, NUM_CHARTS, merge_matrix
from ..registry import MODELS
from .layers import (
    GroupedBasicBlock,
    GroupedBottleneck,
    TwoFCClassifier,
    init_conv_bn,
    make_grouped_stage,
)
from .pretrained import imagenet_resnet

__all__ = [
    "MFStream",
    "DSAGStream",
    "AddFusion",
    "ConcatFCFusion",
    "DSAReID",
    "MFInference",
    "FusedInference",
    "build_dsa_reid",
    "remove_last_stride",
    "dsa_reid",
    "dsa_reid_r18",
    "dsa_cfg_kwargs",
]

NUM_PARTS = len(MERGE_LEVEL2)  # 8 merged body parts

# Per-backbone facts: torchvision model name, conv4_x / conv5_x widths, part-branch block,
# and the defaults of the DSAG-Stream width multiplier and the classifiers' hidden width.
_BACKBONES = {
    # dsag_width 1.0: Table 1 as printed
    "resnet50": dict(arch="resnet50", f_channels=1024, conv5_channels=2048, local_block=GroupedBottleneck,
                     conv5_blocks=3, dsag_width=1.0, classifier_hidden=512),
    # dsag_width 0.25: every Table 1 width / 4, so dG = 512 and dL,i = 64 as in the MF-Stream
    "resnet18": dict(arch="resnet18", f_channels=256, conv5_channels=512, local_block=GroupedBasicBlock,
                     conv5_blocks=2, dsag_width=0.25, classifier_hidden=256),
}

# DSAG-Stream widths of Table 1 (per branch): conv1, conv2, conv3_x, conv4_x, conv5_g, conv5_l.
DSAG_WIDTHS = (32, 64, 64, 128, 2048, 256)

_BRANCHES = {"both": ("g", "l"), "global": ("g",), "local": ("l",)}


def _lookup(table, name, what):
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} '{name}'; choose one of {sorted(table)}") from None


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
        spec = _lookup(_BACKBONES, backbone, "backbone")
        self.branches = _lookup(_BRANCHES, branches, "branches")
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
        self.branches = _lookup(_BRANCHES, branches, "branches")
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


class AddFusion(nn.Module):
    """Element-wise add of the two streams' features (Sec. 3.2.3): ``zG = fG + dG``, ``zL = fL + dL``.

    Parameter-free; takes the same constructor arguments as :class:`ConcatFCFusion`.
    """

    def __init__(self, global_dim, part_dim, branches="both"):
        super().__init__()

    def forward(self, f, d):
        return {k: f[k] + d[k] for k in f}


class ConcatFCFusion(nn.Module):
    """Concatenation + FC fusion, the worse ablation of Table 5: ``z = FC([f, d])`` per branch."""

    def __init__(self, global_dim, part_dim, branches="both"):
        super().__init__()
        keys = _lookup(_BRANCHES, branches, "branches")
        self.part_dim = part_dim
        dims = {"g": global_dim, "l": NUM_PARTS * part_dim}
        self.fc = nn.ModuleDict({k: nn.Linear(2 * dims[k], dims[k]) for k in keys})

    def forward(self, f, d):
        z = {}
        for k, fc in self.fc.items():  # at most two entries: the global and the local branch
            b = f[k].shape[0]
            zk = fc(torch.cat([f[k].reshape(b, -1), d[k].reshape(b, -1)], 1))
            z[k] = zk.view(b, NUM_PARTS, self.part_dim) if k == "l" else zk
        return z


# streams -> whether the DSAG-Stream is built.
_STREAMS = {"two": True, "mf": False}

_FUSIONS = {"add": AddFusion, "concat_fc": ConcatFCFusion}

# Inference feature: which features ('f' MF-Stream, 'z' fused) of which branches; Table 3 rows.
_FEATURES = {
    "mf": ("f", ("g", "l")),  # DSA-reID (Only MF-Stream), the final scheme
    "fused": ("z", ("g", "l")),  # DSA (Two streams fused)
    "fused_global": ("z", ("g",)),  # DSA-Global (Joint)
    "fused_local": ("z", ("l",)),  # DSA-Local (Joint)
}


def _concat(feats, keys):
    """``[fG, fL]`` (or ``[zG, zL]``) flattened and concatenated, for the keys present."""
    return torch.cat([feats[k].flatten(1) for k in keys if k in feats], 1)


class MFInference(nn.Module):
    """The inference graph of DSA-reID: the MF-Stream alone, ``imgs -> [fG, fL]`` (Sec. 3.2.4)."""

    def __init__(self, mf_stream):
        super().__init__()
        self.mf_stream = mf_stream

    def forward(self, imgs):
        return _concat(self.mf_stream(imgs), ("g", "l"))


class FusedInference(nn.Module):
    """Two-stream inference graph (Table 3 "fused" rows): ``(imgs, dsap) -> [zG, zL]`` (or one of them)."""

    def __init__(self, mf_stream, dsag_stream, fusion, keys=("g", "l")):
        super().__init__()
        self.mf_stream = mf_stream
        self.dsag_stream = dsag_stream
        self.fusion = fusion
        self.keys = tuple(keys)

    def forward(self, imgs, dsap):
        return _concat(self.fusion(self.mf_stream(imgs), self.dsag_stream(dsap)), self.keys)


class DSAReID(nn.Module):
    """DSA-reID (CVPR 2019): MF-Stream + DSAG-Stream, fused features, two-FC ID classifiers.

    Use :func:`build_dsa_reid` (or the registered names ``dsa_reid`` / ``dsa_reid_r18``).

    ``forward(imgs, dsap=None)``:

    - eval mode, ``feature='mf'``: ``[B, 4096] = [fG, fL]`` from the MF-Stream alone (no DSAP needed;
      ResNet-18: ``[B, 1024]``).
    - eval mode, ``feature='fused'`` (``'fused_global'``, ``'fused_local'``): ``[zG, zL]`` (``zG``, ``zL``);
      needs ``dsap``.
    - training: a dict with ``f_g [B, dG]``, ``f_l [B, 8, dL]``, ``z_g [B, dG]``, ``z_l [B, 8*dL]``,
      ``logits_fg [B, K]``, ``logits_fl [B, 8, K]``, ``logits_zg [B, K]``, ``logits_zl [B, K]``
      (only the keys of the built branches). Needs ``dsap [B, 24, 3, S, S]`` unless ``streams='mf'``.
    """

    def __init__(self, mf_stream, dsag_stream, fusion, num_classes, classifier_hidden=512,
                 feature="mf", branches="both"):
        super().__init__()
        self.mf_stream = mf_stream
        self.dsag_stream = dsag_stream
        self.fusion = fusion
        self.branches = branches
        self.feature = feature
        self._feature_source, keys = _lookup(_FEATURES, feature, "feature")
        self._feature_keys = tuple(k for k in keys if k in mf_stream.branches)
        if not self._feature_keys:
            raise ValueError(f"feature '{feature}' uses branches {keys}, but the model only has branches='{branches}'")
        if self._feature_source == "z" and dsag_stream is None:
            raise ValueError(f"feature '{feature}' needs the DSAG-Stream, but the model was built with streams='mf'")
        gdim, pdim = mf_stream.global_dim, mf_stream.part_dim
        cls = {}
        if "g" in mf_stream.branches:
            cls["fg"] = TwoFCClassifier(gdim, num_classes, classifier_hidden)
            cls["zg"] = TwoFCClassifier(gdim, num_classes, classifier_hidden)
        if "l" in mf_stream.branches:
            cls["fl"] = TwoFCClassifier(pdim, num_classes, classifier_hidden, groups=NUM_PARTS)
            cls["zl"] = TwoFCClassifier(NUM_PARTS * pdim, num_classes, classifier_hidden)
        self.classifiers = nn.ModuleDict(cls)

    @property
    def needs_dsap(self):
        """Whether training (and fused inference) consumes DSAP-images."""
        return self.dsag_stream is not None

    @property
    def eval_needs_dsap(self):
        """Whether the eval-mode feature is a fused one, so ``model(imgs, dsap)`` is needed at test time."""
        return self._feature_source == "z"

    def inference_module(self):
        """The module that computes the eval-mode feature, without classifiers (for counting and export).

        For ``feature='mf'`` it holds the MF-Stream only: no DSAG-Stream parameter is in the graph.
        """
        if self._feature_source == "f":
            return MFInference(self.mf_stream)
        return FusedInference(self.mf_stream, self.dsag_stream, self.fusion, self._feature_keys)

    def _dsag(self, dsap):
        if dsap is None:
            raise ValueError(
                "DSAReID needs DSAP-images (dsap [B, 24, 3, S, S]) for training and for the fused "
                "features: the DSAG-Stream's input. They come from the '<dataset>_dsap' data sets, e.g. "
                "ImageDataManager(sources='market1501_dsap') or 'synthreid_dsap', whose batches carry "
                "data['dsap']; eval-mode model(imgs) with feature='mf' needs none."
            )
        return self.dsag_stream(dsap)

    def forward(self, imgs, dsap=None):
        f = self.mf_stream(imgs)
        if not self.training and self._feature_source == "f":
            return _concat(f, self._feature_keys)
        z = self.fusion(f, self._dsag(dsap)) if self.dsag_stream is not None else f
        if not self.training:
            return _concat(z, self._feature_keys)
        out = {}
        if "g" in f:
            out.update(f_g=f["g"], z_g=z["g"])
            out["logits_fg"] = self.classifiers["fg"](f["g"])
            out["logits_zg"] = self.classifiers["zg"](z["g"])
        if "l" in f:
            out.update(f_l=f["l"], z_l=z["l"].flatten(1))
            out["logits_fl"] = self.classifiers["fl"](f["l"])
            out["logits_zl"] = self.classifiers["zl"](out["z_l"])
        return out


def build_dsa_reid(
    num_classes,
    backbone="resnet50",
    pretrained=True,
    dsag_width=None,
    fusion="add",
    feature="mf",
    branches="both",
    streams="two",
    classifier_hidden=None,
    imagenet_global_head=False,
):
    """Build DSA-reID with every option of the paper's ablations (Tables 3 and 5).

    Args:
        num_classes (int): training identities.
        backbone (str): MF-Stream backbone, ``'resnet50'`` (paper) or ``'resnet18'``.
        pretrained (bool or str): ImageNet-initialise the MF-Stream's conv1..conv4_x (True: torchvision download;
            a path: a local copy of torchvision's file).
        dsag_width (float): multiplier of every DSAG-Stream width of Table 1 (default 1.0 for
            ResNet-50, 0.25 for ResNet-18 so that dG = 512 and dL,i = 64 match the MF-Stream).
        fusion (str): ``'add'`` (paper) or ``'concat_fc'`` (Table 5 ablation).
        feature (str): eval-mode feature, ``'mf'`` ``[fG, fL]`` (paper), ``'fused'`` ``[zG, zL]``,
            ``'fused_global'`` ``zG`` or ``'fused_local'`` ``zL`` (Table 3).
        branches (str): ``'both'``, or ``'global'`` / ``'local'`` for DSA-Global/Local (Single).
        streams (str): ``'two'`` (DSA-reID) or ``'mf'``: no DSAG-Stream, the fused features are the
            MF-Stream's ("Baseline (Two branches)" of Table 3).
        classifier_hidden (int): hidden width of the two-FC classifiers (default 512; 256 for ResNet-18).
        imagenet_global_head (bool): copy ImageNet conv5_x into the global branch (paper: random).

    Returns:
        DSAReID
    """
    spec = _lookup(_BACKBONES, backbone, "backbone")
    with_dsag = _lookup(_STREAMS, streams, "streams")
    fusion_cls = _lookup(_FUSIONS, fusion, "fusion")
    dsag_width = spec["dsag_width"] if dsag_width is None else dsag_width
    classifier_hidden = classifier_hidden or spec["classifier_hidden"]
    widths = tuple(max(1, int(round(w * dsag_width))) for w in DSAG_WIDTHS)
    global_dim, part_dim = spec["conv5_channels"], spec["conv5_channels"] // NUM_PARTS
    if with_dsag and (widths[4], widths[5]) != (global_dim, part_dim):
        raise ValueError(
            f"the fusion needs dG = fG and dL,i = fL,i, but dsag_width={dsag_width} gives "
            f"conv5_g={widths[4]}, conv5_l={widths[5]} against the {backbone} MF-Stream's "
            f"{global_dim}, {part_dim}; use dsag_width={global_dim / DSAG_WIDTHS[4]:g}"
        )
    mf = MFStream(backbone, pretrained, branches, imagenet_global_head)
    dsag = DSAGStream(widths, branches) if with_dsag else None
    fuse = fusion_cls(global_dim, part_dim, branches) if with_dsag else None
    return DSAReID(mf, dsag, fuse, num_classes, classifier_hidden, feature, branches)


def dsa_cfg_kwargs(cfg):
    """Builder keyword arguments from the config: ``dsa.fusion``, ``dsa.feature``, ``dsa.branches``,
    ``dsa.streams`` and ``dsa.dsag_width`` (0 = the backbone's default width)."""
    kwargs = {"fusion": cfg.dsa.fusion, "feature": cfg.dsa.feature, "branches": cfg.dsa.branches,
              "streams": cfg.dsa.streams}
    if cfg.dsa.dsag_width:
        kwargs["dsag_width"] = float(cfg.dsa.dsag_width)
    return kwargs


@MODELS.register("dsa_reid", engine="dsa", cfg_kwargs=dsa_cfg_kwargs)
def dsa_reid(num_classes, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
    """DSA-reID on ResNet-50 as in the paper (MF-Stream ImageNet-initialised when ``pretrained``).

    ``loss`` and ``use_gpu`` are torchreid's builder arguments; the training outputs are always the
    dict that :class:`torchreid_dense.losses.DSALoss` consumes.
    """
    return build_dsa_reid(num_classes, backbone="resnet50", pretrained=pretrained, **kwargs)


@MODELS.register("dsa_reid_r18", engine="dsa", cfg_kwargs=dsa_cfg_kwargs)
def dsa_reid_r18(num_classes, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
    """DSA-reID on ResNet-18 with every DSAG-Stream width divided by 4 (trains on a CPU in minutes)."""
    return build_dsa_reid(num_classes, backbone="resnet18", pretrained=pretrained, **kwargs)
