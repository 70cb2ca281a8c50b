"""SAN: Semantics Aligning Network (Jin et al., AAAI 2020), encoder SA-Enc + decoder SA-Dec.

Forward contract (all models built here):

* ``san`` / ``san_r18`` (``reid_head=True``):
    - eval mode: ``model(imgs)`` -> ``f`` ``[B, 2048]`` (``[B, 512]`` for ResNet-18), the globally
      average-pooled ``fe4``; the decoder and the classifier are not run, so inference costs
      exactly the baseline ResNet (last stride 1).
    - training mode: ``model(imgs)`` -> ``dict`` with ``logits`` ``[B, num_classes]``,
      ``feature`` (``f``), ``dec_feats`` (list of the outputs of the first three SA-Dec blocks)
      and ``texture`` ``[B, 3, Ht, Wt]`` (the predicted texture, see below).
* ``san_pg`` / ``san_pg_r18`` (``reid_head=False``, Sec. 3.1 SAN-PG): ``model(imgs)`` ->
  ``texture`` ``[B, 3, Ht, Wt]`` in both modes (no classifier exists).
* Any of them: ``model.predict_texture(imgs)`` (or ``model(imgs, texture_only=True)``, which keeps DDP's
  gradient hooks) -> texture, whatever the mode;
  ``model.inference_module()`` -> the encoder path only (imgs -> ``f``), sharing parameters.

The texture is predicted in the normalised image space (targets are normalised like the
image, ``(x/255 - mean)/std``), with no final activation: un-normalise with the data mean/std
to get pixels. ``(Ht, Wt)`` is the configured ``texture_size``.
"""
import math

import torch.nn as nn
import torch.nn.functional as F

from ..registry import MODELS
from ..utils.checkpoint import read_model_state
from .layers import BNNeckClassifier, init_conv_bn
from .pretrained import imagenet_resnet

__all__ = [
    "SAEncoder",
    "SADecoder",
    "ResidualUpBlock",
    "SAN",
    "build_san",
    "load_san_pg_weights",
    "san_cfg_kwargs",
    "ID_HEADS",
    "san",
    "san_r18",
    "san_pg",
    "san_pg_r18",
]

# backbone name -> (torchvision constructor name, fe4 channels, default SA-Dec widths: channels halve as the resolution doubles, sized so the
#                   decoder has about 1/3 of the encoder's parameters (r50: 0.316, r18: 0.317))
_BACKBONES = {
    "resnet18": ("resnet18", 512, (320, 160, 80, 40)),
    "resnet50": ("resnet50", 2048, (288, 144, 72, 36)),
}


def _linear_classifier(in_features, num_classes):
    """The paper's ID classifier: one FC layer on f (Sec. 3.2), initialised at std 0.01."""
    fc = nn.Linear(in_features, num_classes)
    nn.init.normal_(fc.weight, 0, 0.01)
    nn.init.zeros_(fc.bias)
    return fc


# id_head -> classifier on f. 'bnneck' is the default: with 'linear' the ID loss of a from-scratch SA-Enc stays
# at ln(#ids) (the triplet loss on the same un-normalised f dominates it); the BN lets both losses train.
ID_HEADS = {"bnneck": BNNeckClassifier, "linear": _linear_classifier}

DEFAULT_TEXTURE_SIZE = (240, 160)  # DensePose atlas 6N x 4N with tile N = 40 (about 256 high)


def _torchvision_resnet(backbone, pretrained):
    """A torchvision ResNet with ImageNet weights as ``pretrained`` says (True, False or a local file):
    :func:`~torchreid_dense.models.pretrained.imagenet_resnet`."""
    if backbone not in _BACKBONES:
        raise KeyError(f"SAN backbone '{backbone}' is not supported; choose one of {sorted(_BACKBONES)}")
    return imagenet_resnet(_BACKBONES[backbone][0], pretrained, what=f"SAN ({backbone})")


