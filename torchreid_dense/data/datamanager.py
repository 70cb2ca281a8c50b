"""torchreid's ImageDataManager, passing the plugin's ``dense`` options to sidecar data sets."""
from .. import compat
from .texture_io import IMAGENET_MEAN, IMAGENET_STD
from .wrappers.base import SidecarDataset

__all__ = ["DenseImageDataManager"]


class DenseImageDataManager(compat.ImageDataManager):
    """``torchreid.data.ImageDataManager`` whose sidecar data sets (``*_dsap``, ``*_texture``) get options.

    Args:
        dense (dict): wrapper options, e.g. ``dict(size=32, alignment='dense', iuv_kind='densepose',
            strict=False, cache=False, texture_size=(240, 160))``; each wrapper takes the keys it knows.
        **kwargs: torchreid's ``ImageDataManager`` arguments.

    Examples::

        dm = DenseImageDataManager(root='reid-data', sources='market1501_dsap', dense=dict(strict=True))
    """

    def __init__(self, dense=None, **kwargs):
        super().__init__(**kwargs)
        self.dense_options = dict(dense or {})
        norm = {"norm_mean": tuple(kwargs.get("norm_mean") or IMAGENET_MEAN),
                "norm_std": tuple(kwargs.get("norm_std") or IMAGENET_STD)}
        for dataset in self.datasets():
            if isinstance(dataset, SidecarDataset):
                options = {k: v for k, v in {**self.dense_options, **norm}.items() if k in dataset.options}
                dataset.configure(**options)

    def datasets(self):
        """Every data set behind the loaders (train, train targets, query and gallery of each target)."""
        loaders = [self.train_loader, self.train_loader_t]
        for split in self.test_loader.values():
            loaders += [split["query"], split["gallery"]]
        return [loader.dataset for loader in loaders if loader is not None]
