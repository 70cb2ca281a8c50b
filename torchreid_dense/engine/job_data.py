"""A job's data: the SynthReID directory its ``synth.*`` settings name, the data manager (with errors that say
what is missing where) and the deterministic, resumable train loader."""
import logging

from .. import compat
from ..config import ConfigValueError, imagedata_kwargs
from ..data.availability import DatasetNotFoundError, check_datasets_present, explain_missing_dataset
from .loader import build_train_loader

__all__ = ["check_synth_preset", "resolve_synth_root", "build_datamanager", "use_resumable_train_loader"]

logger = logging.getLogger("torchreid_dense.launch")


def check_synth_preset(cfg):
    """Refuse a ``synth.preset`` that disagrees with the SynthReID data sets the config names.

    The preset of a SynthReID data set is chosen by its registered name (``synthreid`` = small,
    ``synthreid_tiny``, ``synthreid_full``, and their ``_dsap``/``_texture`` wrappers), whose class
    carries it as ``preset``.
    """
    datasets = compat.image_dataset_factory()
    for name in list(cfg.data.sources) + list(cfg.data.targets):
        preset = getattr(datasets.get(name), "preset", None)
        if isinstance(preset, str) and preset != cfg.synth.preset:
            raise ConfigValueError(
                f"synth.preset is '{cfg.synth.preset}' but data set '{name}' is the '{preset}' preset; "
                f"name the data set of the preset you want (e.g. synthreid_{cfg.synth.preset}) or set "
                f"synth.preset {preset}"
            )


def resolve_synth_root(cfg, names=None):
    """Point ``data.root`` at the SynthReID directory of ``synth.seed`` / ``synth.misalignment`` (generated
    when missing) when the run's data sets are SynthReID ones; torchreid's data manager cannot pass those
    settings to a data set, so the data set reads the directory it is given. A no-op for other data sets.
    ``names``: the data sets concerned (default: ``data.sources`` + ``data.targets``)."""
    from ..data.datasets.synthreid import is_synth_dir, resolve_synth_dir

    datasets = compat.image_dataset_factory()
    names = list(dict.fromkeys(names or list(cfg.data.sources) + list(cfg.data.targets)))
    synth = [n for n in names if isinstance(getattr(datasets.get(n), "preset", None), str)]
    if not synth or is_synth_dir(cfg.data.root):
        return cfg
    default = cfg.synth.seed == 0 and cfg.synth.misalignment == 1.0
    if len(synth) < len(names):
        if default:
            return cfg
        raise ConfigValueError(
            f"synth.seed {cfg.synth.seed} / synth.misalignment {cfg.synth.misalignment} apply to SynthReID data sets, "
            f"but this run also uses {[n for n in names if n not in synth]} under the same data.root; run them "
            "separately or leave synth.seed 0 and synth.misalignment 1.0")
    presets = sorted({datasets[n].preset for n in synth})
    if len(presets) > 1:
        raise ConfigValueError(f"data sets {synth} are SynthReID presets {presets}; one run uses one preset")
    path = resolve_synth_dir(cfg.data.root, presets[0], cfg.synth.seed, cfg.synth.misalignment)
    print(f"=> SynthReID {presets[0]}, seed {cfg.synth.seed}, misalignment {cfg.synth.misalignment:g}: {path}")
    cfg.defrost()
    cfg.data.root = path
    cfg.freeze()
    return cfg


def build_datamanager(cfg):
    """``DenseImageDataManager`` for the config, with a clear error when a data set is missing."""
    from ..data.datamanager import DenseImageDataManager

    names = list(dict.fromkeys(list(cfg.data.sources) + list(cfg.data.targets)))
    check_synth_preset(cfg)
    resolve_synth_root(cfg)
    check_datasets_present(cfg.data.root, names)
    try:
        return DenseImageDataManager(**imagedata_kwargs(cfg))
    except RuntimeError as err:
        explained = explain_missing_dataset(err, cfg.data.root, names)
        if explained is None:
            raise
        raise explained from err
    except (IndexError, ZeroDivisionError) as err:  # torchreid's failure on a directory without images
        raise DatasetNotFoundError(
            f"a data set of {names} under data.root '{cfg.data.root}' has an empty split (no images found; "
            f"torchreid failed with {type(err).__name__}: {err}); check that the data set's directories "
            "(e.g. bounding_box_train, query, bounding_box_test) hold its image files, or fetch it again"
        ) from err


def use_resumable_train_loader(cfg, datamanager):
    """Replace torchreid's train loader by the deterministic, resumable (and DDP-partitioned) one."""
    loader = getattr(datamanager, "train_loader", None)
    if loader is None:
        return
    replacement = build_train_loader(
        loader.dataset, cfg.sampler.train_sampler, cfg.train.batch_size, num_instances=cfg.sampler.num_instances,
        workers=cfg.data.workers, seed=cfg.train.seed, use_gpu=cfg.use_gpu,
    )
    if replacement is None:
        logger.warning("sampler.train_sampler '%s' keeps torchreid's loader: model.resume restarts its epoch "
                       "order instead of replaying it", cfg.sampler.train_sampler)
        return
    datamanager.train_loader = replacement


