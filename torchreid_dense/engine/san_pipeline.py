"""SAN's training scheme from one command (SAN, Jin et al., AAAI 2020, Sec. 3.2 "Training Scheme").

``python tools/main.py --config-file configs/san_market.yaml`` on a data set that has only its images runs,
before SAN itself, the steps below (:func:`prepare_san`, registered in ``PIPELINES`` for the ``san``
engine, so the launcher calls it for every SAN job). Each one logs what it does and where its output goes.

=================  ==================================================================  =============================
step               what it does, where its output goes                                 skipped when
=================  ==================================================================  =============================
1. PIT pairs       SynthReID's (person image, full texture) pairs of ``synth.preset``  ``san.pit_root`` is set, or
                   rendered at the SAN input size, under                               the training set holds its
                   ``<data.root>/synthreid/pit_<preset>_<H>x<W>_s<synth.seed>``        own ``pit/`` (SynthReID)
2. SAN-PG          SA-Enc + SA-Dec trained with L_Rec alone on the pairs: a            ``san.init_weights`` names a
                   ``tools/main.py`` job in ``<san.steps_dir>/san_pg`` (schedule       checkpoint,
                   ``san.pg_*``; input, texture size and decoder widths those of the   ``model.load_weights`` is
                   SAN config, so its weights fit)                                     set, or ``san.pg_max_epoch 0``
3. pseudo          SAN-PG's texture of every image of the training data set, under     every training image has its
   textures        ``<san.steps_dir>/textures_<data set>/textures/<rel>/<stem>.png``   texture (beside the data set
                   (``dense.sidecar_root`` layout: the data set is never written)      or under dense.sidecar_root)
=================  ==================================================================  =============================

SAN then trains with ``san.init_weights``, ``san.pit_root`` and ``dense.sidecar_root`` pointing at what the
steps made; the job's ``config.yaml`` holds them, so that file reruns SAN alone. ``san.steps_dir`` ('' =
``<data.save_dir>/san_steps``) may be shared by several SAN runs of one data set.

Steps 2 and 3 keep ``step.json`` in their directory: the settings that produce their output and whether it is
complete. A rerun reuses a complete step made with the same settings, continues an unfinished one (SAN-PG
from its last epoch, textures from the first image without one), and stops with :class:`StepMismatchError`
naming what differs when the settings are not the same: output is never silently reused. Step 1 is checked
the same way by the SynthReID manifest of the pairs.

Not run for test-only jobs (``test.evaluate True``), for ``san.rec_target image`` (step 3) or without PIT
batches and SAN-PG (step 1).
"""
import logging
import os
import os.path as osp

from .. import compat
from ..config import imagedata_kwargs
from ..data.build import build_dataset, dataset_images
from ..data.pit import PITDataset, ensure_pit_pairs, pit_pairs_dir
from ..data.pseudo_textures import generate_textures, texture_targets
from ..data.synth.generate import ManifestMismatchError
from ..data.synth_root import resolve_synth_root
from ..data.texture_model import build_texture_model
from ..registry import PIPELINES
from ..utils import distributed as du
from .base import CHECKPOINT_LAST
from .launch import run_job  # the launcher finds these steps through PIPELINES; SAN-PG (step 2) is one of its jobs
from .step_record import STEP_FILE, StepMismatchError, claim_step, finish_step, weights_digest

__all__ = ["StepMismatchError", "prepare_san", "san_pg_config", "PG_MODELS", "STEP_FILE", "STEPS_DIR"]

logger = logging.getLogger("torchreid_dense.san_pipeline")

STEPS_DIR = "san_steps"  # under data.save_dir when san.steps_dir is ''
PG_MODELS = {"san": "san_pg", "san_r18": "san_pg_r18"}  # SAN model -> the SAN-PG of its backbone
_TEXTURE_SUFFIX = "_texture"
# checkpoint_last.pth at every epoch end (and, in practice, never mid-epoch): what an unfinished SAN-PG resumes from
_EPOCH_END_CHECKPOINTS = 1 << 62


