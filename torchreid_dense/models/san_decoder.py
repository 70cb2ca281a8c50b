"""SA-Dec, SAN's texture decoder (Jin et al., AAAI 2020): two kinds, chosen by ``san.decoder``.

* ``'residual'`` (:class:`SADecoder`): the paper's reading (Sec. 3.2), 4 residual up-sampling blocks after fe4.
* ``'unet'`` (:class:`UNetSADecoder`): the SAN authors' released decoder (``ConvResDecoder``,
  docs/san_authors_code.md §3.3): a 1x1 reduction of fe4, additive U-Net skips from layer3/2/1, 4 up-blocks
  [residual block, ReLU, bilinear x2, reflection pad + 3x3 conv] and a reflection-padded 7x7 conv to RGB.

Both map the encoder's maps to ``(texture [B, 3, Ht, Wt], [4 block outputs])``; :attr:`uses_skips` says whether
the decoder is called as ``decoder(fe4, layer1, layer2, layer3)`` or ``decoder(fe4)``.
"""
import math

import torch.nn as nn
import torch.nn.functional as F

from .layers import init_xavier_conv_bn

__all__ = [
    "DEFAULT_TEXTURE_SIZE",
    "check_texture_size",
    "ResidualUpBlock",
    "SADecoder",
    "ResBlock",
    "UpConvBlock",
    "UNetSADecoder",
    "unet_channels",
    "UNET_REDUCE_R50",
    "UNET_WIDTHS_R50",
]

DEFAULT_TEXTURE_SIZE = (240, 160)  # DensePose atlas 6N x 4N with tile N = 40 (about 256 high)

# The authors' ResNet-50 widths (docs/san_authors_code.md §3.3): fe4 reduced to 512, up-blocks to 256/64/32/16
UNET_REDUCE_R50 = 512
UNET_WIDTHS_R50 = (256, 64, 32, 16)


def check_texture_size(size):
    """``(Ht, Wt)`` as two positive ints, or a ValueError naming ``texture_size``."""
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"texture_size must be (height, width) with positive values; got {size}")
    return size


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

    uses_skips = False

    def __init__(self, in_channels, texture_size=DEFAULT_TEXTURE_SIZE, widths=(288, 144, 72, 36)):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4:
            raise ValueError(f"SA-Dec has 4 residual up-sampling blocks; got decoder_widths={widths}")
        self.texture_size = check_texture_size(texture_size)
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


def _conv_bn_relu_1x1(in_channels, out_channels):
    """1x1 conv (with bias) + BN + ReLU: the authors' ``reduce_dim`` and ``embed_layer*`` (main.py:127-150)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)
    )


class ResBlock(nn.Module):
    """The authors' ``BasicResBlock`` (docs/san_authors_code.md §3.3): ``x + BN(conv3x3(ReLU(BN(conv3x3(x)))))`` at
    constant width, bias-free convs, no projection."""

    def __init__(self, channels):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return x + self.branch(x)


class UpConvBlock(nn.Module):
    """The authors' up-block ``ConvResBlock(in, out, 'up')`` (docs/san_authors_code.md §3.3): residual block at the
    input width, ReLU, bilinear x2 (``align_corners=False``), reflection pad 1 + 3x3 conv (with bias) to ``out``.
    No BN or activation after the last conv: its raw output is what L_TR reads."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.res = ResBlock(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x):
        return self.conv(self.pad(self.up(self.relu(self.res(x)))))


def unet_channels(fe4_channels):
    """``(reduce, widths)`` of the U-Net SA-Dec for an encoder whose layer4 has ``fe4_channels``: the authors'
    ResNet-50 widths (512; 256, 64, 32, 16) times ``fe4_channels / 2048`` (ResNet-18: 128; 64, 16, 8, 4)."""
    scale = fe4_channels / 2048
    widths = tuple(max(1, int(round(w * scale))) for w in UNET_WIDTHS_R50)
    return max(1, int(round(UNET_REDUCE_R50 * scale))), widths


