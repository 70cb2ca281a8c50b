"""torchreid-dense: DSA-reID (CVPR 2019) and SAN (AAAI 2020) as a torchreid plugin.

Importing the package registers its models and data sets into torchreid (``register`` is
idempotent), so ``torchreid.models.build_model('dsa_reid', ...)`` and
``torchreid.data.ImageDataManager(sources='synthreid_dsap', ...)`` work right after
``import torchreid_dense``.
"""
from .version import __version__
from .registry import DATASETS, ENGINES, LOSSES, MODELS, register
# Importing these declares their entries in the registries (the order matters only for readability).
from . import models, losses, data, engine  # noqa: F401, E402  (isort: skip)

register()

__all__ = ["__version__", "register", "MODELS", "DATASETS", "ENGINES", "LOSSES"]
