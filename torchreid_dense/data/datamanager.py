"""torchreid's ImageDataManager, passing the plugin's ``dense`` options to sidecar data sets."""
import torch

from .. import compat
from .file_check import cache_file_for, check_datasets
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
        file_check (dict or bool): before any epoch every image and sidecar the loaders will read is checked
            (:func:`~torchreid_dense.data.file_check.check_datasets`, cached): ``dict(skip_bad=False,
            workers=<workers>, cache_dir='' (the user cache dir), progress=True)``; False: no check.
            The report is ``self.file_check``.
        **kwargs: torchreid's ``ImageDataManager`` arguments.

    Examples::

        dm = DenseImageDataManager(root='reid-data', sources='market1501_dsap', dense=dict(strict=True))
    """

    def __init__(self, dense=None, file_check=True, **kwargs):
        self.dense_options = dict(dense or {})
        max_missing = self.dense_options.pop("max_missing", 0.5)
        dsap_cache = self.dense_options.pop("cache", None)  # built from the files once they are checked
        norm = {"norm_mean": tuple(kwargs.get("norm_mean") or IMAGENET_MEAN),
                "norm_std": tuple(kwargs.get("norm_std") or IMAGENET_STD)}
        with deferred_reports():  # torchreid builds the data sets with the default options: report once configured
            super().__init__(**kwargs)
            for dataset in self.datasets():
                if isinstance(dataset, SidecarDataset):
                    options = {k: v for k, v in {**self.dense_options, **norm}.items() if k in dataset.options}
                    dataset.configure(**options)
        check_missing_sidecars(self.datasets(), max_missing)
        self.file_check = self._check_files(file_check, kwargs) if file_check is not False else None
        if dsap_cache is not None:
            for dataset in self.datasets():
                if isinstance(dataset, SidecarDataset) and "cache" in dataset.options:
                    dataset.configure(cache=dsap_cache)

    def _check_files(self, options, kwargs):
        """Check every file of the splits; after ``skip_bad`` dropped train images, rebuild the train samplers."""
        options = dict(options) if isinstance(options, dict) else {}
        datasets = self.datasets()
        train = [self.train_loader.dataset] + ([self.train_loader_t.dataset] if self.train_loader_t else [])
        before = [len(ds.data) for ds in train]
        report = check_datasets(datasets, skip_bad=options.get("skip_bad", False),
                                workers=options.get("workers", kwargs.get("workers", 4)),
                                cache_file=cache_file_for(datasets, options.get("cache_dir") or None),
                                progress=options.get("progress", True))
        if [len(ds.data) for ds in train] != before:
            self.train_loader = self._resampled(self.train_loader, kwargs.get("train_sampler", "RandomSampler"), kwargs)
            if self.train_loader_t is not None:
                self.train_loader_t = self._resampled(self.train_loader_t,
                                                      kwargs.get("train_sampler_t", "RandomSampler"), kwargs)
        return report

    @staticmethod
    def _resampled(loader, sampler_name, kwargs):
        """``loader`` with its train sampler built again on the data set's current items (torchreid's recipe)."""
        sampler = compat.data.sampler.build_train_sampler(
            loader.dataset.train, sampler_name, batch_size=loader.batch_size,
            num_instances=kwargs.get("num_instances", 4), num_cams=kwargs.get("num_cams", 1),
            num_datasets=kwargs.get("num_datasets", 1))
        return torch.utils.data.DataLoader(loader.dataset, sampler=sampler, batch_size=loader.batch_size,
                                           shuffle=False, num_workers=loader.num_workers,
                                           pin_memory=loader.pin_memory, drop_last=True)

    def datasets(self):
        """Every data set behind the loaders (train, train targets, query and gallery of each target)."""
        loaders = [self.train_loader, self.train_loader_t]
        for split in self.test_loader.values():
            loaders += [split["query"], split["gallery"]]
        return [loader.dataset for loader in loaders if loader is not None]
