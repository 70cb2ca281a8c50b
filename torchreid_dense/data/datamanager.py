"""torchreid's ImageDataManager, passing the plugin's ``dense`` options to sidecar data sets."""
from .. import compat
from .texture_io import IMAGENET_MEAN, IMAGENET_STD
from .wrappers.base import SidecarDataset, check_missing_sidecars, deferred_reports

__all__ = ["DenseImageDataManager"]


class DenseImageDataManager(compat.ImageDataManager):
    """``torchreid.data.ImageDataManager`` whose sidecar data sets (``*_dsap``, ``*_texture``) get options.

    Args:
        dense (dict): wrapper options, e.g. ``dict(size=32, alignment='dense', iuv_kind='densepose',
            strict=False, cache=False, texture_size=(240, 160))``; each wrapper takes the keys it knows.
            ``max_missing`` (default 0.5): once configured, a split with more than this fraction of its images
            without their sidecar stops with :class:`~torchreid_dense.data.MissingSidecarError` (count, folder,
            command that creates them); below it each split's fallback is reported once.
        **kwargs: torchreid's ``ImageDataManager`` arguments.

    Examples::

        dm = DenseImageDataManager(root='reid-data', sources='market1501_dsap', dense=dict(strict=True))
    """

    def __init__(self, dense=None, **kwargs):
        self.dense_options = dict(dense or {})
        max_missing = self.dense_options.pop("max_missing", 0.5)
        norm = {"norm_mean": tuple(kwargs.get("norm_mean") or IMAGENET_MEAN),
                "norm_std": tuple(kwargs.get("norm_std") or IMAGENET_STD)}
        with deferred_reports():  # torchreid builds the data sets with the default options: report once configured
            super().__init__(**kwargs)
            for dataset in self.datasets():
                if isinstance(dataset, SidecarDataset):
                    options = {k: v for k, v in {**self.dense_options, **norm}.items() if k in dataset.options}
                    dataset.configure(**options)
        check_missing_sidecars(self.datasets(), max_missing)

    def datasets(self):
        """Every data set behind the loaders (train, train targets, query and gallery of each target)."""
        loaders = [self.train_loader, self.train_loader_t]
        for split in self.test_loader.values():
            loaders += [split["query"], split["gallery"]]
        return [loader.dataset for loader in loaders if loader is not None]