class UNetSADecoder(nn.Module):
    """The SAN authors' SA-Dec (SAN authors' code, docs/san_authors_code.md §3.3, ``ConvResDecoder``).

    ``x = ReLU(BN(conv1x1(fe4))) + embed3(layer3)``, then ``s1 = up1(x)``, ``s2 = up2(s1 + embed2(layer2))``,
    ``s3 = up3(s2 + embed1(layer1))``, ``s4 = up4(s3)`` (no skip enters the last block) and a reflection-pad 3 +
    7x7 conv to RGB, with no output activation; each ``embed*`` is 1x1 conv + BN + ReLU. The skips enter at the
    resolutions where the authors add them (fe4/layer3's, layer2's, layer1's: 16x8, 32x16, 64x32 for a 256x128
    image), so the texture comes out at the input resolution; it is resized bilinearly with
    ``align_corners=True`` (the authors' stretch of 256x128 to 256x256, main.py:180) when ``(Ht, Wt)`` differs.
    A block output whose grid misses its skip's (an input size not divisible by 16) is resized bilinearly to it.

    Channel counts: ResNet-50 (layer1..4 = 256/512/1024/2048) gives the authors' ``reduce`` 2048->512, embeddings
    1024->512, 512->256, 256->64 and up-blocks 512->256->64->32->16: 9,071,075 parameters. For another backbone
    every count is scaled by ``fe4_channels / 2048`` (:func:`unet_channels`); ResNet-18 (64/128/256/512, ratio 1/4)
    gives 512->128, 256->128, 128->64, 64->16 and 128->64->16->8->4.

    Init as the authors' (main.py:185-206): Xavier-normal gain 0.02 on every conv, zero bias; BN weight
    N(1, 0.02), bias 0.

    Args:
        in_channels (int): channels of fe4.
        skip_channels (tuple): channels of layer1, layer2, layer3.
        texture_size (tuple): ``(Ht, Wt)`` of the predicted texture.
        reduce_channels (int, optional): width of the 1x1 reduction of fe4 (None: :func:`unet_channels`).
        widths (tuple, optional): output channels of the 4 up-blocks (None: :func:`unet_channels`).
    """

    uses_skips = True

    def __init__(self, in_channels, skip_channels, texture_size=DEFAULT_TEXTURE_SIZE, reduce_channels=None,
                 widths=None):
        super().__init__()
        default_reduce, default_widths = unet_channels(in_channels)
        reduce_channels = int(reduce_channels or default_reduce)
        widths = tuple(int(w) for w in (widths or default_widths))
        if len(widths) != 4 or len(tuple(skip_channels)) != 3:
            raise ValueError(f"the U-Net SA-Dec has 4 up-blocks and 3 skips; got widths={widths}, "
                             f"skip_channels={tuple(skip_channels)}")
        c1, c2, c3 = skip_channels
        self.texture_size = check_texture_size(texture_size)
        self.reduce = _conv_bn_relu_1x1(in_channels, reduce_channels)
        self.embed3 = _conv_bn_relu_1x1(c3, reduce_channels)
        self.embed2 = _conv_bn_relu_1x1(c2, widths[0])
        self.embed1 = _conv_bn_relu_1x1(c1, widths[1])
        chans = (reduce_channels,) + widths
        self.blocks = nn.ModuleList(UpConvBlock(chans[i], chans[i + 1]) for i in range(4))
        self.to_texture = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(widths[-1], 3, 7))
        init_xavier_conv_bn(self, gain=0.02)

    @staticmethod
    def _add_skip(x, skip):
        """``x + skip``, ``x`` resized bilinearly to the skip's grid when they differ."""
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return x + skip

    def forward(self, fe4, layer1, layer2, layer3):
        """fe4 and the layer1..3 maps -> (texture ``[B,3,Ht,Wt]``, the 4 raw up-block outputs, before any skip)."""
        x = self._add_skip(self.reduce(fe4), self.embed3(layer3))
        skips = (self.embed2(layer2), self.embed1(layer1), None, None)
        feats = []
        for block, skip in zip(self.blocks, skips):
            out = block(x)
            feats.append(out)
            x = out if skip is None else self._add_skip(out, skip)
        texture = self.to_texture(x)
        if tuple(texture.shape[-2:]) != self.texture_size:
            texture = F.interpolate(texture, size=self.texture_size, mode="bilinear", align_corners=True)
        return texture, feats
