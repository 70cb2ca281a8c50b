"""The texture-predicting model of SAN's pseudo ground truth (SAN-PG, SAN AAAI 2020, Sec. 3.1): built, and called."""
import torch

from ..models.san import load_san_pg_weights
from ..registry import MODELS

__all__ = ["build_texture_model", "predict_textures"]


def build_texture_model(cfg, weights, verbose=True):
    """The texture-predicting model of ``cfg.model.name`` with the weights of a SAN-PG (or SAN) checkpoint.

    The model is built like ``build_model_from_config`` (its registered config adapter gives the
    texture size ``san.texture_size``) but with ``pretrained=False``: the checkpoint replaces every
    encoder and decoder parameter, so ImageNet weights would be downloaded for nothing.

    Args:
        cfg (CfgNode): merged config (``model.name``, ``san.texture_size``, ``use_gpu``).
        weights (str): checkpoint file (torchreid's ``{'state_dict': ...}`` or a bare state dict).

    Returns:
        the model in eval mode (on the GPU when ``cfg.use_gpu`` and CUDA is available).

    Raises:
        KeyError / ValueError: the model cannot predict textures, or the checkpoint does not fit it
        (the messages name the file); FileNotFoundError: ``weights`` does not exist.
    """
    name = cfg.model.name
    if name not in MODELS:
        raise KeyError(
            f"model.name '{name}' cannot predict textures: use a SAN-PG model of torchreid_dense "
            f"(san_pg, san_pg_r18); registered models: {MODELS.names()}"
        )
    cfg_kwargs = MODELS.meta(name).get("cfg_kwargs")
    kwargs = cfg_kwargs(cfg) if cfg_kwargs is not None else {}
    model = MODELS.get(name)(num_classes=1, loss=cfg.loss.name, pretrained=False, use_gpu=cfg.use_gpu, **kwargs)
    if getattr(model, "decoder", None) is None or not hasattr(model, "predict_texture"):
        raise ValueError(f"model '{name}' has no texture decoder; use san_pg or san_pg_r18")
    load_san_pg_weights(model, weights, verbose=verbose)
    if cfg.use_gpu and torch.cuda.is_available():
        model = model.cuda()
    return model.eval()


@torch.no_grad()
def predict_textures(model, imgs):
    """Predicted textures ``[B, 3, Ht, Wt]`` (normalised image space) of normalised images, one batched call."""
    bare = getattr(model, "module", model)
    device = next(bare.parameters()).device
    return bare.predict_texture(imgs.to(device, non_blocking=True))
