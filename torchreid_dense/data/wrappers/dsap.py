"""DSAP data-set wrappers: items gain the 24 DSAP-images of DSA-reID (Sec. 3.1).

The DSAP-images are warped from the original image and its IUV sidecar, independently of the
augmentation applied to ``img`` (flip, crop, erasing), and normalised like the image.
"""
import hashlib
import logging
import os.path as osp

import numpy as np
import torch
from tqdm import tqdm

from ... import compat
from ...dense.dsap import crop_parts, warp_dsap
from ...dense.iuv import read_iuv
from ...utils.io import atomic_write
from .base import SidecarDataset

__all__ = ["DSAPDataset", "ALIGNMENTS"]

logger = logging.getLogger(__name__)

# dense: DSA-reID's DSAP warping; csa: the coarse part-box crops of the Table 4 ablation.
ALIGNMENTS = {"dense": warp_dsap, "csa": crop_parts}

class DSAPDataset(SidecarDataset):
    """Adds ``dsap`` ``[24, 3, S, S]`` (normalised) and ``dsap_valid`` ``[24]`` to every item.

    Options (``sidecar_options``, ``configure`` or the data manager's ``dense`` dict):
        size: S (32). alignment: ``dense`` or ``csa``. iuv_kind: sidecar folder, ``densepose``
        (estimated, default) or ``densepose_gt``. strict: raise when sidecars are missing.
        cache: warp every image once into a memory-mapped array under ``<dataset_dir>/cache/``.
    Images without an IUV sidecar get mean-initialised DSAP-images and ``dsap_valid`` all False.
    """

    sidecar_kind = "densepose"
    default_options = {"size": 32, "alignment": "dense", "iuv_kind": "densepose", "strict": False,
                       "cache": False}
    fallback_description = "mean-initialised DSAP-images with dsap_valid all False"
    create_hints = {
        "densepose": "import a DensePose dump with python tools/import_densepose.py --dump DUMP.pkl --dataset-dir "
                     "{dataset_dir} (DensePose's apply_net.py dump; classic Caffe2 DensePose <name>_IUV.png files: "
                     "--legacy-iuv-dir DIR instead of --dump), or run DensePose with python "
                     "tools/extract_densepose.py --dataset-dir {dataset_dir} --config CONFIG --weights WEIGHTS",
        "densepose_gt": "ground-truth IUV exists for SynthReID only; use dense.iuv_kind densepose for {name}",
    }

    def _prepare(self):
        super()._prepare()
        if self.options["alignment"] not in ALIGNMENTS:
            raise ValueError(f"unknown DSAP alignment '{self.options['alignment']}'; "
                             f"expected one of {sorted(ALIGNMENTS)}")
        self._cache = None

    def finish_setup(self):
        """Report the fallback; with ``cache``, open the DSAP cache (built from the images on first use)."""
        super().finish_setup()
        self._cache = self._open_cache() if self.options["cache"] else None

    def warp(self, image, path):
        """Uint8-scale DSAP-images ``[24, 3, S, S]`` and valid mask ``[24]`` of one image."""
        img = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).unsqueeze(0)
        iuv_path = self.sidecar_of(path)
        if osp.exists(iuv_path):
            iuv = torch.from_numpy(read_iuv(iuv_path, size=img.shape[2:]))
        else:  # no detection: every chart stays at the image mean
            iuv = torch.zeros((3,) + tuple(img.shape[2:]), dtype=torch.uint8)
        dsap, valid = ALIGNMENTS[self.options["alignment"]](img, iuv.unsqueeze(0), size=self.options["size"])
        return dsap[0], valid[0]

    def _sidecar_item(self, image, path):
        if self._cache is not None:
            index = self._cache_index[path]
            dsap = torch.from_numpy(np.array(self._cache[0][index], dtype=np.float32))
            valid = torch.from_numpy(np.array(self._cache[1][index]))
        else:
            dsap, valid = self.warp(image, path)
        return {"dsap": self._normalise(dsap), "dsap_valid": valid}

    # ----------------------------------------------------------------- cached mode
    def _cache_paths(self):
        o = self.options
        paths = [item[0] for item in self.data]
        digest = hashlib.sha1("\n".join(paths).encode()).hexdigest()[:10]
        stem = osp.join(self.sidecar_locations[0], "cache",
                        f"dsap_{o['iuv_kind']}_{o['alignment']}_S{o['size']}_{self.mode}_{digest}")
        return stem + ".npy", stem + "_valid.npy", paths

    def _open_cache(self):
        dsap_file, valid_file, paths = self._cache_paths()
        self._cache_index = {p: i for i, p in enumerate(paths)}
        if not (osp.exists(dsap_file) and osp.exists(valid_file)):
            s = self.options["size"]
            dsap = np.zeros((len(paths), 24, 3, s, s), dtype=np.uint8)
            valid = np.zeros((len(paths), 24), dtype=bool)
            for i, p in enumerate(tqdm(paths, desc=f"caching DSAP-images ({self.mode})", unit="img")):
                d, v = self.warp(compat.read_image(p), p)
                dsap[i] = d.round().clamp(0, 255).to(torch.uint8).numpy()
                valid[i] = v.numpy()
            for array, target in ((dsap, dsap_file), (valid, valid_file)):
                with atomic_write(target) as f:
                    np.save(f, array)
            logger.info("cached DSAP-images of %d images in %s", len(paths), dsap_file)
        return np.load(dsap_file, mmap_mode="r"), np.load(valid_file, mmap_mode="r")

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = None  # memory maps are reopened in each worker
        state["_reopen_cache"] = self._cache is not None
        return state

    def __setstate__(self, state):
        reopen = state.pop("_reopen_cache", False)
        self.__dict__.update(state)
        if reopen:
            self._cache = self._open_cache()
