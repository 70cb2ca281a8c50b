"""Sidecar data-set wrappers, registered as ``<name>_dsap`` and ``<name>_texture``.

Importing this module declares the wrappers of torchreid's stock data sets (``market1501``,
``cuhk03``, ``dukemtmcreid``, ``msmt17``, ``cuhk01``) and of the plugin's synthetic data sets.
"""
from ... import compat
from ...registry import DATASETS
from .base import MissingSidecarError, SidecarDataset, make_wrapper
from .dsap import ALIGNMENTS, DSAPDataset
from .texture import TextureDataset

__all__ = ["SidecarDataset", "DSAPDataset", "TextureDataset", "MissingSidecarError", "ALIGNMENTS",
           "WRAPPED_STOCK_DATASETS", "WRAPPER_KINDS"]

WRAPPED_STOCK_DATASETS = ("market1501", "cuhk03", "dukemtmcreid", "msmt17", "cuhk01")
WRAPPER_KINDS = {"dsap": DSAPDataset, "texture": TextureDataset}


def _declare():
    bases = {name: compat.STOCK_IMAGE_DATASETS[name] for name in WRAPPED_STOCK_DATASETS}
    bases.update({name: DATASETS.get(name) for name in DATASETS.names() if name.startswith("synthreid")})
    for name, base in bases.items():
        for suffix, mixin in WRAPPER_KINDS.items():
            cls_name = f"{base.__name__}{mixin.__name__.replace('Dataset', '')}"
            if f"{name}_{suffix}" not in DATASETS:
                DATASETS.register(f"{name}_{suffix}", make_wrapper(mixin, base, cls_name, __name__))


_declare()
