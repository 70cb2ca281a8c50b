"""The training / evaluation job behind ``tools/main.py``.

``python tools/main.py --config-file configs/san_market.yaml [KEY VALUE ...]``:

1. merges the defaults, the file and the ``KEY VALUE`` overrides, freezes the config;
2. creates ``data.save_dir``, logs to the console and ``<save_dir>/log.txt``, runs the steps the
   model's engine needs first (:func:`prepare_job`; SAN: PIT pairs, SAN-PG, pseudo textures, see
   :mod:`torchreid_dense.engine.san_pipeline`), writes the config the job runs with to
   ``<save_dir>/config.yaml``, and seeds;
3. builds the data manager (``DenseImageDataManager`` with :func:`imagedata_kwargs`), the model
   and its engine name (:func:`build_model_from_config`), the optimiser and lr scheduler
   (:mod:`torchreid_dense.optim`), and the engine (``ENGINES.get(name).from_config``);
4. loads ``model.load_weights`` (strictly: a checkpoint of another architecture or number of
   classes fails saying what differs) or resumes everything from ``model.resume`` (exactly, at
   the batch after the checkpoint's), then runs torchreid's ``Engine.run`` (``test.evaluate True``
   = test only) and returns the metrics of the last evaluation, per target:
   ``{'rank1', 'rank5', 'rank10', 'rank20', 'mAP', 'mINP'}`` (floats in [0, 1], as torchreid).

Training loader: for exact resume and DDP the launcher replaces ``datamanager.train_loader`` by
:func:`torchreid_dense.engine.loader.build_train_loader` over the same data set (same batch size,
workers, ``drop_last``), whose order depends only on ``(train.seed, epoch)``:
``RandomIdentitySampler`` becomes the P x K ``DistributedIdentitySampler`` (also with one
process), ``RandomSampler`` / ``SequentialSampler`` torch's ``DistributedSampler``.

Distributed: under ``torchrun --nproc_per_node=N tools/main.py ...`` every process builds the
same job, the model is wrapped in ``DistributedDataParallel`` (NCCL on GPU, gloo on CPU;
``find_unused_parameters`` on, since SAN's PIT steps leave the classifier unused),
``train.batch_size`` is the global batch, evaluation shards the query and gallery sets over
the ranks and gathers the features in order, and only rank 0 writes the config, the log and
checkpoints (the other ranks' console output is discarded).

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
from ..data.file_check import BadFilesError
from ..models import build_model_from_config, engine_name_of
from ..optim import build_lr_scheduler, build_optimizer
from ..registry import ENGINES, PIPELINES
from ..utils import distributed as du
from .base import NonFiniteLossError
from .checkpoint import CheckpointError, CheckpointMismatchError, load_weights
from .loader import build_train_loader
from .san_pipeline import StepMismatchError

__all__ = ["build_parser", "load_config", "check_synth_preset", "main", "run_job", "prepare_job", "cli", "LOG_FILE",
           "CONFIG_FILE"]

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


class _JobLogHandler(logging.StreamHandler):
    """The log handler of one :func:`_log_to` block."""


@contextlib.contextmanager
def _log_to(save_dir):
    """Log the job (our messages and torchreid's prints) to the console and ``<save_dir>/log.txt``.

    ``sys.stdout`` is only redirected inside this block and restored on exit, even on error. A job run
    inside another one (SAN's SAN-PG step) writes to its own log and, through the console, to the outer one.
    """
    console = sys.stdout
    with open(osp.join(save_dir, LOG_FILE), "a", encoding="utf-8") as logfile:
        tee = _Tee(console, logfile)
        handler = _JobLogHandler(tee)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root = logging.getLogger("torchreid_dense")
        previous_level = root.level
        outer = [h for h in root.handlers if isinstance(h, _JobLogHandler)]  # already reached through the console
        for h in outer:
            root.removeHandler(h)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(tee):
                yield
        finally:
            root.removeHandler(handler)
            for h in outer:
                root.addHandler(h)
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


def _build_datamanager(cfg):
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


def _record_metrics(engine):
    """Keep what every evaluation of ``engine`` returns, per target (for :func:`main`'s result)."""
    metrics = {}
    evaluate = engine._evaluate

    def recording(*args, **kwargs):
        result = evaluate(*args, **kwargs)
        name = kwargs.get("dataset_name", args[0] if args else "")
        metrics[name] = {k: float(v) for k, v in result.items()}
        return result

    engine._evaluate = recording
    return metrics


def _use_resumable_train_loader(cfg, datamanager):
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


def _run(cfg, info):
    compat.utils.set_random_seed(cfg.train.seed + info.rank)
    if cfg.use_gpu:
        torch.backends.cudnn.benchmark = True
    logger.info("Config:\n%s", cfg.dump())

    datamanager = _build_datamanager(cfg)
    _use_resumable_train_loader(cfg, datamanager)
    model, engine_name = build_model_from_config(cfg, datamanager.num_train_pids)
    logger.info(
        "Model %s (%.2f M parameters), engine '%s'",
        cfg.model.name, sum(p.numel() for p in model.parameters()) / 1e6, engine_name,
    )
    if cfg.model.load_weights:
        _require_file(cfg.model.load_weights, "model.load_weights")
        load_weights(model, cfg.model.load_weights)
        logger.info("Loaded weights from %s", cfg.model.load_weights)
    if cfg.use_gpu:
        model = model.to(info.device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)

    optimizer = build_optimizer(model, **optimizer_kwargs(cfg))
    scheduler = build_lr_scheduler(optimizer, **lr_scheduler_kwargs(cfg))
    if info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.local_rank] if info.device.type == "cuda" else None,
            find_unused_parameters=True,
        )

    engine = ENGINES.get(engine_name).from_config(cfg, datamanager, model, optimizer, scheduler)
    engine.config_yaml = cfg.dump()
    run_kwargs = engine_run_kwargs(cfg)
    if cfg.model.resume:
        _require_file(cfg.model.resume, "model.resume")
        run_kwargs["start_epoch"] = engine.resume(cfg.model.resume)
        engine._truncate_step_log(cfg.data.save_dir, engine.global_step)

    metrics = _record_metrics(engine)
    engine.run(**run_kwargs)
    if not metrics and engine.last_metrics:  # e.g. SAN-PG: held-out texture L1 instead of re-ID metrics
        metrics.update({k: dict(v) for k, v in engine.last_metrics.items()})
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
    info = du.init_distributed(cfg.use_gpu)
    try:
        return run_job(cfg, info, args.config_file)
    finally:
        if info.enabled:
            du.cleanup()


def run_job(cfg, info, config_file=""):
    """One job in ``cfg.data.save_dir`` (steps 2-4 of the module docstring); returns :func:`main`'s metrics."""
    if info.rank == 0:
        os.makedirs(cfg.data.save_dir, exist_ok=True)
    du.barrier()
    if info.rank != 0:  # only rank 0 logs; the others run silently
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            return _run(prepare_job(cfg, info), info)
    with _log_to(cfg.data.save_dir):
        if config_file:
            logger.info("Loaded config file %s", config_file)
        cfg = prepare_job(cfg, info)
        with open(osp.join(cfg.data.save_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
            f.write(cfg.dump())
        logger.info("Merged config written to %s", osp.join(cfg.data.save_dir, CONFIG_FILE))
        if info.enabled:
            logger.info("Distributed: %d processes (%s)", info.world_size, info.backend)
        return _run(cfg, info)


def prepare_job(cfg, info):
    """``cfg`` after the steps registered for its engine in :data:`~torchreid_dense.registry.PIPELINES`
    (they return the config pointing at what they made), or ``cfg`` itself when there are none."""
    name = engine_name_of(cfg)
    return PIPELINES.get(name)(cfg, info) if name in PIPELINES else cfg


# Errors that are the user's to fix: reported as one line, no traceback.
_USER_ERRORS = (ConfigKeyError, ConfigValueError, FileNotFoundError, DatasetNotFoundError, CheckpointError,
                CheckpointMismatchError, NonFiniteLossError, StepMismatchError, BadFilesError)


def cli(argv=None):
    """``tools/main.py``: :func:`main` with user errors printed as ``error: ...`` (exit status 2)."""
    try:
        main(argv)
    except _USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