# ----------------------------------------------------------------------------- step 1: PIT pairs
def _pit_step(cfg, dataset):
    """Step 1: the directory of the PIT pairs (``san.pit_root``, the training set's own, or SynthReID's)."""
    if cfg.san.pit_root:
        PITDataset.list_images(cfg.san.pit_root)  # a clear error when it holds none
        logger.info("SAN step 1/3, PIT pairs: san.pit_root %s", cfg.san.pit_root)
        return osp.abspath(cfg.san.pit_root)
    if osp.isdir(osp.join(dataset.dataset_dir, "pit")):
        logger.info("SAN step 1/3, PIT pairs: the training set's own, %s", osp.join(dataset.dataset_dir, "pit"))
        return dataset.dataset_dir
    preset, seed, h, w = cfg.synth.preset, cfg.synth.seed, cfg.data.height, cfg.data.width
    where = pit_pairs_dir(cfg.data.root, preset, seed, h, w)
    logger.info("SAN step 1/3, PIT pairs: SynthReID '%s' (seed %d) pairs at %dx%d in %s%s", preset, seed, h, w, where,
                " (reused)" if osp.isdir(where) else " (rendering them now)")
    try:
        if du.is_main_process():
            ensure_pit_pairs(cfg.data.root, preset, seed, h, w, workers=os.cpu_count() or 1)
        du.barrier()
        return ensure_pit_pairs(cfg.data.root, preset, seed, h, w, progress=False)
    except ManifestMismatchError as err:
        raise StepMismatchError(f"PIT pairs: {err}") from None


# ----------------------------------------------------------------------------- step 2: SAN-PG
def san_pg_config(cfg, pit_root, save_dir, source):
    """The SAN-PG job (step 1 of the paper) of a SAN config.

    Model sizes (input size, normalisation, ``san.texture_size``, ``san.decoder_widths``) and ``model.pretrained``
    are the SAN config's, so the checkpoint initialises that SAN; the schedule is ``san.pg_*`` (the other optimiser
    keys, e.g. ``train.weight_decay``, and ``train.seed`` are shared); the pairs are ``pit_root``. ``source`` (the
    training data set without its ``_texture`` wrapper) only feeds the launcher's data manager.
    """
    if cfg.model.name not in PG_MODELS:
        raise KeyError(f"model.name '{cfg.model.name}' has no SAN-PG to train as SAN's step 1; one of "
                       f"{sorted(PG_MODELS)}, or give san.init_weights")
    s = cfg.san
    pg = cfg.clone()
    pg.defrost()
    pg.model.name = PG_MODELS[cfg.model.name]
    pg.model.load_weights = pg.model.resume = ""
    pg.data.sources = pg.data.targets = [source]
    pg.data.save_dir = save_dir
    pg.train.optim, pg.train.lr, pg.train.max_epoch = s.pg_optim, s.pg_lr, s.pg_max_epoch
    pg.train.batch_size, pg.train.lr_scheduler = s.pg_batch_size, s.pg_lr_scheduler
    pg.train.stepsize, pg.train.gamma, pg.train.warmup_epochs = list(s.pg_stepsize), s.pg_gamma, s.pg_warmup_epochs
    pg.train.start_epoch = pg.train.fixbase_epoch = 0
    pg.train.checkpoint_every = cfg.train.checkpoint_every or _EPOCH_END_CHECKPOINTS
    pg.test.evaluate, pg.test.eval_freq = False, -1
    pg.san.pit_root, pg.san.pit_batch_size, pg.san.init_weights = pit_root, 0, ""
    pg.freeze()
    return pg


# what makes a SAN-PG: recorded under the keys a user sets in the SAN config
_PG_SETTINGS = (
    ("model.name", "model.name"), ("model.pretrained", "model.pretrained"), ("data.height", "data.height"),
    ("data.width", "data.width"), ("data.norm_mean", "data.norm_mean"), ("data.norm_std", "data.norm_std"),
    ("san.texture_size", "san.texture_size"), ("san.decoder_widths", "san.decoder_widths"),
    ("san.pit_root", "san.pit_root"), ("san.pit_val_fraction", "san.pit_val_fraction"),
    ("san.pit_weight_rec", "san.pit_weight_rec"), ("san.pg_optim", "train.optim"), ("san.pg_lr", "train.lr"),
    ("san.pg_max_epoch", "train.max_epoch"), ("san.pg_batch_size", "train.batch_size"),
    ("san.pg_lr_scheduler", "train.lr_scheduler"), ("san.pg_stepsize", "train.stepsize"),
    ("san.pg_gamma", "train.gamma"), ("train.weight_decay", "train.weight_decay"),
    ("san.pg_warmup_epochs", "train.warmup_epochs"), ("train.warmup_lr", "train.warmup_lr"),
    ("adam.beta1", "adam.beta1"), ("adam.beta2", "adam.beta2"), ("sgd.momentum", "sgd.momentum"),
    ("train.seed", "train.seed"), ("train.amp", "train.amp"),
)


