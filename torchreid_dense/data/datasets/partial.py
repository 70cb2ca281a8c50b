"""Partial re-ID test sets: Partial-REID and Partial-iLIDS (SAN, AAAI 2020, Sec. 4.6 / Table 4).

Partial person images are the queries and holistic images the gallery. Both sets are test-only:
train a model on another data set (the paper uses Market-1501) and name these in
``data.targets``::

    data:
      sources: ['market1501']
      targets: ['market1501', 'partial_reid', 'partial_ilids']

Queries get camera id 0 and gallery images camera id 1, so torchreid's evaluator (which discards
same-identity gallery images from the query's own camera) keeps every true match.

Layouts (under ``data.root``; the first directory name found is used):

- Partial-REID (Zheng et al., ICCV 2015; 60 identities, 5 partial + 5 whole-body images each)::

      partial_reid/                 (or Partial-REID_Dataset/, Partial_REID/, PartialREID/)
          partial_body_images/001_01.jpg ...
          whole_body_images/001_01.jpg ...

- Partial-iLIDS (He et al., CVPR 2018; 119 identities, one probe and one gallery image each)::

      partial_ilids/                (or Partial_iLIDS/, PartialiLIDS/)
          Probe/001.jpg ...
          Gallery/001.jpg ...

The identity is the leading number of the file name (``001_01.jpg`` and ``001.jpg`` -> 1).
"""
import glob
import os.path as osp
import re

from ...registry import DATASETS
from .base import SafeImageDataset

__all__ = ["PartialREID", "PartialiLIDS", "TestOnlyImageDataset"]

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
_PID = re.compile(r"^(\d+)")
QUERY_CAMID = 0
GALLERY_CAMID = 1


class TestOnlyImageDataset(SafeImageDataset):
    """An ``ImageDataset`` with query and gallery only (``train`` is empty).

    torchreid's ``Dataset`` expects a non-empty train list; this class gives it none and refuses
    ``mode='train'`` with a message saying where the data set belongs (``data.targets``).
    ``combineall`` is ignored: test images never enter training.
    """

    dir_names = ()  # accepted directory names under data.root, preferred first
    query_subdir = ""  # sub-directory holding the query (partial) images
    gallery_subdir = ""  # sub-directory holding the gallery (holistic) images

    def __init__(self, root="", **kwargs):
        name = type(self).__name__
        if kwargs.get("mode", "train") == "train":
            raise ValueError(
                f"{name} is a test-only data set (partial query images, holistic gallery) and has no "
                "training images: list it in data.targets, not data.sources"
            )
        self.root = osp.abspath(osp.expanduser(root))
        self.data_dir = self.find_data_dir(self.root)
        self.query_dir = osp.join(self.data_dir, self.query_subdir)
        self.gallery_dir = osp.join(self.data_dir, self.gallery_subdir)
        self.check_before_run([self.data_dir, self.query_dir, self.gallery_dir])
        query = self.list_images(self.query_dir, QUERY_CAMID)
        gallery = self.list_images(self.gallery_dir, GALLERY_CAMID)
        for split, items, where in (("query", query, self.query_dir), ("gallery", gallery, self.gallery_dir)):
            if not items:
                raise RuntimeError(
                    f"{name}: no images in the {split} directory '{where}'; expected "
                    f"{'/'.join(_IMAGE_EXTS)} files named '<pid>...' (e.g. 001_01.jpg)"
                )
        kwargs["combineall"] = False
        verbose = kwargs.pop("verbose", True)
        query = [(*item, 0) for item in query]
        gallery = [(*item, 0) for item in gallery]
        # torchreid reads train[0] to detect the tuple length: hand it the query list, then empty it.
        super().__init__(query, query, gallery, verbose=False, **kwargs)
        self.train = []
        self.num_train_pids = 0
        self.num_train_cams = 0
        self.num_datasets = 0
        if verbose:
            self.show_summary()

    def find_data_dir(self, root):
        """First existing directory among ``self.dir_names`` under ``root`` (the first one if none)."""
        root = osp.abspath(osp.expanduser(root))
        for name in self.dir_names:
            if osp.isdir(osp.join(root, name)):
                return osp.join(root, name)
        return osp.join(root, self.dir_names[0])

    @staticmethod
    def list_images(dir_path, camid):
        """``(path, pid, camid)`` for every image in ``dir_path`` (sorted; pid = leading number)."""
        items = []
        for path in sorted(glob.glob(osp.join(dir_path, "*"))):
            if not path.lower().endswith(_IMAGE_EXTS):
                continue
            match = _PID.match(osp.basename(path))
            if match is None:
                raise ValueError(
                    f"'{path}': cannot read the identity; file names must start with the person id "
                    "(e.g. 001_01.jpg or 001.jpg)"
                )
            items.append((path, int(match.group(1)), camid))
        return items


@DATASETS.register("partial_reid")
class PartialREID(TestOnlyImageDataset):
    """Partial-REID (Zheng et al., ICCV 2015): partial-body queries, whole-body gallery."""

    dataset_dir = "partial_reid"
    dir_names = ("partial_reid", "Partial-REID_Dataset", "Partial_REID", "PartialREID")
    query_subdir = "partial_body_images"
    gallery_subdir = "whole_body_images"


@DATASETS.register("partial_ilids")
class PartialiLIDS(TestOnlyImageDataset):
    """Partial-iLIDS (He et al., CVPR 2018): occluded probe images, holistic gallery."""

    dataset_dir = "partial_ilids"
    dir_names = ("partial_ilids", "Partial_iLIDS", "PartialiLIDS")
    query_subdir = "Probe"
    gallery_subdir = "Gallery"

