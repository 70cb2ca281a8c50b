"""SAN: Semantics Aligning Network (Jin et al., AAAI 2020), encoder SA-Enc + decoder SA-Dec.

Forward contract (all models built here):

* ``san`` / ``san_r18`` (``reid_head=True``):
    - eval mode: ``model(imgs)`` -> ``f`` ``[B, 2048]`` (``[B, 512]`` for ResNet-18), the globally
      average-pooled ``fe4``; the decoder and the classifier are not run, so inference costs
      exactly the baseline ResNet (last stride 1). With ``id_head='fc512'`` (the SAN authors' code) the
      feature is ``v = ReLU(BN(FC(f)))`` ``[B, 512]`` instead, and the FC head is part of inference.
    - training mode: ``model(imgs)`` -> ``dict`` with ``logits`` ``[B, num_classes]``,
      ``feature`` (``f``, or ``v`` with ``fc512``), ``dec_feats`` (list of the outputs of the first
      ``num_tr_blocks`` SA-Dec blocks, 3 by default) and ``texture`` ``[B, 3, Ht, Wt]`` (the predicted
      texture, see below).
* ``san_pg`` / ``san_pg_r18`` (``reid_head=False``, Sec. 3.1 SAN-PG): ``model(imgs)`` ->
  ``texture`` ``[B, 3, Ht, Wt]`` in both modes (no classifier exists).
* Any of them: ``model.predict_texture(imgs)`` (or ``model(imgs, texture_only=True)``, which keeps DDP's
  gradient hooks) -> texture, whatever the mode;
  ``model.inference_module()`` -> the test path only (imgs -> the test feature), sharing parameters.

SA-Dec is ``'residual'`` (the paper's reading) or ``'unet'`` (the authors' released decoder, which also reads the
encoder's layer1..3 maps): see :mod:`torchreid_dense.models.san_decoder`.

Modules: :mod:`.san_encoder` (SA-Enc), :mod:`.san_heads` (ID heads and SA-Dec builders), :mod:`.san_decoder`,
:mod:`.san_weights` (SAN-PG weights into a SAN); this one holds the model and its builders and re-exports their
public names.

The texture is predicted in the normalised image space (targets are normalised like the
image, ``(x/255 - mean)/std``), with no final activation: un-normalise with the data mean/std
to get pixels. ``(Ht, Wt)`` is the configured ``texture_size``.
"""
import torch.nn as nn

from ..registry import MODELS
from .layers import init_conv_bn
from .san_decoder import DEFAULT_TEXTURE_SIZE, ResidualUpBlock, SADecoder, UNetSADecoder
from .san_encoder import SAEncoder
from .san_heads import DECODERS, ID_HEADS
from .san_weights import load_san_pg_weights

__all__ = [
    "SAEncoder",
    "SADecoder",
    "UNetSADecoder",
    "ResidualUpBlock",
    "SAN",
    "build_san",
    "load_san_pg_weights",
    "san_cfg_kwargs",
    "ID_HEADS",
    "DECODERS",
    "san",
    "san_r18",
    "san_pg",
    "san_pg_r18",
]

TR_BLOCKS = (1, 2, 3, 4)  # SA-Dec has 4 blocks; L_TR reads the first N


class _InferencePath(nn.Module):
    """The test path of a SAN (imgs -> f, or the fc512 head's v): what runs at test time, nothing else."""

    def __init__(self, encoder, embedding):
        super().__init__()
        self.encoder = encoder
        self.embedding = embedding

    def forward(self, x):
        return self.embedding(self.encoder(x))


