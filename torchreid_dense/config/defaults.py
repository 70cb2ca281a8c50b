"""The plugin's yacs configuration: deep-person-reid's keys plus the plugin's own namespaces.

``get_default_config()`` returns every key of deep-person-reid's ``scripts/default_config.py``
with the same name, default and meaning, a top-level ``use_gpu``, and the plugin's sections,
each added by one composable ``add_*_config(cfg)`` function that owns its namespace:

- :func:`add_train_config`: warm-up, mixed precision, channels-last, mid-epoch checkpoints
  (extra keys inside torchreid's ``train`` section);
- :func:`add_dense_config`: ``dense.*``, how DSAP-images / textures are read from the sidecars;
- :func:`add_dsa_config`: ``dsa.*``, DSA-reID (CVPR 2019) loss weights and variants;
- :func:`add_san_config`: ``san.*``, SAN (AAAI 2020) loss weights, PIT interleaving, init, and
  the texture size (``san.texture_size``: the SA-Dec output and the texture wrappers' target size);
- :func:`add_synth_config`: ``synth.*``, the SynthReID generator preset and seed.

Merging is strict and speaks to the user: an unknown key raises :class:`ConfigKeyError`
(``configs/x.yaml: unknown config key 'train.lrr' (did you mean 'train.lr'?)``) and a value of
the wrong type raises :class:`ConfigValueError` naming the key, the expected and the given type.

The ``*_kwargs(cfg)`` adapters turn the config into plain keyword arguments, so library code
never reads the config object (engines read their own keys in ``from_config`` only).

Example::

    >>> from torchreid_dense.config import get_default_config, optimizer_kwargs
    >>> cfg = get_default_config()
    >>> cfg.merge_from_list(["train.lr", "0.0008", "data.sources", "market1501_dsap"])
    >>> optimizer_kwargs(cfg)["lr"]
    0.0008
"""
import difflib
from ast import literal_eval

import torch
import yaml
from yacs.config import CfgNode

__all__ = [
    "DenseCfgNode",
    "ConfigKeyError",
    "ConfigValueError",
    "get_default_config",
    "add_train_config",
    "add_dense_config",
    "add_dsa_config",
    "add_san_config",
    "add_synth_config",
    "imagedata_kwargs",
    "optimizer_kwargs",
    "lr_scheduler_kwargs",
    "engine_run_kwargs",
    "model_kwargs",
]


class ConfigKeyError(KeyError):
    """A config file or override names a key the configuration does not have."""

    def __str__(self):  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class ConfigValueError(ValueError):
    """A config value does not have the type of the key's default."""


def _type_name(value):
    return type(value).__name__


def _all_keys(node, prefix=""):
    keys = []
    for k, v in node.items():
        full = prefix + k
        keys.append(full)
        if isinstance(v, CfgNode):
            keys.extend(_all_keys(v, full + "."))
    return keys


def _decode(raw, default):
    """Python literal of a string value (``'0.1'`` -> 0.1); str-typed keys keep the raw string."""
    if not isinstance(raw, str) or isinstance(default, str):
        return raw
    if isinstance(default, bool) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def _coerce(value, default, full_key, source):
    """``value`` converted to the type of ``default``; a clear error otherwise.

    Accepted conversions: int -> float, tuple -> list, a scalar -> a one-element list of a
    list-typed key (``data.sources market1501``). Everything else must match exactly
    (bool is not an int here).
    """

    def fail(expected):
        raise ConfigValueError(
            f"{source}: config key '{full_key}' expects {expected}, "
            f"got {_type_name(value)} {value!r}"
        )

    value = _decode(value, default)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            fail("bool")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            fail("int")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("float")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            fail("str")
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            value = [value]
        if default:
            proto = default[0]
            value = [
                _coerce(v, proto, f"{full_key}[{i}]", source) for i, v in enumerate(value)
            ]
        return type(default)(value)
    if default is None:
        return value
    fail(_type_name(default))


