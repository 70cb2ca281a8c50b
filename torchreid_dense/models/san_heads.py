"""What SAN puts on SA-Enc: the ID heads on f (Sec. 3.2, BNNeck, the authors' fc512) and the SA-Dec builders."""
import torch.nn as nn

from .layers import BNNeckClassifier, FCEmbedding
from .san_decoder import SADecoder, UNetSADecoder
from .san_encoder import BACKBONES

__all__ = ["ID_HEADS", "DECODERS"]


def _linear_classifier(in_features, num_classes):
    """The paper's ID classifier: one FC layer on f (Sec. 3.2), initialised at std 0.01."""
    fc = nn.Linear(in_features, num_classes)
    nn.init.normal_(fc.weight, 0, 0.01)
    nn.init.zeros_(fc.bias)
    return fc


def _bnneck_head(in_features, num_classes):
    """No embedding; BNNeck classifier on f (Luo et al. 2019)."""
    return nn.Identity(), BNNeckClassifier(in_features, num_classes)


def _linear_head(in_features, num_classes):
    """No embedding; the paper's FC classifier on f (Sec. 3.2)."""
    return nn.Identity(), _linear_classifier(in_features, num_classes)


def _fc512_head(in_features, num_classes):
    """The SAN authors' ``resnet50_fc512``: FC -> 512 + BN1d + ReLU on f, then an FC classifier at N(0, 0.01) on
    the 512-d ``v`` (SAN authors' code, docs/san_authors_code.md §3.1)."""
    embedding = FCEmbedding(in_features, 512)
    return embedding, _linear_classifier(embedding.out_features, num_classes)


# id_head -> (embedding on f, classifier on the embedding). 'bnneck' is the default: with 'linear' the ID loss of a
# from-scratch SA-Enc stays at ln(#ids) (the triplet loss on the same un-normalised f dominates it); the BN lets
# both losses train. 'fc512' is the SAN authors' code: the triplet loss and the test use the 512-d v.
ID_HEADS = {"bnneck": _bnneck_head, "linear": _linear_head, "fc512": _fc512_head}


def _residual_decoder(backbone, texture_size, widths):
    """The paper's SA-Dec (Sec. 3.2) at the backbone's default widths unless ``widths`` are given."""
    spec = BACKBONES[backbone]
    return SADecoder(spec[1], texture_size, spec[2] if widths is None else widths)


def _unet_decoder(backbone, texture_size, widths):
    """The SAN authors' SA-Dec (docs/san_authors_code.md §3.3) at their widths, scaled to the backbone."""
    if widths is not None:
        raise ValueError(
            f"decoder_widths={tuple(widths)} applies to the residual SA-Dec only; the 'unet' SA-Dec has the "
            "authors' widths scaled to the backbone: leave san.decoder_widths [] (or set san.decoder residual)"
        )
    spec = BACKBONES[backbone]
    return UNetSADecoder(spec[1], spec[3], texture_size)


# san.decoder -> SA-Dec builder (backbone, texture_size, widths or None)
DECODERS = {"residual": _residual_decoder, "unet": _unet_decoder}
