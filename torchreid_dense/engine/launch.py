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

import torch

from .. import compat
from ..config import (
    ConfigKeyError,
    ConfigValueError,
    engine_run_kwargs,
    load_config,
    lr_scheduler_kwargs,
    optimizer_kwargs,
)
from ..data.availability import DatasetNotFoundError
from ..data.file_check import BadFilesError
from ..data.synth_root import check_synth_preset, resolve_synth_root
from ..models import build_model_from_config, engine_name_of
from ..optim import build_lr_scheduler, build_optimizer
from ..registry import ENGINES, PIPELINES
from ..utils import distributed as du
from ..utils.cli import exit_status
from .base import NonFiniteLossError
from .checkpoint import CheckpointError, CheckpointMismatchError, load_weights
from .job_data import build_datamanager, use_resumable_train_loader
from .job_log import LOG_FILE, log_to
from .step_log import truncate_step_log
from .step_record import StepMismatchError

# load_config (torchreid_dense.config.load), check_synth_preset and resolve_synth_root (torchreid_dense.data.synth_root)
# are re-exported: tools and users import them from here.
__all__ = ["build_parser", "load_config", "check_synth_preset", "resolve_synth_root", "main", "run_job", "prepare_job",
           "cli", "LOG_FILE", "CONFIG_FILE"]

logger = logging.getLogger("torchreid_dense.launch")

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


def _run(cfg, info):
    compat.utils.set_random_seed(cfg.train.seed + info.rank)
    if cfg.use_gpu:
        torch.backends.cudnn.benchmark = True
    logger.info("Config:\n%s", cfg.dump())

    datamanager = build_datamanager(cfg)
    use_resumable_train_loader(cfg, datamanager)
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
        truncate_step_log(cfg.data.save_dir, engine.global_step)

    engine.run(**run_kwargs)
    # the last evaluation's metrics per target (SAN-PG: its held-out texture L1 instead of re-ID metrics)
    metrics = {name: {k: float(v) for k, v in values.items()} for name, values in (engine.last_metrics or {}).items()}
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
    with log_to(cfg.data.save_dir):
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
    return exit_status(main, argv, _USER_ERRORS)