def _merge_mapping(node, mapping, source, prefix=""):
    """Merge a plain mapping into ``node`` key by key, checking names and types."""
    for key, value in mapping.items():
        full_key = prefix + str(key)
        if key not in node:
            _unknown_key(node, full_key, source, prefix)
        default = node[key]
        if isinstance(default, CfgNode):
            if not isinstance(value, dict):
                raise ConfigValueError(
                    f"{source}: config key '{full_key}' is a section; it expects a mapping of "
                    f"its keys, got {_type_name(value)} {value!r}"
                )
            _merge_mapping(default, value, source, full_key + ".")
        else:
            if isinstance(value, dict):
                raise ConfigValueError(
                    f"{source}: config key '{full_key}' is a value of type "
                    f"{_type_name(default)}, not a section; got a mapping {dict(value)!r}"
                )
            node[key] = _coerce(value, default, full_key, source)


def _unknown_key(node, full_key, source, prefix):
    root_keys = _all_keys(node, prefix)
    close = difflib.get_close_matches(full_key, root_keys, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigKeyError(f"{source}: unknown config key '{full_key}'{hint}")


class DenseCfgNode(CfgNode):
    """A yacs ``CfgNode`` whose merges fail with the file, the key and what was wrong."""

    def merge_from_file(self, cfg_filename):
        """Merge a YAML file; unknown keys and wrongly typed values raise naming the file."""
        try:
            with open(cfg_filename, "r") as f:
                data = yaml.safe_load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"config file '{cfg_filename}' does not exist") from None
        except yaml.YAMLError as err:
            raise ConfigValueError(f"{cfg_filename}: not valid YAML: {err}") from None
        if data is None:
            return
        if not isinstance(data, dict):
            raise ConfigValueError(
                f"{cfg_filename}: a config file must hold a mapping of sections "
                f"(model:, data:, train:, ...), got {_type_name(data)}"
            )
        self._check_mutable(cfg_filename)
        _merge_mapping(self, data, str(cfg_filename))

    def merge_from_other_cfg(self, cfg_other):
        """Merge another config (or dict) with the same key and type checks."""
        self._check_mutable("<config>")
        _merge_mapping(self, _to_dict(cfg_other), "<config>")

    def merge_from_list(self, cfg_list, source="command line"):
        """Merge ``[KEY, VALUE, KEY, VALUE, ...]`` (e.g. the command line's trailing options)."""
        cfg_list = list(cfg_list)
        if len(cfg_list) % 2:
            raise ConfigValueError(
                f"{source}: overrides must come in KEY VALUE pairs, got {len(cfg_list)} items: "
                f"{cfg_list}"
            )
        self._check_mutable(source)
        for full_key, value in zip(cfg_list[0::2], cfg_list[1::2]):
            node = self
            parts = str(full_key).split(".")
            for i, part in enumerate(parts):
                if not isinstance(node, CfgNode) or part not in node:
                    _unknown_key(self, str(full_key), source, "")
                if i < len(parts) - 1:
                    node = node[part]
            default = node[parts[-1]]
            if isinstance(default, CfgNode):
                raise ConfigValueError(
                    f"{source}: config key '{full_key}' is a section; override its keys "
                    f"one by one ('{full_key}.<key> VALUE')"
                )
            node[parts[-1]] = _coerce(value, default, str(full_key), source)

    def _check_mutable(self, source):
        if self.is_frozen():
            raise AttributeError(f"{source}: the config is frozen; merge before cfg.freeze()")


def _to_dict(node):
    if isinstance(node, CfgNode) or isinstance(node, dict):
        return {k: _to_dict(v) for k, v in node.items()}
    return node