class SAN(nn.Module):
    """Semantics Aligning Network (Sec. 3, Fig. 2): SA-Enc + classifier on f + SA-Dec.

    See the module docstring for the forward contract.

    Args:
        num_classes (int): training identities (ignored when ``reid_head=False``).
        backbone (str): encoder backbone.
        pretrained (bool): ImageNet initialisation of the encoder.
        texture_size (tuple): ``(Ht, Wt)`` of the predicted texture.
        decoder_widths (tuple, optional): channels of the 4 residual SA-Dec blocks (None: the backbone's
            default, about 1/3 of the encoder's parameters); the ``'unet'`` SA-Dec takes none.
        with_decoder (bool): build SA-Dec (False gives the plain baseline, last stride 1).
        reid_head (bool): build the ID classifier; False gives SAN-PG (texture only).
        num_tr_blocks (int): how many leading decoder block outputs go into ``dec_feats`` (1..4).
        id_head (str): head on f: ``'bnneck'`` (BN + bias-free FC; the triplet loss stays on f),
            ``'linear'`` (the paper's FC on f) or ``'fc512'`` (the authors' FC 512 + BN + ReLU, then an FC
            classifier; the triplet loss and the test use the 512-d output). The classifier never runs at
            inference; only ``fc512`` adds its FC head to the test path.
        decoder (str): SA-Dec kind, ``'residual'`` (the paper's reading) or ``'unet'`` (the authors' code).
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
        decoder="residual",
    ):
        super().__init__()
        if id_head not in ID_HEADS:
            raise KeyError(f"unknown SAN id_head '{id_head}'; choose one of {sorted(ID_HEADS)}")
        if decoder not in DECODERS:
            raise KeyError(f"unknown SAN decoder '{decoder}'; choose one of {sorted(DECODERS)}")
        if num_tr_blocks not in TR_BLOCKS:
            raise ValueError(f"num_tr_blocks must be one of {TR_BLOCKS} (SA-Dec has 4 blocks); got {num_tr_blocks}")
        if not (with_decoder or reid_head):
            raise ValueError("a SAN needs the decoder, the re-ID head, or both")
        self.encoder = SAEncoder(backbone, pretrained=pretrained)
        self.reid_head = reid_head
        self.id_head = id_head
        self.embedding, self.classifier = (
            ID_HEADS[id_head](self.encoder.feature_dim, num_classes) if reid_head else (nn.Identity(), None)
        )
        self.feature_dim = getattr(self.embedding, "out_features", self.encoder.feature_dim)
        self.decoder_kind = decoder
        self.decoder = DECODERS[decoder](backbone, texture_size, decoder_widths) if with_decoder else None
        self.texture_size = self.decoder.texture_size if with_decoder else None
        self.num_tr_blocks = int(num_tr_blocks)
        self._init_new_layers()

    def _init_new_layers(self):
        """Kaiming init of the residual SA-Dec (the U-Net SA-Dec, the heads and the classifier initialise
        themselves)."""
        if self.decoder is not None and not self.decoder.uses_skips:
            init_conv_bn(self.decoder)

    def _encode(self, imgs):
        """fe4 and the maps SA-Dec adds besides it: layer1..3 for the U-Net SA-Dec, none otherwise."""
        if self.decoder is not None and self.decoder.uses_skips:
            return self.encoder.featuremaps(imgs, return_skips=True)
        return self.encoder.featuremaps(imgs), ()

    def predict_texture(self, imgs):
        """Images -> predicted texture ``[B,3,Ht,Wt]`` (normalised image space), in any mode."""
        if self.decoder is None:
            raise RuntimeError("this SAN was built with with_decoder=False and cannot predict textures")
        fe4, skips = self._encode(imgs)
        texture, _ = self.decoder(fe4, *skips)
        return texture

    def inference_module(self):
        """The test path only (imgs -> f, or v with ``fc512``), sharing this model's parameters."""
        return _InferencePath(self.encoder, self.embedding)

    def forward(self, imgs, texture_only=False, with_texture=True):
        """See the module docstring; ``texture_only`` runs SA-Enc + SA-Dec alone (PIT batches: the ID head,
        BN statistics included, never sees a synthetic image); ``with_texture=False`` leaves SA-Dec out of a
        training forward (``logits`` and ``feature`` only: a re-ID batch whose L_Rec and L_TR are off)."""
        if texture_only or not self.reid_head:
            return self.predict_texture(imgs)
        fe4, skips = self._encode(imgs)
        f = self.embedding(self.encoder.pool(fe4))
        if not self.training:
            return f
        out = {"logits": self.classifier(f), "feature": f}
        if self.decoder is not None and with_texture:
            texture, feats = self.decoder(fe4, *skips)
            out["dec_feats"] = feats[: self.num_tr_blocks]
            out["texture"] = texture
        return out


def build_san(num_classes, backbone="resnet50", pretrained=True, **options):
    """Builds a :class:`SAN` (Sec. 3.2); ``reid_head=False`` gives SAN-PG (Sec. 3.1). ``options``: the other
    keyword arguments of :class:`SAN` (``texture_size``, ``decoder_widths``, ``with_decoder``, ``reid_head``,
    ``num_tr_blocks``, ``id_head``)."""
    return SAN(num_classes, backbone=backbone, pretrained=pretrained, **options)


_SAN_KWARGS = ("texture_size", "decoder_widths", "with_decoder", "num_tr_blocks", "id_head", "decoder")


def _san_kwargs(kwargs, model_name):
    unknown = sorted(set(kwargs) - set(_SAN_KWARGS))
    if unknown:
        raise TypeError(f"{model_name}: unexpected keyword arguments {unknown}; accepted: {list(_SAN_KWARGS)}")
    return kwargs


def _cfg_choice(value, choices, key):
    """``value`` if it is one of ``choices``, else a ValueError naming the config key and the choices."""
    if value not in choices:
        raise ValueError(f"{key} '{value}' is not known; set it to one of {list(choices)}")
    return value


def san_cfg_kwargs(cfg):
    """Model keyword arguments from the config, each optional: ``san.texture_size`` ([H, W]), ``san.decoder_widths``
    ([] = the backbone's default), ``san.id_head``, ``san.decoder`` (-> ``decoder``) and ``san.tr_blocks``
    (-> ``num_tr_blocks``). The last two are left out at the model's defaults ('residual', 3), so a default config
    builds what torchreid's ``build_model`` builds; an unknown value raises a ValueError naming the key."""
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
        kwargs["id_head"] = _cfg_choice(id_head, ID_HEADS, "san.id_head")
    decoder = getattr(san_cfg, "decoder", None)
    if decoder and _cfg_choice(decoder, DECODERS, "san.decoder") != "residual":
        kwargs["decoder"] = decoder
    tr_blocks = getattr(san_cfg, "tr_blocks", None)
    if tr_blocks is not None and _cfg_choice(tr_blocks, TR_BLOCKS, "san.tr_blocks") != 3:
        kwargs["num_tr_blocks"] = int(tr_blocks)
    return kwargs


def _build_san_pg(num_classes, backbone, pretrained, kwargs):
    """A SAN-PG: SA-Enc + SA-Dec, no classifier (so ``with_decoder`` and ``id_head`` are ignored); ``decoder``
    builds the same SA-Dec kind as the SAN it initialises."""
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
