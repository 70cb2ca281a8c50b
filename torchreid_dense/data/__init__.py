"""Data: the plugin's data sets, the sidecar wrappers of every data set, and the data manager.

The imports of ``datasets`` and ``wrappers`` exist to register them (see ``torchreid_dense.registry``).
"""
from . import datasets  # noqa: F401  (registers synthreid, partial_reid, partial_ilids)
from . import wrappers  # noqa: F401  (registers <name>_dsap and <name>_texture)
from .datamanager import DenseImageDataManager
from .texture_io import empty_texture, load_texture
from .wrappers import DSAPDataset, MissingSidecarError, SidecarDataset, TextureDataset

__all__ = ["DenseImageDataManager", "SidecarDataset", "DSAPDataset", "TextureDataset", "MissingSidecarError",
           "load_texture", "empty_texture"]