def add_train_config(cfg):
    """Plugin keys inside torchreid's ``train`` section (warm-up, AMP, checkpoints)."""
    cfg.train.warmup_epochs = 0  # epochs of linear LR warm-up (used by the warmup_* lr schedulers; 0 = none)
    cfg.train.warmup_lr = 8e-6  # learning rate at epoch 0 of the warm-up, rising linearly to train.lr (DSA-reID: 8e-6)
    cfg.train.amp = ""  # mixed precision: '' (off), 'bf16' or 'fp16' autocast (fp16 with a grad scaler)
    cfg.train.channels_last = False  # use channels-last memory format for model and inputs
    cfg.train.checkpoint_every = 0  # also save a checkpoint every N iterations (0 = once per epoch only)
    return cfg


def add_dense_config(cfg):
    """``dense.*``: how the dense-semantics sidecars (IUV maps, textures) are read."""
    cfg.dense = CfgNode()
    cfg.dense.dsap_size = 32  # side S of the 24 DSAP-images (DSA-reID Sec. 3.1: 32)
    cfg.dense.alignment = "dense"  # 'dense' (DSAP warping) or 'csa' (coarse part crops, DSA-reID Table 4)
    cfg.dense.iuv_kind = "densepose"  # IUV sidecar: 'densepose' (estimated) or 'densepose_gt' (ground truth, synthetic data)
    cfg.dense.strict = False  # raise on a missing sidecar instead of the counted mean-initialised fallback
    cfg.dense.cache = False  # cache warped DSAP-images in memory instead of warping on the fly
    cfg.dense.sidecar_root = ""  # read sidecars from <sidecar_root>/<kind>/<rel>/<stem>.png ('' = the data set dir), e.g. generate_textures --output-dir
    cfg.dense.max_missing = 0.5  # stop before training when more than this fraction of a split's images lack their sidecar (below: the counted fallback)
    return cfg


def add_dsa_config(cfg):
    """``dsa.*``: DSA-reID (CVPR 2019) loss weights and model variants."""
    cfg.dsa = CfgNode()
    cfg.dsa.weight_id_mf = 0.5  # weight of the ID losses on the MF-Stream features fG and fL,i (DSA-reID Sec. 4.2)
    cfg.dsa.weight_triplet = 1.5  # weight of the batch-hard triplet loss on the fused zG and zL
    cfg.dsa.weight_id_fused = 1.0  # weight of the ID loss on the fused features zG and zL
    cfg.dsa.fusion = "add"  # stream fusion: 'add' (element-wise, the paper) or 'concat_fc' (concat+fc ablation, Table 5)
    cfg.dsa.feature = "mf"  # inference feature: 'mf' ([fG, fL], MF-Stream only), or 'fused' ([zG, zL]) / 'fused_global' / 'fused_local' (need *_dsap targets)
    cfg.dsa.branches = "both"  # trained branches: 'both', 'global' or 'local' (Table 3 variants)
    cfg.dsa.streams = "two"  # 'two' (MF + DSAG streams, DSA-reID) or 'mf' (no DSAG-Stream: Table 3 "Baseline (Two branches)")
    cfg.dsa.part_id_reduction = "mean"  # the 8 part ID losses ID(fL,i): 'mean' (weight_id_mf for all 8 together) or 'sum' (weight_id_mf each)
    cfg.dsa.dsag_width = 0.0  # multiplier of every DSAG-Stream width of Table 1 (0 = backbone default: 1.0 r50, 0.25 r18)
    return cfg


