"""SynthReID as a torchreid image data set (issue 3, "Layout and integration").

Registered as ``synthreid`` (preset ``small``), ``synthreid_tiny`` and ``synthreid_full``. torchreid's
``ImageDataManager`` passes a fixed set of keyword arguments, so the preset is chosen by the
registered name; constructing the class directly also accepts ``synth_preset``, ``synth_seed``,
``synth_height``, ``synth_width``, ``synth_misalignment`` and ``synth_workers``. The data set is generated
under ``<root>/synthreid/<preset>_s<seed>/`` on first use (with a progress bar) and reused afterwards;
a directory generated with other settings raises ``ManifestMismatchError``. ``root`` may also be a generated
SynthReID directory itself (it holds ``manifest.json``): that is how ``tools/main.py`` runs another seed or
misalignment (``synth.seed``, ``synth.misalignment``), see :func:`resolve_synth_dir`.
"""
import glob
import os
import os.path as osp
import re

from ...registry import DATASETS
from ..synth.generate import ensure_dataset, make_config, read_manifest
from .base import SafeImageDataset

__all__ = ["SynthReID", "SynthReIDTiny", "SynthReIDFull", "is_synth_dir", "resolve_synth_dir"]


def _registered_name(preset):
    """The registered data set name of a preset (``small`` is plain ``synthreid``)."""
    return "synthreid" if preset == "small" else f"synthreid_{preset}"


def is_synth_dir(path):
    """True when ``path`` is a generated SynthReID directory (its ``manifest.json`` names the generator)."""
    try:
        return read_manifest(path).get("generator") == "torchreid_dense.data.synth"
    except (OSError, ValueError):
        return False


def resolve_synth_dir(root, preset, seed=0, misalignment=1.0, workers=None):
    """The SynthReID directory of (preset, seed, misalignment) under ``root``, generated when missing."""
    config = make_config(preset, misalignment=float(misalignment))
    return ensure_dataset(root, preset, int(seed), config=config, workers=workers or os.cpu_count() or 1)

_NAME = re.compile(r"([-\d]+)_c(\d)")


@DATASETS.register("synthreid")
class SynthReID(SafeImageDataset):
    """SynthReID, the embedded procedural re-ID data set with ground-truth dense semantics.

    Market-1501 layout and naming: ``bounding_box_train`` (relabelled pids), ``query``,
    ``bounding_box_test`` (pid 0 = distractor); sidecars ``densepose/``, ``densepose_gt/``,
    ``textures/`` per ``dense.sidecar``.

    Args:
        root: data root; the set lives in ``<root>/synthreid/<preset>_s<seed>``. Or a SynthReID directory
            (with ``manifest.json``), used as it is; its preset must be this class's.
        synth_preset: ``tiny``, ``small`` or ``full`` (default: the class's ``preset``).
        synth_seed: generation seed.
        synth_height, synth_width: image size (default 128 x 64).
        synth_misalignment: scale of pose/viewpoint spread, box jitter and occluder odds (default 1.0).
        synth_workers: processes used if the set has to be generated (default: all CPU cores; the
            files do not depend on it).
        **kwargs: torchreid's ``ImageDataset`` arguments (transform, mode, combineall, verbose, ...).
    """

    _junk_pids = [0, -1]
    preset = "small"

    def __init__(self, root="", synth_preset=None, synth_seed=0, synth_height=None, synth_width=None,
                 synth_misalignment=None, synth_workers=None, **kwargs):
        self.root = osp.abspath(osp.expanduser(root))
        self.synth_preset = synth_preset or self.preset
        if is_synth_dir(self.root):
            manifest = read_manifest(self.root)
            if manifest.get("preset") != self.synth_preset:
                raise ValueError(
                    f"{self.root} is a SynthReID '{manifest.get('preset')}' directory but data set "
                    f"{type(self).__name__} is the '{self.synth_preset}' preset; name the data set of that preset "
                    f"({_registered_name(manifest.get('preset'))}) or point data.root at a '{self.synth_preset}' set")
            self.synth_seed = int(manifest["seed"])
            self.dataset_dir = self.root
        else:
            self.synth_seed = int(synth_seed)
            extra = {} if synth_misalignment is None else {"misalignment": float(synth_misalignment)}
            config = make_config(self.synth_preset, height=synth_height, width=synth_width, **extra)
            self.dataset_dir = ensure_dataset(self.root, self.synth_preset, self.synth_seed, config=config,
                                              workers=synth_workers or os.cpu_count() or 1)
        self.train_dir = osp.join(self.dataset_dir, "bounding_box_train")
        self.query_dir = osp.join(self.dataset_dir, "query")
        self.gallery_dir = osp.join(self.dataset_dir, "bounding_box_test")
        self.check_before_run([self.dataset_dir, self.train_dir, self.query_dir, self.gallery_dir])
        train = self.process_dir(self.train_dir, relabel=True)
        query = self.process_dir(self.query_dir)
        gallery = self.process_dir(self.gallery_dir)
        super().__init__(train, query, gallery, **kwargs)

    @staticmethod
    def process_dir(dir_path, relabel=False):
        """``(path, pid, camid)`` of every image (camid 0-based; train pids relabelled 0..N-1)."""
        data = []
        for path in sorted(glob.glob(osp.join(dir_path, "*.jpg"))):
            pid, cam = map(int, _NAME.search(osp.basename(path)).groups())
            if pid == -1:
                continue
            data.append((path, pid, cam - 1))
        if relabel:
            label = {pid: i for i, pid in enumerate(sorted({p for _, p, _ in data}))}
            data = [(path, label[pid], cam) for path, pid, cam in data]
        return data


@DATASETS.register("synthreid_tiny")
class SynthReIDTiny(SynthReID):
    """SynthReID, preset ``tiny`` (about 20 + 20 identities; tests and quick runs)."""

    preset = "tiny"


@DATASETS.register("synthreid_full")
class SynthReIDFull(SynthReID):
    """SynthReID, preset ``full`` (Market-1501 scale: 751 + 750 identities)."""

    preset = "full"
