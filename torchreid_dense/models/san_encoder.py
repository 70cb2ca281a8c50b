"""SA-Enc of SAN (Sec. 3.2): a ResNet with the last down-sampling removed, fe4 -> the re-ID feature f."""
import torch.nn as nn

from .pretrained import imagenet_resnet

__all__ = ["SAEncoder", "BACKBONES", "torchvision_resnet"]

# backbone name -> (torchvision constructor name, fe4 channels, default residual SA-Dec widths, layer1..3 channels).
# The residual widths halve as the resolution doubles, sized so the decoder has about 1/3 of the encoder's
# parameters (r50: 0.316, r18: 0.317); the layer1..3 channels feed the U-Net SA-Dec's skips.
BACKBONES = {
    "resnet18": ("resnet18", 512, (320, 160, 80, 40), (64, 128, 256)),
    "resnet50": ("resnet50", 2048, (288, 144, 72, 36), (256, 512, 1024)),
}


def torchvision_resnet(backbone, pretrained):
    """A torchvision ResNet with ImageNet weights as ``pretrained`` says (True, False or a local file):
    :func:`~torchreid_dense.models.pretrained.imagenet_resnet`."""
    if backbone not in BACKBONES:
        raise KeyError(f"SAN backbone '{backbone}' is not supported; choose one of {sorted(BACKBONES)}")
    return imagenet_resnet(BACKBONES[backbone][0], pretrained, what=f"SAN ({backbone})")


class SAEncoder(nn.Module):
    """SA-Enc (Sec. 3.2): ResNet conv1..layer4 with the last down-sampling removed -> fe4 and f.

    Args:
        backbone (str): ``resnet50`` (paper) or ``resnet18``.
        pretrained (bool): initialise from torchvision's ImageNet weights.
    """

    def __init__(self, backbone="resnet50", pretrained=True):
        super().__init__()
        net = torchvision_resnet(backbone, pretrained)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        # last stride 1 (as torchreid's last_stride=1): the first block of layer4 and its shortcut
        for m in self.layer4[0].modules():
            if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
                m.stride = (1, 1)
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = BACKBONES[backbone][1]

    def featuremaps(self, x, return_skips=False):
        """Input images ``[B,3,H,W]`` -> fe4 ``[B, C, H/16, W/16]``; with ``return_skips``, ``(fe4, (layer1,
        layer2, layer3))`` at strides 4, 8, 16 (the maps the SAN authors' U-Net SA-Dec adds, resnet.py:195-204)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        fe4 = self.layer4(x3)
        return (fe4, (x1, x2, x3)) if return_skips else fe4

    def pool(self, fe4):
        """fe4 -> the re-ID feature f ``[B, C]`` (global average pooling)."""
        return self.global_avgpool(fe4).flatten(1)

    def forward(self, x):
        return self.pool(self.featuremaps(x))
