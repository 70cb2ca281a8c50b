"""The plugin's configuration keys, each namespace added by one composable ``add_*_config(cfg)`` that owns it.

- :func:`add_data_config`: the file check before training (extra keys inside torchreid's ``data`` section);
- :func:`add_train_config`: warm-up, mixed precision, channels-last, mid-epoch checkpoints
  (extra keys inside torchreid's ``train`` section);
- :func:`add_dense_config`: ``dense.*``, how DSAP-images / textures are read from the sidecars;
- :func:`add_dsa_config`: ``dsa.*``, DSA-reID (CVPR 2019) loss weights and variants;
- :func:`add_san_config`: ``san.*``, SAN (AAAI 2020) loss weights, PIT interleaving, init, and
  the texture size (``san.texture_size``: the SA-Dec output and the texture wrappers' target size);
- :func:`add_synth_config`: ``synth.*``, the SynthReID generator preset and seed.
"""
from yacs.config import CfgNode

__all__ = ["add_data_config", "add_train_config", "add_dense_config", "add_dsa_config", "add_san_config",
           "add_synth_config"]


def add_data_config(cfg):
    """Plugin keys inside torchreid's ``data`` section (the file check before training)."""
    # the plugin's file check before training (torchreid_dense/data/file_check.py)
    cfg.data.check_files = True  # read every image and sidecar the loaders will read before the first epoch (cached)
    cfg.data.skip_bad = False  # drop (and count) the images whose image or sidecar file is bad instead of stopping
    cfg.data.check_cache = ""  # directory of the check's cache ('' = $XDG_CACHE_HOME/torchreid_dense/file_check)
    return cfg


def add_train_config(cfg):
    """Plugin keys inside torchreid's ``train`` section (warm-up, AMP, checkpoints)."""
    cfg.train.warmup_epochs = 0  # epochs of linear LR warm-up (used by the warmup_* lr schedulers; 0 = none)
    cfg.train.warmup_lr = 8e-6  # learning rate at epoch 0 of the warm-up, rising linearly to train.lr (DSA-reID: 8e-6)
    # how the warm-up rises: 'linear' or 'exponential' (x (lr / warmup_lr)^(1 / warmup_epochs) per epoch: the SAN
    # authors' x1.259 over 20 epochs from 8e-6 to 8e-4)
    cfg.train.warmup_mode = "linear"  # see above
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
    # the 8 part ID losses ID(fL,i): 'sum' (weight_id_mf each, Sec. 4.2 read literally) or 'mean' (weight_id_mf for all 8
    # together). 'sum' since the alignment suite, SynthReID small seed 0, 12 epochs, AMD EPYC: DSA-reID mAP 38.8 vs 36.6
    # with 'mean'
    cfg.dsa.part_id_reduction = "sum"  # see above
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
    # L_TR over the 3 decoder blocks: 'mean' (one triplet-sized term) or 'sum' (the paper's lambda_4 L_TR read as a
    # sum). Alignment suite, SynthReID small seed 0, 12 epochs, AMD EPYC: SAN mAP 32.0 'mean' vs 31.6 'sum', inside
    # the SAN rows' spread over 3 seeds (+- 0.5): neither reading is shown better; 'mean' keeps one triplet-sized term
    cfg.san.tr_reduction = "mean"  # see above
    # L_TR's squared distances divided by c*h*w ('all': a mean over every element, as the SAN authors' released code
    # computes it with an MSE) or by h*w ('spatial': Eq. 1 as printed, 16-512x larger at SA-Dec's widths). 'all' since
    # the alignment suite, SynthReID small, 12 epochs, 3 training seeds, AMD EPYC: SAN mAP 32.3 +- 0.5 vs 25.3 +- 0.5
    # 'spatial'
    cfg.san.tr_normalize = "all"  # see above
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
    # --- the SAN authors' released recipe (docs/san_authors_code.md); defaults keep the paper's reading
    cfg.san.decoder = "residual"  # SA-Dec: 'residual' (4 residual up-blocks after fe4, the paper) or 'unet' (+ skips from layer1-3)
    cfg.san.tr_blocks = 3  # decoder blocks whose outputs L_TR compares (paper: the first 3; authors' code: all 4)
    cfg.san.tr_pairing = "random"  # L_TR triplets: 'random' positive/negative per anchor, or 'offsets' (authors' code)
    cfg.san.tr_anchor_reduction = "mean"  # L_TR over anchors: 'mean', or 'sum' (authors' code)
    cfg.san.texture_range = "normalized"  # texture targets: 'normalized' like the image, or 'tanh' ([-1, 1], authors' code)
    # what san.init_weights (SAN-PG) initialises: 'all' (SA-Enc + SA-Dec, the paper), 'encoder', or 'none' (SAN-PG only
    # makes the pseudo textures; the authors' code starts from ImageNet and a fresh SA-Dec)
    cfg.san.pg_init = "all"  # see above
    # L_Rec + L_TR as a second optimisation step of each re-ID batch, with its own optimiser (authors' code); the first
    # step is ID + triplet with the main optimiser
    cfg.san.texture_step = False  # see above
    cfg.san.texture_optim = "adam"  # its optimiser, over SA-Enc and SA-Dec
    cfg.san.texture_lr = 1e-5  # its constant learning rate
    cfg.san.texture_betas = [0.5, 0.999]  # its Adam betas
    cfg.san.texture_weight_decay = 0.0  # its weight decay
    return cfg


def add_synth_config(cfg):
    """``synth.*``: the SynthReID generator used by the ``synthreid*`` data sets."""
    cfg.synth = CfgNode()
    cfg.synth.preset = "small"  # generator preset: 'tiny' (tests), 'small' (CPU demo) or 'full' (Market-1501 scale)
    cfg.synth.seed = 0  # generator seed; data lives under <data.root>/synthreid/<preset>_s<seed>/
    cfg.synth.misalignment = 1.0  # scale of pose/viewpoint spread, box jitter and occluder odds (dir suffix _m<value> when not 1)
    return cfg

