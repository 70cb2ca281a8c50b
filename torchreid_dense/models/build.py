"""Build any torchreid or plugin model from a config, and name the engine that trains it.

Contract for plugin model modules: a model registers its builder with the engine that trains it
and, optionally, a function turning the config into extra builder keyword arguments::

    def dsa_cfg_kwargs(cfg):
        return {"fusion": cfg.dsa.fusion, "feature": cfg.dsa.feature}

    @MODELS.register("dsa_reid", engine="dsa", cfg_kwargs=dsa_cfg_kwargs)
    def dsa_reid(num_classes, loss="softmax", pretrained=True, use_gpu=True, **kwargs): ...

:func:`build_model_from_config` then calls ``dsa_reid(num_classes, loss=..., pretrained=...,
use_gpu=..., **dsa_cfg_kwargs(cfg))`` (the returned dict may override the torchreid arguments).
Stock torchreid models are built by torchreid's own factory and trained by the ``softmax`` or
``triplet`` engine named by ``loss.name``.
"""
import os.path as osp
import sys

from .. import compat
from ..config import model_kwargs
from ..registry import ENGINES, MODELS
from .pretrained import PretrainedWeightsError, hub_checkpoint_dir

__all__ = ["build_model_from_config", "engine_name_of"]


def engine_name_of(cfg):
    """The engine that trains ``cfg.model.name``: the plugin model's registered one, else ``loss.name`` (stock)."""
    name = cfg.model.name
    return MODELS.meta(name)["engine"] if name in MODELS else cfg.loss.name


def _build_stock(name, num_classes, kwargs):
    """torchreid's model ``name``; ``pretrained`` a path: built without weights, then that file loaded by
    torchreid's ``load_pretrained_weights``; a failed download raises :class:`PretrainedWeightsError`."""
    pretrained = kwargs.pop("pretrained")
    if isinstance(pretrained, str):
        if not osp.isfile(pretrained):
            raise PretrainedWeightsError(f"model.pretrained_path '{pretrained}' does not exist")
        model = compat.models.build_model(name, num_classes=num_classes, pretrained=False, **kwargs)
        compat.utils.load_pretrained_weights(model, pretrained)
        return model
    try:
        return compat.models.build_model(name, num_classes=num_classes, pretrained=pretrained, **kwargs)
    except OSError as exc:  # urllib's URLError and socket errors are OSErrors
        if not pretrained or isinstance(exc, FileNotFoundError):
            raise
        url = getattr(sys.modules[compat.model_factory()[name].__module__], "model_urls", {}).get(name)
        wanted = f"the file '{osp.basename(url)}' ({url})" if url else f"the weights file torchreid fetches for {name}"
        raise PretrainedWeightsError(
            f"torchreid model '{name}': the ImageNet weights could not be downloaded ({type(exc).__name__}: {exc}); "
            f"without internet, put {wanted} into {hub_checkpoint_dir()} (torch hub's checkpoints folder), or give "
            "a local copy with model.pretrained_path FILE, or train from random weights with model.pretrained False"
        ) from None


def build_model_from_config(cfg, num_classes):
    """Build ``cfg.model.name`` for ``num_classes`` identities.

    Args:
        cfg (CfgNode): the merged config (``model.*``, ``loss.name``, ``use_gpu`` and whatever
            the model's registered ``cfg_kwargs`` reads).
        num_classes (int): number of training identities.

    Returns:
        tuple: ``(model, engine_name)``; ``engine_name`` is a key of ``ENGINES``.
    """
    kwargs = model_kwargs(cfg)
    name = kwargs.pop("name")
    if name in MODELS:
        meta = MODELS.meta(name)
        cfg_kwargs = meta.get("cfg_kwargs")
        if cfg_kwargs is not None:
            kwargs.update(cfg_kwargs(cfg))
        model = MODELS.get(name)(num_classes=num_classes, **kwargs)
    else:
        factory = compat.model_factory()
        if name not in factory:
            raise KeyError(
                f"model.name '{name}' is neither a torchreid model nor a torchreid_dense model; "
                f"torchreid_dense models: {MODELS.names()}; torchreid models: {sorted(factory)}"
            )
        model = _build_stock(name, num_classes, kwargs)
    engine_name = engine_name_of(cfg)
    if engine_name not in ENGINES:
        raise KeyError(
            f"model '{name}' is trained by engine '{engine_name}'"
            + (" (from loss.name)" if name not in MODELS else "")
            + f", which is not registered; registered engines: {ENGINES.names()}"
        )
    return model, engine_name