def add_san_config(cfg):
    """``san.*``: SAN (AAAI 2020) loss weights, PIT interleaving and initialisation."""
    cfg.san = CfgNode()
    cfg.san.weight_id = 0.5  # lambda_1: ID loss weight on re-ID batches (SAN Sec. 3.2, Training Scheme)
    cfg.san.weight_triplet = 1.5  # lambda_2: batch-hard triplet loss weight on re-ID batches
    cfg.san.weight_rec = 1.0  # lambda_3: L1 texture reconstruction loss weight
    cfg.san.weight_tr = 1.0  # lambda_4: Triplet ReID constraint weight (decoder blocks 1-3)
    cfg.san.tr_margin = 0.3  # margin m of the Triplet ReID constraint
    cfg.san.use_tr = True  # apply the Triplet ReID constraint (False = SAN-basic ablation)
    cfg.san.use_pit = True  # interleave synthetic PIT batches with re-ID batches ("+syn. data")
    cfg.san.pit_ratio = 4  # one PIT batch after every N re-ID batches
    cfg.san.pit_batch_size = 0  # PIT batch size (0 = train.batch_size)
    cfg.san.pit_root = ""  # directory holding pit/ (image, texture) pairs; '' = the synthreid data set directory
    cfg.san.rec_target = "texture"  # reconstruction target: 'texture' (the paper) or 'image' (Table 2 ablation)
    cfg.san.init_weights = ""  # SAN-PG checkpoint initialising SA-Enc and SA-Dec (step 2); '' = none
    cfg.san.pit_weight_rec = 1.0  # reconstruction weight of PIT batches (paper: weights 0/0/1/0) and of SAN-PG
    cfg.san.tr_reduction = "mean"  # L_TR over the 3 decoder blocks: 'mean' (one triplet-sized term) or 'sum'
    cfg.san.pit_val_fraction = 0.1  # SAN-PG: fraction of PIT textures held out for the texture L1 (0 = none)
    # texture target / SA-Dec output size [H, W]: the texture wrappers resize sidecars to it (one key for both)
    cfg.san.texture_size = [240, 160]  # atlas 6N x 4N: 240 x 160 for tile N=40
    cfg.san.decoder_widths = []  # channels of the 4 SA-Dec blocks ([] = the backbone's default)
    # SAN's steps before a san job (engine/san_pipeline.py); SAN-PG's schedule, defaults those of configs/san_pg.yaml
    cfg.san.steps_dir = ""  # where the SAN-PG job and its pseudo textures go ('' = <data.save_dir>/san_steps)
    cfg.san.pg_max_epoch = 60  # SAN-PG (step 1) epochs; 0 = no SAN-PG (SAN starts from ImageNet or random weights)
    cfg.san.pg_optim = "adam"  # SAN-PG optimiser
    cfg.san.pg_lr = 0.0003  # SAN-PG learning rate
    cfg.san.pg_batch_size = 64  # SAN-PG batch size (PIT pairs)
    cfg.san.pg_lr_scheduler = "single_step"  # SAN-PG lr scheduler
    cfg.san.pg_stepsize = [40]  # SAN-PG lr step epochs
    cfg.san.pg_gamma = 0.1  # SAN-PG lr decay factor
    cfg.san.pg_warmup_epochs = 0  # SAN-PG warm-up epochs (with a warmup_* pg_lr_scheduler; from train.warmup_lr)
    cfg.san.id_head = "bnneck"  # ID classifier on f: 'bnneck' (BN then bias-free FC, Luo et al. 2019) or 'linear' (the paper's FC on f)
    return cfg


def add_synth_config(cfg):
    """``synth.*``: the SynthReID generator used by the ``synthreid*`` data sets."""
    cfg.synth = CfgNode()
    cfg.synth.preset = "small"  # generator preset: 'tiny' (tests), 'small' (CPU demo) or 'full' (Market-1501 scale)
    cfg.synth.seed = 0  # generator seed; data lives under <data.root>/synthreid/<preset>_s<seed>/
    cfg.synth.misalignment = 1.0  # scale of pose/viewpoint spread, box jitter and occluder odds (dir suffix _m<value> when not 1)
    return cfg


