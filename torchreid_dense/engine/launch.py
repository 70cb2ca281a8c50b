"""The training / evaluation job behind ``tools/main.py``.

``python tools/main.py --config-file configs/san_market.yaml [KEY VALUE ...]``:

1. merges the defaults, the file and the ``KEY VALUE`` overrides, freezes the config;
2. seeds, creates ``data.save_dir``, writes the merged config to ``<save_dir>/config.yaml`` and
   logs to the console and ``<save_dir>/log.txt``;
3. builds the data manager (``DenseImageDataManager`` with :func:`imagedata_kwargs`), the model
   and its engine name (:func:`build_model_from_config`), the optimiser and lr scheduler
   (:mod:`torchreid_dense.optim`), and the engine (``ENGINES.get(name).from_config``);
4. loads ``model.load_weights`` or resumes from ``model.resume``, then runs torchreid's
   ``Engine.run`` (``test.evaluate True`` = test only) and returns the metrics.

Everything runs on the CPU when ``use_gpu`` is False or no GPU is present.
"""
import argparse
import contextlib
import logging
import os
import os.path as osp
import sys

import torch

from .. import compat
from ..config import (
    ConfigKeyError,
    ConfigValueError,
    engine_run_kwargs,
    get_default_config,
    imagedata_kwargs,
    lr_scheduler_kwargs,
    optimizer_kwargs,
)
from ..data.availability import DatasetNotFoundError, check_datasets_present, explain_missing_dataset
from ..models import build_model_from_config
from ..optim import build_lr_scheduler, build_optimizer
from ..registry import ENGINES

__all__ = ["build_parser", "load_config", "check_synth_preset", "main", "cli", "LOG_FILE", "CONFIG_FILE"]

logger = logging.getLogger("torchreid_dense.launch")

LOG_FILE = "log.txt"
CONFIG_FILE = "config.yaml"


def build_parser():
    """The command-line parser of ``tools/main.py``."""
    parser = argparse.ArgumentParser(
        description="Train and evaluate torchreid / torchreid_dense models from a yacs config.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config-file", type=str, default="", help="path to a YAML config file")
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="config overrides as KEY VALUE pairs, e.g. train.max_epoch 10 model.pretrained False",
    )
    return parser


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
    if cfg.use_gpu and not torch.cuda.is_available():
        cfg.use_gpu = False
    cfg.freeze()
    return cfg


class _Tee:
    """A text stream writing to the console stream and the log file."""

    def __init__(self, console, logfile):
        self.console = console
        self.logfile = logfile

    def write(self, text):
        self.console.write(text)
        self.logfile.write(text)
        return len(text)

    def flush(self):
        self.console.flush()
        self.logfile.flush()

    def isatty(self):
        return False


@contextlib.contextmanager
def _log_to(save_dir):
    """Log the job (our messages and torchreid's prints) to the console and ``<save_dir>/log.txt``.

    ``sys.stdout`` is only redirected inside this block and restored on exit, even on error.
    """
    console = sys.stdout
    with open(osp.join(save_dir, LOG_FILE), "a", encoding="utf-8") as logfile:
        tee = _Tee(console, logfile)
        handler = logging.StreamHandler(tee)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root = logging.getLogger("torchreid_dense")
        previous_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(tee):
                yield
        finally:
            root.removeHandler(handler)
            root.setLevel(previous_level)
            tee.flush()


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


def _build_datamanager(cfg):
    """``DenseImageDataManager`` for the config, with a clear error when a data set is missing."""
    from ..data.datamanager import DenseImageDataManager

    names = list(dict.fromkeys(list(cfg.data.sources) + list(cfg.data.targets)))
    check_synth_preset(cfg)
    check_datasets_present(cfg.data.root, names)
    try:
        return DenseImageDataManager(**imagedata_kwargs(cfg))
    except RuntimeError as err:
        explained = explain_missing_dataset(err, cfg.data.root, names)
        if explained is None:
            raise
        raise explained from err


def _record_metrics(engine):
    """Keep what every evaluation of ``engine`` returns, per target (for :func:`main`'s result)."""
    metrics = {}
    evaluate = engine._evaluate

    def recording(*args, **kwargs):
        result = evaluate(*args, **kwargs)
        name = kwargs.get("dataset_name", args[0] if args else "")
        if isinstance(result, dict):
            metrics[name] = {k: float(v) for k, v in result.items()}
        else:
            rank1, mAP = result[:2]
            metrics[name] = {"rank1": float(rank1), "mAP": float(mAP)}
        return result

    engine._evaluate = recording
    return metrics


def _run(cfg):
    compat.utils.set_random_seed(cfg.train.seed)
    if cfg.use_gpu:
        torch.backends.cudnn.benchmark = True
    logger.info("Config:\n%s", cfg.dump())

    datamanager = _build_datamanager(cfg)
    model, engine_name = build_model_from_config(cfg, datamanager.num_train_pids)
    logger.info(
        "Model %s (%.2f M parameters), engine '%s'",
        cfg.model.name, sum(p.numel() for p in model.parameters()) / 1e6, engine_name,
    )
    if cfg.model.load_weights:
        _require_file(cfg.model.load_weights, "model.load_weights")
        compat.utils.load_pretrained_weights(model, cfg.model.load_weights)
    if cfg.use_gpu:
        model = model.cuda()

    optimizer = build_optimizer(model, **optimizer_kwargs(cfg))
    scheduler = build_lr_scheduler(optimizer, **lr_scheduler_kwargs(cfg))

    run_kwargs = engine_run_kwargs(cfg)
    if cfg.model.resume:
        _require_file(cfg.model.resume, "model.resume")
        run_kwargs["start_epoch"] = compat.utils.resume_from_checkpoint(
            cfg.model.resume, model, optimizer=optimizer, scheduler=scheduler
        )

    engine = ENGINES.get(engine_name).from_config(cfg, datamanager, model, optimizer, scheduler)
    metrics = _record_metrics(engine)
    engine.run(**run_kwargs)
    for name, values in metrics.items():
        logger.info("%s: %s", name, ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    return metrics


def _require_file(path, key):
    if not osp.isfile(path):
        raise FileNotFoundError(f"{key}: checkpoint '{path}' does not exist")


def main(argv=None):
    """Run the job of ``tools/main.py``; returns ``{target: {'rank1': .., 'mAP': .., ...}}``.

    Args:
        argv (list of str, optional): command-line arguments (default: ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config_file, args.opts or [])
    os.makedirs(cfg.data.save_dir, exist_ok=True)
    with open(osp.join(cfg.data.save_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
        f.write(cfg.dump())
    with _log_to(cfg.data.save_dir):
        if args.config_file:
            logger.info("Loaded config file %s", args.config_file)
        logger.info("Merged config written to %s", osp.join(cfg.data.save_dir, CONFIG_FILE))
        return _run(cfg)


# Errors that are the user's to fix: reported as one line, no traceback.
_USER_ERRORS = (ConfigKeyError, ConfigValueError, FileNotFoundError, DatasetNotFoundError)


def cli(argv=None):
    """``tools/main.py``: :func:`main` with user errors printed as ``error: ...`` (exit status 2)."""
    try:
        main(argv)
    except _USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
