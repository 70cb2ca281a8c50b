"""A config file and ``KEY VALUE`` overrides merged over the defaults: the one reader of every tool and job."""
from ..utils.device import resolve_use_gpu
from .defaults import get_default_config

__all__ = ["load_config"]


def load_config(config_file="", opts=()):
    """Defaults <- ``config_file`` <- ``opts``; returns the frozen config.

    ``use_gpu`` is turned off when no GPU is present, so a config written on a GPU machine
    runs on a CPU-only one.
    """
    cfg = get_default_config()
    if config_file:
        cfg.merge_from_file(config_file)
    if opts:
        cfg.merge_from_list(list(opts))
    cfg.use_gpu = resolve_use_gpu(cfg.use_gpu)
    cfg.freeze()
    return cfg