def get_default_config():
    """Default config: deep-person-reid's ``scripts/default_config.py`` keys plus the plugin's."""
    cfg = DenseCfgNode()
    cfg.use_gpu = torch.cuda.is_available()  # use the GPU when there is one (False = everything on CPU)

    # model
    cfg.model = CfgNode()
    cfg.model.name = "resnet50"  # model name in torchreid's factory (stock or plugin, e.g. dsa_reid, san)
    cfg.model.pretrained = True  # automatically load pretrained model weights if available
    cfg.model.pretrained_path = ""  # local copy of the ImageNet weights file (no download; '' = torch hub's); wins over model.pretrained
    cfg.model.load_weights = ""  # path to model weights
    cfg.model.resume = ""  # path to checkpoint for resume training

    # data
    cfg.data = CfgNode()
    cfg.data.type = "image"  # data type: 'image' (the plugin's data sets are image data sets)
    cfg.data.root = "reid-data"  # root directory holding the data sets
    cfg.data.sources = ["market1501"]  # source (training) data sets
    cfg.data.targets = ["market1501"]  # target (test) data sets
    cfg.data.workers = 4  # number of data loading workers
    cfg.data.split_id = 0  # split index
    cfg.data.height = 256  # image height
    cfg.data.width = 128  # image width
    cfg.data.combineall = False  # combine train, query and gallery for training
    cfg.data.transforms = ["random_flip"]  # data augmentation
    cfg.data.k_tfm = 1  # number of times to apply augmentation to an image independently
    cfg.data.norm_mean = [0.485, 0.456, 0.406]  # default is imagenet mean
    cfg.data.norm_std = [0.229, 0.224, 0.225]  # default is imagenet std
    cfg.data.save_dir = "log"  # path to save log
    cfg.data.load_train_targets = False  # load training set from target dataset
    # the plugin's file check before training (torchreid_dense/data/file_check.py)
    cfg.data.check_files = True  # read every image and sidecar the loaders will read before the first epoch (cached)
    cfg.data.skip_bad = False  # drop (and count) the images whose image or sidecar file is bad instead of stopping
    cfg.data.check_cache = ""  # directory of the check's cache ('' = $XDG_CACHE_HOME/torchreid_dense/file_check)

    # specific datasets
    cfg.market1501 = CfgNode()
    cfg.market1501.use_500k_distractors = False  # add 500k distractors to the gallery set for market1501
    cfg.cuhk03 = CfgNode()
    cfg.cuhk03.labeled_images = False  # use labeled images, if False, use detected images
    cfg.cuhk03.classic_split = False  # use classic split by Li et al. CVPR14 (False = 767/700 split)
    cfg.cuhk03.use_metric_cuhk03 = False  # use cuhk03's metric for evaluation

    # sampler
    cfg.sampler = CfgNode()
    cfg.sampler.train_sampler = "RandomSampler"  # sampler for source train loader
    cfg.sampler.train_sampler_t = "RandomSampler"  # sampler for target train loader
    cfg.sampler.num_instances = 4  # number of instances per identity for RandomIdentitySampler
    cfg.sampler.num_cams = 1  # number of cameras to sample in a batch (for RandomDomainSampler)
    cfg.sampler.num_datasets = 1  # number of datasets to sample in a batch (for RandomDatasetSampler)

    # video reid setting (kept for key compatibility; the plugin's data sets are image data sets)
    cfg.video = CfgNode()
    cfg.video.seq_len = 15  # number of images to sample in a tracklet
    cfg.video.sample_method = "evenly"  # how to sample images from a tracklet
    cfg.video.pooling_method = "avg"  # how to pool features over a tracklet

    # train
    cfg.train = CfgNode()
    cfg.train.optim = "adam"  # optimizer: adam, amsgrad, sgd, rmsprop or radam
    cfg.train.lr = 0.0003  # (peak) learning rate
    cfg.train.weight_decay = 5e-4  # weight decay (L2 penalty)
    cfg.train.max_epoch = 60  # maximum epoch
    cfg.train.start_epoch = 0  # starting epoch (set from the checkpoint when resuming)
    cfg.train.batch_size = 32  # training batch size
    cfg.train.fixbase_epoch = 0  # number of epochs to fix base layers
    cfg.train.open_layers = ["classifier"]  # layers for training while keeping others frozen
    cfg.train.staged_lr = False  # set different lr to different layers
    cfg.train.new_layers = ["classifier"]  # newly added layers with default lr
    cfg.train.base_lr_mult = 0.1  # learning rate multiplier for base layers
    cfg.train.lr_scheduler = "single_step"  # lr scheduler: single_step, multi_step, cosine, warmup_single_step, warmup_multi_step
    cfg.train.stepsize = [20]  # stepsize to decay learning rate
    cfg.train.gamma = 0.1  # learning rate decay multiplier
    cfg.train.print_freq = 20  # print frequency
    cfg.train.seed = 1  # random seed

    # optimizer
    cfg.sgd = CfgNode()
    cfg.sgd.momentum = 0.9  # momentum factor for sgd and rmsprop
    cfg.sgd.dampening = 0.0  # dampening for momentum
    cfg.sgd.nesterov = False  # Nesterov momentum
    cfg.rmsprop = CfgNode()
    cfg.rmsprop.alpha = 0.99  # smoothing constant
    cfg.adam = CfgNode()
    cfg.adam.beta1 = 0.9  # exponential decay rate for first moment
    cfg.adam.beta2 = 0.999  # exponential decay rate for second moment

    # loss
    cfg.loss = CfgNode()
    cfg.loss.name = "softmax"  # loss of stock models: 'softmax' or 'triplet' (picks the stock engine)
    cfg.loss.softmax = CfgNode()
    cfg.loss.softmax.label_smooth = True  # use label smoothing regularizer
    cfg.loss.triplet = CfgNode()
    cfg.loss.triplet.margin = 0.3  # distance margin
    cfg.loss.triplet.weight_t = 1.0  # weight to balance hard triplet loss
    cfg.loss.triplet.weight_x = 0.0  # weight to balance cross entropy loss

    # test
    cfg.test = CfgNode()
    cfg.test.batch_size = 100  # test batch size
    cfg.test.dist_metric = "euclidean"  # distance metric, ['euclidean', 'cosine']
    cfg.test.normalize_feature = False  # normalize feature vectors before computing distance
    cfg.test.ranks = [1, 5, 10, 20]  # cmc ranks
    cfg.test.evaluate = False  # test only
    cfg.test.eval_freq = -1  # evaluation frequency (-1 means to only test after training)
    cfg.test.start_eval = 0  # start to evaluate after a specific epoch
    cfg.test.rerank = False  # use person re-ranking
    cfg.test.visrank = False  # visualize ranked results (only available when cfg.test.evaluate=True)
    cfg.test.visrank_topk = 10  # top-k ranks to visualize

    add_train_config(cfg)
    add_dense_config(cfg)
    add_dsa_config(cfg)
    add_san_config(cfg)
    add_synth_config(cfg)
    return cfg


