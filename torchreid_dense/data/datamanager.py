"""torchreid's ImageDataManager whose sidecar data sets are built once, with the plugin's ``dense`` options."""
import inspect

import torch

from .. import compat
from .file_check import cache_file_for, check_datasets
from .texture_io import IMAGENET_MEAN, IMAGENET_STD
from .wrappers.base import SidecarDataset, check_missing_sidecars

__all__ = ["DenseImageDataManager"]

# torchreid's ImageDataManager arguments and their defaults (the plugin's manager takes the same).
_TORCHREID_ARGUMENTS = {name: p.default for name, p in inspect.signature(compat.ImageDataManager).parameters.items()}
# The arguments torchreid's manager hands to every data set it builds.
_DATASET_ARGUMENTS = ("root", "split_id", "cuhk03_labeled", "cuhk03_classic_split", "market1501_500k")


class DenseImageDataManager(compat.ImageDataManager):
    """``torchreid.data.ImageDataManager`` whose sidecar data sets (``*_dsap``, ``*_texture``) get options.

    torchreid's manager builds its data sets with a fixed set of arguments; this one builds them itself,
    with the same arguments plus each sidecar data set's options, and hands them to loaders made as
    torchreid makes them (same samplers, batch sizes, workers, summary).

    Args:
        dense (dict): wrapper options, e.g. ``dict(size=32, alignment='dense', iuv_kind='densepose',
            strict=False, cache=False, texture_size=(240, 160))``; each wrapper takes the keys it knows.
            ``max_missing`` (default 0.5): a split with more than this fraction of its images without their
            sidecar stops with :class:`~torchreid_dense.data.MissingSidecarError` (count, folder, command
            that creates them); below it each split's fallback is reported once.
        file_check (dict or bool): before any epoch every image and sidecar the loaders will read is checked
            (:func:`~torchreid_dense.data.file_check.check_datasets`, cached): ``dict(skip_bad=False,
            workers=<workers>, cache_dir='' (the user cache dir), progress=True)``; False: no check.
            The report is ``self.file_check``. A DSAP cache (``dense.cache``) is built after the check.
        **kwargs: torchreid's ``ImageDataManager`` arguments (same names, same defaults).

    Examples::

        dm = DenseImageDataManager(root='reid-data', sources='market1501_dsap', dense=dict(strict=True))
    """

    def __init__(self, dense=None, file_check=True, **kwargs):
        unknown = sorted(set(kwargs) - set(_TORCHREID_ARGUMENTS))
        if unknown:
            raise TypeError(f"DenseImageDataManager: unknown argument(s) {unknown}; torchreid's ImageDataManager "
                            f"takes {sorted(_TORCHREID_ARGUMENTS)}")
        args = {**_TORCHREID_ARGUMENTS, **kwargs}
        self.dense_options = dict(dense or {})
        max_missing = self.dense_options.pop("max_missing", 0.5)
        self._sidecar_options = {**self.dense_options, "norm_mean": tuple(args["norm_mean"] or IMAGENET_MEAN),
                                 "norm_std": tuple(args["norm_std"] or IMAGENET_STD)}
        # torchreid's DataManager (sources, targets, transforms, use_gpu); not ImageDataManager.__init__, which
        # would build every data set with its default options
        super(compat.ImageDataManager, self).__init__(
            sources=args["sources"], targets=args["targets"], height=args["height"], width=args["width"],
            transforms=args["transforms"], norm_mean=args["norm_mean"], norm_std=args["norm_std"],
            use_gpu=args["use_gpu"])
        self._build_loaders(args)
        check_missing_sidecars(self.datasets(), max_missing)
        self.file_check = self._check_files(file_check, args) if file_check is not False else None
        for dataset in self.datasets():
            if isinstance(dataset, SidecarDataset):
                dataset.finish_setup()

    # ----------------------------------------------------------------- building (torchreid's recipe)
    def _dataset(self, name, args, **split):
        """Data set ``name`` with torchreid's arguments; a sidecar data set also gets its final options."""
        kwargs = {key: args[key] for key in _DATASET_ARGUMENTS}
        cls = compat.image_dataset_factory().get(name)
        if isinstance(cls, type) and issubclass(cls, SidecarDataset):
            names = cls.option_names()
            kwargs.update(defer_setup=True,
                          sidecar_options={k: v for k, v in self._sidecar_options.items() if k in names})
        return compat.data.datasets.init_image_dataset(name, **kwargs, **split)

    def _build_loaders(self, args):
        """``train_loader``, ``train_loader_t``, ``test_loader`` and ``test_dataset`` as torchreid builds them."""
        print("=> Loading train (source) dataset")
        trainset = sum(self._dataset(name, args, transform=self.transform_tr, k_tfm=args["k_tfm"], mode="train",
                                     combineall=args["combineall"]) for name in self.sources)
        self._num_train_pids = trainset.num_train_pids
        self._num_train_cams = trainset.num_train_cams
        self.train_loader = self._train_loader(trainset, args["train_sampler"], args)
        self.train_loader_t = None
        if args["load_train_targets"]:
            assert not set(self.sources) & set(self.targets), \
                f"sources={self.sources} and targets={self.targets} must not have overlap"
            print("=> Loading train (target) dataset")
            trainset_t = sum(self._dataset(name, args, transform=self.transform_tr, k_tfm=args["k_tfm"],
                                           mode="train", combineall=False) for name in self.targets)
            self.train_loader_t = self._train_loader(trainset_t, args["train_sampler_t"], args)

        print("=> Loading test (target) dataset")
        self.test_loader = {name: {"query": None, "gallery": None} for name in self.targets}
        self.test_dataset = {name: {"query": None, "gallery": None} for name in self.targets}
        for name in self.targets:
            for mode, verbose in (("query", True), ("gallery", False)):
                dataset = self._dataset(name, args, transform=self.transform_te, mode=mode,
                                        combineall=args["combineall"], verbose=verbose)
                self.test_loader[name][mode] = torch.utils.data.DataLoader(
                    dataset, batch_size=args["batch_size_test"], shuffle=False, num_workers=args["workers"],
                    pin_memory=self.use_gpu, drop_last=False)
                self.test_dataset[name][mode] = getattr(dataset, mode)
        self._print_summary(trainset, self.train_loader_t)

    def _train_loader(self, dataset, sampler_name, args):
        """torchreid's train loader: its train sampler over ``dataset``'s current items."""
        sampler = compat.data.sampler.build_train_sampler(
            dataset.train, sampler_name, batch_size=args["batch_size_train"], num_instances=args["num_instances"],
            num_cams=args["num_cams"], num_datasets=args["num_datasets"])
        return torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=args["batch_size_train"],
                                           shuffle=False, num_workers=args["workers"], pin_memory=self.use_gpu,
                                           drop_last=True)

    def _print_summary(self, trainset, train_loader_t):
        print("\n\n  **************** Summary ****************")
        print(f"  source            : {self.sources}")
        print(f"  # source datasets : {len(self.sources)}")
        print(f"  # source ids      : {self.num_train_pids}")
        print(f"  # source images   : {len(trainset)}")
        print(f"  # source cameras  : {self.num_train_cams}")
        if train_loader_t is not None:
            print(f"  # target images   : {len(train_loader_t.dataset)} (unlabeled)")
        print(f"  target            : {self.targets}")
        print("  *****************************************\n\n")

    # ----------------------------------------------------------------- the file check
    def _check_files(self, options, args):
        """Check every file of the splits; after ``skip_bad`` dropped train images, rebuild the train samplers."""
        options = dict(options) if isinstance(options, dict) else {}
        datasets = self.datasets()
        train = [self.train_loader.dataset] + ([self.train_loader_t.dataset] if self.train_loader_t else [])
        before = [len(ds.data) for ds in train]
        report = check_datasets(datasets, skip_bad=options.get("skip_bad", False),
                                workers=options.get("workers", args["workers"]),
                                cache_file=cache_file_for(datasets, options.get("cache_dir") or None),
                                progress=options.get("progress", True))
        if [len(ds.data) for ds in train] != before:
            self.train_loader = self._train_loader(self.train_loader.dataset, args["train_sampler"], args)
            if self.train_loader_t is not None:
                self.train_loader_t = self._train_loader(self.train_loader_t.dataset, args["train_sampler_t"], args)
        return report

    def datasets(self):
        """Every data set behind the loaders (train, train targets, query and gallery of each target)."""
        loaders = [self.train_loader, self.train_loader_t]
        for split in self.test_loader.values():
            loaders += [split["query"], split["gallery"]]
        return [loader.dataset for loader in loaders if loader is not None]
