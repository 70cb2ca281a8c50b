"""The SynthReID directory a config's data sets read: its ``synth.preset`` checked against their names, and
``data.root`` pointed at the set of ``synth.seed`` / ``synth.misalignment`` (generated when missing)."""
from .. import compat
from ..config import ConfigValueError
from .datasets.synthreid import is_synth_dir, resolve_synth_dir

__all__ = ["check_synth_preset", "resolve_synth_root"]


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