class SAEncoder(nn.Module):
    """SA-Enc (Sec. 3.2): ResNet conv1..layer4 with the last down-sampling removed -> fe4 and f.

    Args:
        backbone (str): ``resnet50`` (paper) or ``resnet18``.
        pretrained (bool): initialise from torchvision's ImageNet weights.
    """

    def __init__(self, backbone="resnet50", pretrained=True):
        super().__init__()
        net = _torchvision_resnet(backbone, pretrained)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        # last stride 1 (as torchreid's last_stride=1): the first block of layer4 and its shortcut
        for m in self.layer4[0].modules():
            if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
                m.stride = (1, 1)
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = _BACKBONES[backbone][1]

    def featuremaps(self, x):
        """Input images ``[B,3,H,W]`` -> fe4 ``[B, C, H/16, W/16]``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def pool(self, fe4):
        """fe4 -> the re-ID feature f ``[B, C]`` (global average pooling)."""
        return self.global_avgpool(fe4).flatten(1)

    def forward(self, x):
        return self.pool(self.featuremaps(x))


class ResidualUpBlock(nn.Module):
    """One SA-Dec residual up-sampling block (Sec. 4.2): x2 up, conv-bn-relu-conv-bn + 1x1 skip, ReLU."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.skip = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.up(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.skip(x))


class SADecoder(nn.Module):
    """SA-Dec (Sec. 3.2): 4 residual up-sampling blocks from fe4 to the texture, plus a 3x3 conv to RGB.

    The input fe4 is resized (bilinear) to ``(ceil(Ht/16), ceil(Wt/16))`` when its grid differs, so
    the four x2 blocks reach at least ``(Ht, Wt)``; the prediction is resized (bilinear) to exactly
    ``(Ht, Wt)`` when 16 does not divide the texture size.

    Args:
        in_channels (int): channels of fe4.
        texture_size (tuple): ``(Ht, Wt)`` of the predicted texture.
        widths (tuple): output channels of the 4 blocks.
    """

    def __init__(self, in_channels, texture_size=DEFAULT_TEXTURE_SIZE, widths=(288, 144, 72, 36)):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4:
            raise ValueError(f"SA-Dec has 4 residual up-sampling blocks; got decoder_widths={widths}")
        self.texture_size = _check_size(texture_size)
        chans = (in_channels,) + widths
        self.blocks = nn.ModuleList(ResidualUpBlock(chans[i], chans[i + 1]) for i in range(4))
        self.to_texture = nn.Conv2d(widths[-1], 3, 3, padding=1)
        self.input_size = tuple(math.ceil(s / 16) for s in self.texture_size)

    def forward(self, fe4):
        """fe4 ``[B,C,h,w]`` -> (texture ``[B,3,Ht,Wt]``, list of the 4 block outputs)."""
        x = fe4
        if tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        texture = self.to_texture(x)
        if tuple(texture.shape[-2:]) != self.texture_size:
            texture = F.interpolate(texture, size=self.texture_size, mode="bilinear", align_corners=False)
        return texture, feats