# settings that make a different SAN-PG only away from their defaults: recorded then (older step.json files stay valid)
_PG_OPTIONAL = {"san.decoder": "residual", "san.texture_range": "normalized", "train.warmup_mode": "linear"}


def _settings(cfg, pairs):
    """``{user key: value}`` of ``pairs`` (user key, key in ``cfg``) plus the non-default :data:`_PG_OPTIONAL`."""
    settings = {user: _lookup(cfg, key) for user, key in pairs}
    settings.update({k: _lookup(cfg, k) for k, default in _PG_OPTIONAL.items() if _lookup(cfg, k) != default})
    return settings


def _lookup(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _pg_step(cfg, info, pit_root, steps_dir, source):
    """Step 2: the SAN-PG checkpoint, trained here unless one is given; None when SAN starts without one."""
    if cfg.san.init_weights:
        if not osp.isfile(cfg.san.init_weights):
            raise FileNotFoundError(
                f"san.init_weights: SAN-PG checkpoint '{cfg.san.init_weights}' does not exist; set san.init_weights "
                "'' and this command trains SAN-PG itself (SAN's step 1)")
        logger.info("SAN step 2/3, SAN-PG: san.init_weights %s (not trained here)", cfg.san.init_weights)
        return cfg.san.init_weights
    if cfg.model.load_weights:
        logger.info("SAN step 2/3, SAN-PG: skipped, model.load_weights %s initialises the model",
                    cfg.model.load_weights)
        return None
    if cfg.san.pg_max_epoch <= 0:
        logger.warning("SAN step 2/3, SAN-PG: skipped (san.pg_max_epoch %d): SAN starts without SAN-PG weights",
                       cfg.san.pg_max_epoch)
        return None
    directory = osp.join(steps_dir, "san_pg")
    pg = san_pg_config(cfg, pit_root, directory, source)
    settings = _settings(pg, _PG_SETTINGS)
    final = osp.join(directory, "model", f"model.pth.tar-{cfg.san.pg_max_epoch}")
    record = claim_step(directory, "SAN-PG", settings)
    if record is not None and record.get("complete") and osp.isfile(final):
        logger.info("SAN step 2/3, SAN-PG: reusing %s (trained with the same settings; %s)", final,
                    _l1_text(record.get("outputs", {})))
        return final
    last = osp.join(directory, "model", CHECKPOINT_LAST)
    if record is not None and osp.isfile(last):
        pg.defrost()
        pg.model.resume = last
        pg.freeze()
    logger.info("SAN step 2/3, SAN-PG: %s %s (san.pg_max_epoch %d) on the PIT pairs of %s, in %s (log: %s)",
                "resuming" if pg.model.resume else "training", pg.model.name, cfg.san.pg_max_epoch, pit_root,
                directory, osp.join(directory, "log.txt"))
    metrics = run_job(pg, info)
    outputs = {"checkpoint": final, **metrics.get("pit_val", {})}
    finish_step(directory, "SAN-PG", settings, **outputs)
    logger.info("SAN step 2/3, SAN-PG: done, %s (%s)", final, _l1_text(outputs))
    return final


def _l1_text(outputs):
    if "texture_l1_pixel" in outputs:
        return f"held-out texture L1 {outputs['texture_l1_pixel']:.4f} in [0, 1] pixel units"
    return "no held-out texture L1"


# ----------------------------------------------------------------------------- step 3: pseudo textures
def _texture_step(cfg, dataset, name, weights, pit_root, steps_dir, source):
    """Step 3: the ``dense.sidecar_root`` to read the textures from ('' = the data set's own)."""
    read_from = cfg.dense.sidecar_root or None
    where = osp.join(read_from or dataset.dataset_dir, "textures")
    train = [item[0] for item in dataset.train]
    missing = sum(not osp.exists(t) for t in texture_targets(train, dataset.dataset_dir, read_from))
    if not missing:
        logger.info("SAN step 3/3, pseudo textures: every training image of %s has its texture under %s (not "
                    "generated)", name, where)
        return cfg.dense.sidecar_root
    if read_from:
        logger.info("SAN step 3/3, pseudo textures: %d of %d training images have no texture under dense.sidecar_root "
                    "%s; not generated there (set dense.sidecar_root '' to let this command write them)", missing,
                    len(train), read_from)
        return cfg.dense.sidecar_root
    if weights is None:
        raise FileNotFoundError(
            f"{missing} of {len(train)} training images of {name} have no texture under {where}, and without SAN-PG "
            "(san.pg_max_epoch 0 / model.load_weights) none can be predicted: give san.init_weights a SAN-PG "
            "checkpoint, or create the textures (tools/generate_textures.py) and point dense.sidecar_root at them")
    directory = osp.join(steps_dir, f"textures_{source}")
    pg = san_pg_config(cfg, pit_root, osp.join(steps_dir, "san_pg"), source)
    settings = {"weights": osp.abspath(weights), "weights_digest": weights_digest(weights),
                "model.name": pg.model.name, "data.height": cfg.data.height, "data.width": cfg.data.width,
                "data.norm_mean": list(cfg.data.norm_mean), "data.norm_std": list(cfg.data.norm_std),
                "san.texture_size": list(cfg.san.texture_size), "san.decoder_widths": list(cfg.san.decoder_widths),
                "dataset": source, "dataset_dir": osp.abspath(dataset.dataset_dir),
                **_settings(pg, ())}
    record = claim_step(directory, "pseudo textures", settings)
    if record is not None and record.get("complete"):
        logger.info("SAN step 3/3, pseudo textures: reusing %s (predicted by the same SAN-PG)",
                    osp.join(directory, "textures"))
        return directory
    paths = dataset_images(dataset)
    logger.info("SAN step 3/3, pseudo textures: %d of %d training images of %s have no texture under %s; predicting "
                "one for each of its %d images (train, query, gallery) with %s into %s", missing, len(train), name,
                where, len(paths), weights, osp.join(directory, "textures"))
    if du.is_main_process():
        model = build_texture_model(pg, weights, verbose=False)
        summary = generate_textures(model, paths, dataset.dataset_dir, height=cfg.data.height, width=cfg.data.width,
                                    norm_mean=cfg.data.norm_mean, norm_std=cfg.data.norm_std,
                                    batch_size=cfg.test.batch_size, workers=cfg.data.workers, output_dir=directory,
                                    texture_range=pg.san.texture_range)
        logger.info("SAN step 3/3, pseudo textures: %d written, %d there already, in %.1f s", summary["written"],
                    summary["skipped"], summary["seconds"])
    finish_step(directory, "pseudo textures", settings, images=len(paths))
    return directory


# ----------------------------------------------------------------------------- the steps together
def _source_name(name):
    """The training data set without its texture wrapper: ``market1501_texture`` -> ``market1501``."""
    base = name[: -len(_TEXTURE_SUFFIX)] if name.endswith(_TEXTURE_SUFFIX) else name
    return base if base in compat.image_dataset_factory() else name


@PIPELINES.register("san")
def prepare_san(cfg, info):
    """SAN's steps before a SAN job (see the module docstring); returns the config pointing at their outputs."""
    if cfg.test.evaluate:
        return cfg
    sources = list(cfg.data.sources)
    if len(sources) != 1:
        logger.info("SAN steps: %d training data sets; the steps run for one at a time, so none runs here (give "
                    "san.init_weights, san.pit_root and the textures yourself)", len(sources))
        return cfg
    name = sources[0]
    source = _source_name(name)
    needs_textures = cfg.san.rec_target == "texture" and cfg.san.weight_rec > 0  # L_Rec off: no re-ID textures
    needs_pg = not (cfg.san.init_weights or cfg.model.load_weights or cfg.san.pg_max_epoch <= 0)
    if not (needs_textures or needs_pg or cfg.san.use_pit):
        return cfg
    steps_dir = osp.abspath(cfg.san.steps_dir or osp.join(cfg.data.save_dir, STEPS_DIR))
    imagedata = imagedata_kwargs(cfg)
    root = resolve_synth_root(cfg.clone(), names=[source]).data.root  # SynthReID: the set of synth.seed
    keys = ("split_id", "cuhk03_labeled", "cuhk03_classic_split", "market1501_500k")
    dataset = build_dataset(source, root, **{k: imagedata[k] for k in keys})
    pit_root = _pit_step(cfg, dataset) if (needs_pg or cfg.san.use_pit) else cfg.san.pit_root
    weights = _pg_step(cfg, info, pit_root, steps_dir, source)
    sidecar_root = (_texture_step(cfg, dataset, name, weights, pit_root, steps_dir, source) if needs_textures
                    else cfg.dense.sidecar_root)
    out = cfg.clone()
    out.defrost()
    out.san.pit_root = pit_root or ""
    out.san.init_weights = weights or ""
    out.dense.sidecar_root = sidecar_root or ""
    out.freeze()
    logger.info("SAN steps done: SAN trains with san.init_weights '%s', san.pit_root '%s', dense.sidecar_root '%s'",
                out.san.init_weights, out.san.pit_root, out.dense.sidecar_root)
    return out
