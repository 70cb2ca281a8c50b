"""Say clearly when a data set is not under ``data.root``: which directory, and how to get it.

torchreid fails on a missing data set with ``RuntimeError: "<path>" is not found`` (or first
tries a download from a URL that is often dead). :func:`check_datasets_present` runs before the
data manager is built and :func:`explain_missing_dataset` turns torchreid's error into a
:class:`DatasetNotFoundError` that names the expected directory and the way to get the data.
Data sets that are not in :data:`DATASET_GUIDES` (``synthreid`` is generated on first use,
custom data sets explain themselves) are left to their own checks.
"""
import os.path as osp
import re

from .. import compat
from .datasets.partial import PartialiLIDS, PartialREID

__all__ = ["DatasetNotFoundError", "DATASET_GUIDES", "check_datasets_present", "explain_missing_dataset"]

_DOCS = "https://kaiyangzhou.github.io/deep-person-reid/datasets.html"

# data-set name -> how to get it and how to lay it out (``{dir}`` = the expected directory).
DATASET_GUIDES = {
    "market1501": (
        "download Market-1501-v15.09.15.zip (http://www.liangzheng.org/Project/project_reid.html, "
        f"see {_DOCS}) and unzip it into {{dir}} so that {{dir}}/Market-1501-v15.09.15/"
        "bounding_box_train, query and bounding_box_test exist"
    ),
    "cuhk03": (
        "download cuhk03_release.zip (http://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html) "
        "and unzip it into {dir} (giving {dir}/cuhk03_release/cuhk-03.mat), then put "
        "cuhk03_new_protocol_config_detected.mat and cuhk03_new_protocol_config_labeled.mat "
        "(https://github.com/zhunzhong07/person-re-ranking/tree/master/evaluation/data/CUHK03, the "
        f"767/700 split) in {{dir}}; see {_DOCS}"
    ),
    "dukemtmcreid": (
        "get DukeMTMC-reID.zip (the data set was withdrawn by its authors; use a copy you are licensed "
        f"to use, see {_DOCS}) and unzip it into {{dir}} so that {{dir}}/DukeMTMC-reID/"
        "bounding_box_train exists"
    ),
    "msmt17": (
        "request MSMT17 from its authors (http://www.pkuvmc.com/publications/msmt17.html) and unpack "
        f"MSMT17_V1 or MSMT17_V2 into {{dir}}; see {_DOCS}"
    ),
    "cuhk01": (
        "download CUHK01 (http://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html) and put "
        f"CUHK01.zip or its campus/ folder in {{dir}}; see {_DOCS}"
    ),
    "partial_reid": (
        "get Partial-REID (Zheng et al., ICCV 2015) and unpack it into {dir} so that "
        "{dir}/partial_body_images and {dir}/whole_body_images exist"
    ),
    "partial_ilids": (
        "get Partial-iLIDS (He et al., CVPR 2018) and unpack it into {dir} so that {dir}/Probe and "
        "{dir}/Gallery exist"
    ),
}

# data-set class -> its name in DATASET_GUIDES (wrappers such as market1501_dsap subclass these).
_GUIDED_CLASSES = {compat.STOCK_IMAGE_DATASETS[name]: name for name in DATASET_GUIDES
                   if name in compat.STOCK_IMAGE_DATASETS}
_GUIDED_CLASSES.update({PartialREID: "partial_reid", PartialiLIDS: "partial_ilids"})


class DatasetNotFoundError(FileNotFoundError):
    """A data set the config names is not where the config says it is."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def _guided(name):
    """``(guide name, class)`` of the registered data set ``name``, or None when it has no guide."""
    cls = compat.image_dataset_factory().get(name)
    if cls is None:
        return None
    for klass in cls.__mro__:
        if klass in _GUIDED_CLASSES:
            return _GUIDED_CLASSES[klass], klass
    return None


def _message(name, guide_name, expected, missing=None):
    what = f"'{missing}' is missing" if missing and missing != expected else "it is missing"
    return (
        f"data set '{name}' not found: expected the directory '{expected}' ({what}). "
        f"To get it: {DATASET_GUIDES[guide_name].format(dir=expected)}. "
        "Or point data.root at the directory that holds it."
    )


def check_datasets_present(root, names):
    """Raise :class:`DatasetNotFoundError` for the first data set of ``names`` with no directory.

    Only data sets with a guide are checked (their directory is ``<root>/<dataset_dir>``); the
    check runs before torchreid would try a download into an empty directory.
    """
    for name, guide_name, expected in _expected_dirs(root, names):
        if not osp.isdir(expected):
            raise DatasetNotFoundError(_message(name, guide_name, expected))


def _expected_dir(root, klass):
    names = getattr(klass, "dir_names", None) or (klass.dataset_dir,)
    for dirname in names:
        if osp.isdir(osp.join(root, dirname)):
            return osp.join(root, dirname)
    return osp.join(root, names[0])


def _expected_dirs(root, names):
    """``(name, guide name, expected directory)`` of each data set of ``names`` that has a guide."""
    root = osp.abspath(osp.expanduser(root))
    for name in names:
        found = _guided(name)
        if found is not None:
            yield (name, found[0], _expected_dir(root, found[1]))


_NOT_FOUND = re.compile(r'"(.+)" is not found')


def explain_missing_dataset(error, root, names):
    """A :class:`DatasetNotFoundError` for torchreid's ``"<path>" is not found``, else None."""
    match = _NOT_FOUND.search(str(error))
    if match is None:
        return None
    missing = match.group(1)
    root = osp.abspath(osp.expanduser(root))
    for name, guide_name, expected in _expected_dirs(root, names):
        if missing == expected or missing.startswith(expected + osp.sep):
            return DatasetNotFoundError(_message(name, guide_name, expected, missing))
    return DatasetNotFoundError(
        f"a data set file or directory is missing: '{missing}' (data.root is '{root}', data sets "
        f"{list(names)}); check the data set's layout ({_DOCS})"
    )