class _InferencePath(nn.Module):
    """The encoder path of a SAN (imgs -> f): what runs at test time, nothing else."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        return self.encoder(x)


class SAN(nn.Module):
    """Semantics Aligning Network (Sec. 3, Fig. 2): SA-Enc + classifier on f + SA-Dec.

    See the module docstring for the forward contract.

    Args:
        num_classes (int): training identities (ignored when ``reid_head=False``).
        backbone (str): encoder backbone.
        pretrained (bool): ImageNet initialisation of the encoder.
        texture_size (tuple): ``(Ht, Wt)`` of the predicted texture.
        decoder_widths (tuple, optional): channels of the 4 SA-Dec blocks (None: the backbone's
            default, about 1/3 of the encoder's parameters).
        with_decoder (bool): build SA-Dec (False gives the plain baseline, last stride 1).
        reid_head (bool): build the ID classifier; False gives SAN-PG (texture only).
        num_tr_blocks (int): how many leading decoder block outputs go into ``dec_feats``.
        id_head (str): ID classifier on f: ``'bnneck'`` (BN + bias-free FC; the triplet loss stays on f)
            or ``'linear'`` (the paper's FC on f). Not run at inference: the test feature is f either way.
    """

    def __init__(
        self,
        num_classes,
        backbone="resnet50",
        pretrained=True,
        texture_size=DEFAULT_TEXTURE_SIZE,
        decoder_widths=None,
        with_decoder=True,
        reid_head=True,
        num_tr_blocks=3,
        id_head="bnneck",
    ):
        super().__init__()
        if id_head not in ID_HEADS:
            raise KeyError(f"unknown SAN id_head '{id_head}'; choose one of {sorted(ID_HEADS)}")
        if not (with_decoder or reid_head):
            raise ValueError("a SAN needs the decoder, the re-ID head, or both")
        self.encoder = SAEncoder(backbone, pretrained=pretrained)
        self.feature_dim = self.encoder.feature_dim
        self.reid_head = reid_head
        self.id_head = id_head
        self.classifier = ID_HEADS[id_head](self.feature_dim, num_classes) if reid_head else None
        if decoder_widths is None:
            decoder_widths = _BACKBONES[backbone][2]
        self.decoder = (
            SADecoder(self.feature_dim, texture_size, decoder_widths) if with_decoder else None
        )
        self.texture_size = self.decoder.texture_size if with_decoder else None
        self.num_tr_blocks = int(num_tr_blocks)
        self._init_new_layers()

    def _init_new_layers(self):
        """Kaiming init of SA-Dec (the classifier initialises itself)."""
        if self.decoder is not None:
            init_conv_bn(self.decoder)

    def predict_texture(self, imgs):
        """Images -> predicted texture ``[B,3,Ht,Wt]`` (normalised image space), in any mode."""
        if self.decoder is None:
            raise RuntimeError("this SAN was built with with_decoder=False and cannot predict textures")
        texture, _ = self.decoder(self.encoder.featuremaps(imgs))
        return texture

    def inference_module(self):
        """The encoder path only (imgs -> f), sharing this model's parameters."""
        return _InferencePath(self.encoder)

    def forward(self, imgs, texture_only=False, with_texture=True):
        """See the module docstring; ``texture_only`` runs SA-Enc + SA-Dec alone (PIT batches: the ID head,
        BN statistics included, never sees a synthetic image); ``with_texture=False`` leaves SA-Dec out of a
        training forward (``logits`` and ``feature`` only: a re-ID batch whose L_Rec and L_TR are off)."""
        if texture_only or not self.reid_head:
            return self.predict_texture(imgs)
        fe4 = self.encoder.featuremaps(imgs)
        f = self.encoder.pool(fe4)
        if not self.training:
            return f
        out = {"logits": self.classifier(f), "feature": f}
        if self.decoder is not None and with_texture:
            texture, feats = self.decoder(fe4)
            out["dec_feats"] = feats[: self.num_tr_blocks]
            out["texture"] = texture
        return out


def _check_size(size):
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"texture_size must be (height, width) with positive values; got {size}")
    return size


def build_san(num_classes, backbone="resnet50", pretrained=True, **options):
    """Builds a :class:`SAN` (Sec. 3.2); ``reid_head=False`` gives SAN-PG (Sec. 3.1). ``options``: the other
    keyword arguments of :class:`SAN` (``texture_size``, ``decoder_widths``, ``with_decoder``, ``reid_head``,
    ``num_tr_blocks``, ``id_head``)."""
    return SAN(num_classes, backbone=backbone, pretrained=pretrained, **options)


_SAN_KWARGS = ("texture_size", "decoder_widths", "with_decoder", "num_tr_blocks", "id_head")


def _san_kwargs(kwargs, model_name):
    unknown = sorted(set(kwargs) - set(_SAN_KWARGS))
    if unknown:
        raise TypeError(f"{model_name}: unexpected keyword arguments {unknown}; accepted: {list(_SAN_KWARGS)}")
    return kwargs


def san_cfg_kwargs(cfg):
    """Model keyword arguments from the config: ``san.texture_size`` ([H, W]) and ``san.decoder_widths``
    ([] = the backbone's default), each optional."""
    san_cfg = getattr(cfg, "san", None)
    kwargs = {}
    size = getattr(san_cfg, "texture_size", None)
    if size:
        kwargs["texture_size"] = tuple(size)
    widths = getattr(san_cfg, "decoder_widths", None)
    if widths:
        kwargs["decoder_widths"] = tuple(widths)
    id_head = getattr(san_cfg, "id_head", None)
    if id_head:
        kwargs["id_head"] = id_head
    return kwargs


def _build_san_pg(num_classes, backbone, pretrained, kwargs):
    """A SAN-PG: SA-Enc + SA-Dec, no classifier (so ``with_decoder`` and ``id_head`` are ignored)."""
    kwargs = {k: v for k, v in kwargs.items() if k not in ("with_decoder", "id_head")}
    return build_san(num_classes, backbone, pretrained, reid_head=False, **kwargs)


@MODELS.register("san", engine="san", cfg_kwargs=san_cfg_kwargs)
def san(num_classes, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
    """SAN with a ResNet-50 SA-Enc (paper setting). ``loss`` is unused: the outputs are fixed."""
    return build_san(num_classes, "resnet50", pretrained, reid_head=True, **_san_kwargs(kwargs, "san"))


@MODELS.register("san_r18", engine="san", cfg_kwargs=san_cfg_kwargs)
def san_r18(num_classes, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
    """SAN with a ResNet-18 SA-Enc (sized for CPU experiments)."""
    return build_san(num_classes, "resnet18", pretrained, reid_head=True, **_san_kwargs(kwargs, "san_r18"))


@MODELS.register("san_pg", engine="san_pg", cfg_kwargs=san_cfg_kwargs)
def san_pg(num_classes=0, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
    """SAN-PG (Sec. 3.1): ResNet-50 SA-Enc + SA-Dec for texture generation only."""
    return _build_san_pg(num_classes, "resnet50", pretrained, _san_kwargs(kwargs, "san_pg"))


@MODELS.register("san_pg_r18", engine="san_pg", cfg_kwargs=san_cfg_kwargs)
def san_pg_r18(num_classes=0, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
    """SAN-PG with a ResNet-18 SA-Enc."""
    return _build_san_pg(num_classes, "resnet18", pretrained, _san_kwargs(kwargs, "san_pg_r18"))


def load_san_pg_weights(san_model, path, verbose=True):
    """Step 2 initialisation (Sec. 3.2): copy SA-Enc + SA-Dec weights of a SAN-PG checkpoint.

    Every ``encoder.*`` and ``decoder.*`` entry of ``san_model`` must be present in the
    checkpoint with the same shape; the classifier keeps its initialisation.

    Args:
        san_model (SAN): the model to initialise (may be wrapped in DataParallel).
        path (str): a checkpoint file (torchreid's ``{'state_dict': ...}`` or a bare state dict).

    Returns:
        dict with ``loaded`` (keys copied), ``kept`` (model keys left as they were) and
        ``ignored`` (checkpoint keys not used).
    """
    model = getattr(san_model, "module", san_model)
    source = read_model_state(path, "SAN-PG checkpoint", "; train san_pg first (step 1)")[1]
    target = model.state_dict()
    wanted = [k for k in target if k.startswith(("encoder.", "decoder."))]
    missing = [k for k in wanted if k not in source]
    if missing:
        raise KeyError(
            f"'{path}' lacks {len(missing)} SA-Enc/SA-Dec entries of the model (first: {missing[:3]}); "
            "is it a san_pg checkpoint of the same backbone?"
        )
    bad = [f"{k}: checkpoint {tuple(source[k].shape)} vs model {tuple(target[k].shape)}"
           for k in wanted if source[k].shape != target[k].shape]
    if bad:
        raise ValueError(
            f"'{path}' does not fit this SAN ({len(bad)} shape mismatches, e.g. {bad[:3]}); check "
            "backbone, decoder_widths and texture_size against the san_pg run"
        )
    model.load_state_dict({k: source[k] for k in wanted}, strict=False)
    report = {
        "loaded": wanted,
        "kept": [k for k in target if k not in set(wanted)],
        "ignored": [k for k in source if k not in target or not k.startswith(("encoder.", "decoder."))],
    }
    if verbose:
        print(
            f"=> SAN-PG weights from '{path}': {len(report['loaded'])} entries loaded "
            f"(encoder + decoder), {len(report['kept'])} kept ({', '.join(sorted({k.split('.')[0] for k in report['kept']})) or '-'}), "
            f"{len(report['ignored'])} ignored"
        )
    return report
