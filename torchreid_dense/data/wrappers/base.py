"""Data sets whose items carry per-image sidecar files (IUV maps, textures) beside the image.

A wrapper class is a torchreid data set class (``Market1501``, ``SynthReID``, ...) with a
:class:`SidecarDataset` mixin, registered as ``<name>_<suffix>`` (``market1501_dsap``). Sidecars are
looked up with :func:`torchreid_dense.dense.sidecar.sidecar_path` relative to the data set's
``dataset_dir`` (torchreid's attribute, e.g. ``<root>/market1501`` for Market-1501).

Images without their sidecar get a documented fallback, counted and reported once per split; when more
than ``max_missing`` of a split's images lack it, :func:`check_missing_sidecars` stops before training
with the count, the folder and the command that creates them (the plugin's data manager calls it).
"""
import logging
import os
import os.path as osp
import sys

import torch

from ... import compat
from ...dense.sidecar import sidecar_path, sidecar_root
from ...registry import DATASETS
from ..datasets.base import SafeImageDataset, SafeImageReading
from ..texture_io import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["SidecarDataset", "MissingSidecarError", "make_wrapper", "check_missing_sidecars"]

logger = logging.getLogger(__name__)


class MissingSidecarError(FileNotFoundError):
    """Images without their sidecar file in ``strict`` mode."""


