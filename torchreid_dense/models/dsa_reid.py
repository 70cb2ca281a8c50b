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

Modules: :mod:`.dsa_mf_stream`, :mod:`.dsa_dsag_stream`, :mod:`.dsa_fusion` (fusions and inference graphs),
:mod:`.dsa_branches` (the layout they share); this one holds the model, its builders and re-exports their names.

Examples::

    >>> import torch, torchreid_dense
    >>> from torchreid_dense.models.dsa_reid import build_dsa_reid
    >>> model = build_dsa_reid(10, backbone="resnet18", pretrained=False).eval()
    >>> model(torch.rand(2, 3, 128, 64)).shape
    torch.Size([2, 1024])
"""
import torch.nn as nn

from ..registry import MODELS
from .dsa_branches import NUM_PARTS, lookup
from .dsa_dsag_stream import DSAG_WIDTHS, DSAGStream, scaled_widths
from .dsa_fusion import FUSIONS, AddFusion, ConcatFCFusion, FusedInference, MFInference, concat_features
from .dsa_mf_stream import BACKBONES, MFStream, remove_last_stride
from .layers import TwoFCClassifier

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

# streams -> whether the DSAG-Stream is built.
_STREAMS = {"two": True, "mf": False}

# Inference feature: which features ('f' MF-Stream, 'z' fused) of which branches; Table 3 rows.
_FEATURES = {
    "mf": ("f", ("g", "l")),  # DSA-reID (Only MF-Stream), the final scheme
    "fused": ("z", ("g", "l")),  # DSA (Two streams fused)
    "fused_global": ("z", ("g",)),  # DSA-Global (Joint)
    "fused_local": ("z", ("l",)),  # DSA-Local (Joint)
}


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
        self._feature_source, keys = lookup(_FEATURES, feature, "feature")
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
            return concat_features(f, self._feature_keys)
        z = self.fusion(f, self._dsag(dsap)) if self.dsag_stream is not None else f
        if not self.training:
            return concat_features(z, self._feature_keys)
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


def build_dsa_reid(num_classes, backbone="resnet50", pretrained=True, dsag_width=None, fusion="add", feature="mf",
                   branches="both", streams="two", classifier_hidden=None, imagenet_global_head=False):
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
    spec = lookup(BACKBONES, backbone, "backbone")
    with_dsag = lookup(_STREAMS, streams, "streams")
    fusion_cls = lookup(FUSIONS, fusion, "fusion")
    if dsag_width is None:
        dsag_width = spec["dsag_width"]
    widths = _fusable_dsag_widths(spec, backbone, dsag_width) if with_dsag else None
    mf = MFStream(backbone, pretrained, branches, imagenet_global_head)
    dsag = DSAGStream(widths, branches) if with_dsag else None
    fuse = fusion_cls(mf.global_dim, mf.part_dim, branches) if with_dsag else None
    return DSAReID(mf, dsag, fuse, num_classes, classifier_hidden or spec["classifier_hidden"], feature, branches)


def _fusable_dsag_widths(spec, backbone, dsag_width):
    """Table 1's widths times ``dsag_width``, checked against the MF-Stream: the add fusion needs dG = fG and
    dL,i = fL,i."""
    widths = scaled_widths(dsag_width)
    global_dim, part_dim = spec["conv5_channels"], spec["conv5_channels"] // NUM_PARTS
    if (widths[4], widths[5]) != (global_dim, part_dim):
        raise ValueError(
            f"the fusion needs dG = fG and dL,i = fL,i, but dsag_width={dsag_width} gives "
            f"conv5_g={widths[4]}, conv5_l={widths[5]} against the {backbone} MF-Stream's "
            f"{global_dim}, {part_dim}; use dsag_width={global_dim / DSAG_WIDTHS[4]:g}"
        )
    return widths


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