def imagedata_kwargs(cfg):
    """Keyword arguments of ``DenseImageDataManager``: torchreid's ``ImageDataManager`` ones + ``dense`` and
    ``file_check``."""
    return {
        "root": cfg.data.root,
        "sources": list(cfg.data.sources),
        "targets": list(cfg.data.targets),
        "height": cfg.data.height,
        "width": cfg.data.width,
        "transforms": list(cfg.data.transforms),
        "k_tfm": cfg.data.k_tfm,
        "norm_mean": list(cfg.data.norm_mean),
        "norm_std": list(cfg.data.norm_std),
        "use_gpu": cfg.use_gpu,
        "split_id": cfg.data.split_id,
        "combineall": cfg.data.combineall,
        "load_train_targets": cfg.data.load_train_targets,
        "batch_size_train": cfg.train.batch_size,
        "batch_size_test": cfg.test.batch_size,
        "workers": cfg.data.workers,
        "num_instances": cfg.sampler.num_instances,
        "num_cams": cfg.sampler.num_cams,
        "num_datasets": cfg.sampler.num_datasets,
        "train_sampler": cfg.sampler.train_sampler,
        "train_sampler_t": cfg.sampler.train_sampler_t,
        "cuhk03_labeled": cfg.cuhk03.labeled_images,
        "cuhk03_classic_split": cfg.cuhk03.classic_split,
        "market1501_500k": cfg.market1501.use_500k_distractors,
        "file_check": {"skip_bad": cfg.data.skip_bad, "cache_dir": cfg.data.check_cache} if cfg.data.check_files
        else False,
        "dense": {
            "size": cfg.dense.dsap_size,
            "alignment": cfg.dense.alignment,
            "iuv_kind": cfg.dense.iuv_kind,
            "strict": cfg.dense.strict,
            "cache": cfg.dense.cache,
            "sidecar_root": cfg.dense.sidecar_root,
            "max_missing": cfg.dense.max_missing,  # read by the data manager, not by the wrappers
            "texture_size": tuple(cfg.san.texture_size),  # the texture wrappers' target = the SA-Dec output
        },
    }