class SidecarDataset(SafeImageReading):
    """Mixin adding sidecar-derived tensors to torchreid's dict items.

    Subclasses set ``sidecar_kind`` (the sidecar folder read by default), ``default_options``,
    ``fallback_description`` and implement ``_sidecar_item(image, path)`` returning the extra keys
    of one item. Options are given at construction (``sidecar_options``: the plugin's data manager passes
    its ``dense`` options there) or changed later with :meth:`configure`.

    Set-up has two steps: :meth:`_prepare` (at construction: counts the images without a sidecar; strict
    mode raises) and :meth:`finish_setup` (the fallback report; subclasses build caches). With
    ``defer_setup=True`` construction stops after the first: the data manager checks the files first,
    then reports and calls :meth:`finish_setup`.
    """

    sidecar_kind = "densepose"
    default_options = {}
    fallback_description = "empty tensors, valid mask all False"
    # sidecar kind -> how to create the missing files ({dataset_dir}, {name}: the data set's, {kind})
    create_hints = {}
    combined_class = None  # set by make_wrapper: the multi-source class of this wrapper kind

    def __init__(self, *args, sidecar_bases=None, sidecar_options=None, defer_setup=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.sidecar_bases = list(sidecar_bases or [osp.abspath(self.dataset_dir)])
        self.options = dict(self.default_options, norm_mean=IMAGENET_MEAN, norm_std=IMAGENET_STD,
                            sidecar_root="")
        self._set_options(sidecar_options or {})
        self._checked = None
        self._setup_deferred = bool(defer_setup)
        self._prepare()
        if not defer_setup:
            self.finish_setup()

    @classmethod
    def option_names(cls):
        """The options this wrapper takes (its ``default_options``, the normalisation and ``sidecar_root``)."""
        return set(cls.default_options) | {"norm_mean", "norm_std", "sidecar_root"}

    # ----------------------------------------------------------------- options and checks
    def _set_options(self, options):
        unknown = sorted(set(options) - self.option_names())
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown option(s) {unknown}; known: {sorted(self.option_names())}")
        self.options.update(options)

    def configure(self, **options):
        """Set wrapper options (unknown names raise); re-checks sidecars when their location changes."""
        self._set_options(options)
        self._prepare()
        self.finish_setup()
        return self

    @property
    def kind(self):
        """Sidecar folder in use (``densepose``, ``densepose_gt`` or ``textures``)."""
        return self.options.get("iuv_kind", self.sidecar_kind)

    def _base_of(self, path):
        path = osp.abspath(path)
        for base in self.sidecar_bases:
            if path.startswith(base + os.sep):
                return base
        raise ValueError(f"image {path} is not under any data set directory of {type(self).__name__} "
                         f"({self.sidecar_bases})")

    def sidecar_of(self, path):
        """Sidecar file of image ``path`` for the current options.

        With the option ``sidecar_root`` set, sidecars are read from ``<sidecar_root>/<kind>/<rel>/<stem>.png``
        instead of ``<dataset_dir>/<kind>/...`` (e.g. pseudo textures written by
        ``tools/generate_textures.py --output-dir`` beside a read-only data set).
        """
        base = self._base_of(path)
        side = sidecar_path(base, path, self.kind)
        root = self.options.get("sidecar_root")
        return osp.join(osp.abspath(root), osp.relpath(side, base)) if root else side

    @property
    def sidecar_locations(self):
        """The directories sidecars are read from (the data set directories, or ``sidecar_root``)."""
        root = self.options.get("sidecar_root")
        return [osp.abspath(root)] if root else list(self.sidecar_bases)

    def _prepare(self):
        """Count images without a sidecar, once per location; strict mode raises instead."""
        key = (self.kind, bool(self.options.get("strict")), self.options.get("sidecar_root"))
        if self._checked == key:
            return
        self._checked = key
        paths = [item[0] for item in self.data]
        missing = [p for p in paths if not osp.exists(self.sidecar_of(p))]
        self.num_missing_sidecars = len(missing)
        self._missing_summary = None
        self._reported = False
        if not missing:
            return
        where = ", ".join(sidecar_root(b, self.kind) for b in self.sidecar_locations)
        self._missing_summary = (f"{type(self).__name__} ({self.mode}): {len(missing)} of {len(paths)} images have no "
                                 f"'{self.kind}' sidecar under {where} (first missing: {self.sidecar_of(missing[0])})")
        if self.options.get("strict"):
            raise MissingSidecarError(self._missing_summary + f"; create them ({self.create_hint()}) or turn strict "
                                      "mode off to use the documented fallback")

    def finish_setup(self):
        """The last set-up step: report the fallback (subclasses also build their caches here)."""
        self._setup_deferred = False
        self.report_missing()

    def report_missing(self):
        """Log the one-line report of the images without a sidecar, once per count (nothing when there are none)."""
        if self.num_missing_sidecars and not self._reported:
            logger.warning("%s; they get the fallback: %s.", self._missing_summary, self.fallback_description)
        self._reported = True

    def create_hint(self):
        """How to create this data set's missing sidecars (the command, for this data set)."""
        name = next((n for n, cls in DATASETS.items() if cls is type(self)), type(self).__name__)
        base = name.rsplit("_", 1)[0] if "_" in name else name
        hint = self.create_hints.get(self.kind, "README: 'Dense semantics for your own data'")
        return hint.format(dataset_dir=self.sidecar_bases[0], name=base, kind=self.kind)

    def _normalise(self, x):
        """``(x / 255 - mean) / std`` with the image's normalisation, on ``[..., 3, H, W]``."""
        mean = torch.tensor(self.options["norm_mean"], dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.options["norm_std"], dtype=torch.float32).view(3, 1, 1)
        return (x / 255.0 - mean) / std

    # ----------------------------------------------------------------- items
    def __getitem__(self, index):
        item, image = self.read_item(index)
        item.update(self._sidecar_item(image, item["impath"]))
        return item

    # ----------------------------------------------------------------- combining data sets
    def __add__(self, other):
        """Adds the train sets like torchreid's ``Dataset.__add__`` but keeps the sidecars."""
        if not isinstance(other, SidecarDataset) or other.combined_class is not self.combined_class:
            raise TypeError(
                f"cannot combine {type(self).__name__} with {type(other).__name__}: all sources of one run "
                "must be wrapped the same way (e.g. all '<name>_dsap')")
        merged = compat.ImageDataset.__add__(self, other)  # relabels pids / camids like torchreid
        bases = self.sidecar_bases + [b for b in other.sidecar_bases if b not in self.sidecar_bases]
        return self.combined_class(
            merged.train, merged.query, merged.gallery, transform=self.transform, k_tfm=self.k_tfm,
            mode=self.mode, combineall=False, verbose=False, sidecar_bases=bases,
            sidecar_options=self.options, defer_setup=self._setup_deferred,
        )


def check_missing_sidecars(datasets, max_missing=0.5):
    """Stop when a split lacks too many sidecars; otherwise report each split's fallback once.

    Args:
        datasets (iterable): data sets of the splits (others than :class:`SidecarDataset` are skipped).
        max_missing (float): the largest fraction of a split's images that may lack their sidecar.

    Raises:
        MissingSidecarError: naming every split over ``max_missing``: the count, the folder and the command
            that creates the files.
    """
    over, seen = [], set()
    for dataset in datasets:
        if not isinstance(dataset, SidecarDataset) or id(dataset) in seen:
            continue
        seen.add(id(dataset))
        missing, total = dataset.num_missing_sidecars, len(dataset.data)
        if missing > float(max_missing) * total:
            over.append(f"{dataset._missing_summary}. Create them: {dataset.create_hint()}")
        else:
            dataset.report_missing()
    if over:
        raise MissingSidecarError(
            f"more than dense.max_missing {float(max_missing):g} of a split's images lack their sidecar, so training "
            "would learn from the fallback instead: " + " | ".join(over)
            + ". (Raise dense.max_missing to train with the fallback anyway.)")


def make_wrapper(mixin, base, name, module):
    """Create the class ``mixin + base`` named ``name`` in ``module`` (so worker processes can pickle it).

    The first call for a mixin also creates its multi-source class ``<Mixin>Combined``.
    """
    if mixin.__dict__.get("combined_class") is None:
        mixin.combined_class = _define(mixin, SafeImageDataset, mixin.__name__ + "Combined", module)
    return _define(mixin, base, name, module)


def _define(mixin, base, name, module):
    cls = type(name, (mixin, base), {"__module__": module, "__qualname__": name,
                                     "__doc__": f"{base.__name__} with {mixin.__name__}'s sidecar tensors."})
    setattr(sys.modules[module], name, cls)
    return cls