def optimizer_kwargs(cfg):
    """Keyword arguments of ``torchreid_dense.optim.build_optimizer`` (torchreid's)."""
    return {
        "optim": cfg.train.optim,
        "lr": cfg.train.lr,
        "weight_decay": cfg.train.weight_decay,
        "momentum": cfg.sgd.momentum,
        "sgd_dampening": cfg.sgd.dampening,
        "sgd_nesterov": cfg.sgd.nesterov,
        "rmsprop_alpha": cfg.rmsprop.alpha,
        "adam_beta1": cfg.adam.beta1,
        "adam_beta2": cfg.adam.beta2,
        "staged_lr": cfg.train.staged_lr,
        "new_layers": list(cfg.train.new_layers),
        "base_lr_mult": cfg.train.base_lr_mult,
    }


def lr_scheduler_kwargs(cfg):
    """Keyword arguments of ``torchreid_dense.optim.build_lr_scheduler``."""
    return {
        "lr_scheduler": cfg.train.lr_scheduler,
        "stepsize": list(cfg.train.stepsize),
        "gamma": cfg.train.gamma,
        "max_epoch": cfg.train.max_epoch,
        "warmup_epochs": cfg.train.warmup_epochs,
        "warmup_lr": cfg.train.warmup_lr,
    }


def engine_run_kwargs(cfg):
    """Keyword arguments of torchreid's ``Engine.run``."""
    return {
        "save_dir": cfg.data.save_dir,
        "max_epoch": cfg.train.max_epoch,
        "start_epoch": cfg.train.start_epoch,
        "fixbase_epoch": cfg.train.fixbase_epoch,
        "open_layers": list(cfg.train.open_layers),
        "start_eval": cfg.test.start_eval,
        "eval_freq": cfg.test.eval_freq,
        "test_only": cfg.test.evaluate,
        "print_freq": cfg.train.print_freq,
        "dist_metric": cfg.test.dist_metric,
        "normalize_feature": cfg.test.normalize_feature,
        "visrank": cfg.test.visrank,
        "visrank_topk": cfg.test.visrank_topk,
        "use_metric_cuhk03": cfg.cuhk03.use_metric_cuhk03,
        "ranks": list(cfg.test.ranks),
        "rerank": cfg.test.rerank,
    }


def model_kwargs(cfg):
    """Keyword arguments of a model builder (torchreid's signature) apart from ``num_classes``."""
    return {
        "name": cfg.model.name,
        "loss": cfg.loss.name,
        "pretrained": cfg.model.pretrained_path or cfg.model.pretrained,  # a path: that file, no download
        "use_gpu": cfg.use_gpu,
    }
