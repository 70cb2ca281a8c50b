"""The yacs config: torchreid's keys, strict merging, shipped configs, adapters, lr schedules."""
import glob
import inspect
import io
import os.path as osp
import re
import types

import pytest
import torch

import torchreid_dense  # noqa: F401  (registers models, data sets, engines)
from torchreid_dense import compat
from torchreid_dense.config import (
    ConfigKeyError,
    ConfigValueError,
    add_dense_config,
    engine_run_kwargs,
    get_default_config,
    imagedata_kwargs,
    lr_scheduler_kwargs,
    model_kwargs,
    optimizer_kwargs,
)
from torchreid_dense.engine.launch import check_synth_preset
from torchreid_dense.models import build_model_from_config
from torchreid_dense.optim import (
    SCHEDULERS,
    WarmupMultiStepLR,
    WarmupStepLR,
    build_lr_scheduler,
    build_optimizer,
)
from torchreid_dense.registry import ENGINES, MODELS, Registry

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, "configs")

# deep-person-reid's scripts/default_config.py, key -> default (written out independently).
TORCHREID_DEFAULTS = {
    "model.name": "resnet50", "model.pretrained": True, "model.load_weights": "", "model.resume": "",
    "data.type": "image", "data.root": "reid-data", "data.sources": ["market1501"],
    "data.targets": ["market1501"], "data.workers": 4, "data.split_id": 0, "data.height": 256,
    "data.width": 128, "data.combineall": False, "data.transforms": ["random_flip"], "data.k_tfm": 1,
    "data.norm_mean": [0.485, 0.456, 0.406], "data.norm_std": [0.229, 0.224, 0.225],
    "data.save_dir": "log", "data.load_train_targets": False,
    "market1501.use_500k_distractors": False,
    "cuhk03.labeled_images": False, "cuhk03.classic_split": False, "cuhk03.use_metric_cuhk03": False,
    "sampler.train_sampler": "RandomSampler", "sampler.train_sampler_t": "RandomSampler",
    "sampler.num_instances": 4, "sampler.num_cams": 1, "sampler.num_datasets": 1,
    "video.seq_len": 15, "video.sample_method": "evenly", "video.pooling_method": "avg",
    "train.optim": "adam", "train.lr": 0.0003, "train.weight_decay": 5e-4, "train.max_epoch": 60,
    "train.start_epoch": 0, "train.batch_size": 32, "train.fixbase_epoch": 0,
    "train.open_layers": ["classifier"], "train.staged_lr": False, "train.new_layers": ["classifier"],
    "train.base_lr_mult": 0.1, "train.lr_scheduler": "single_step", "train.stepsize": [20],
    "train.gamma": 0.1, "train.print_freq": 20, "train.seed": 1,
    "sgd.momentum": 0.9, "sgd.dampening": 0.0, "sgd.nesterov": False, "rmsprop.alpha": 0.99,
    "adam.beta1": 0.9, "adam.beta2": 0.999,
    "loss.name": "softmax", "loss.softmax.label_smooth": True, "loss.triplet.margin": 0.3,
    "loss.triplet.weight_t": 1.0, "loss.triplet.weight_x": 0.0,
    "test.batch_size": 100, "test.dist_metric": "euclidean", "test.normalize_feature": False,
    "test.ranks": [1, 5, 10, 20], "test.evaluate": False, "test.eval_freq": -1, "test.start_eval": 0,
    "test.rerank": False, "test.visrank": False, "test.visrank_topk": 10,
}

PLUGIN_DEFAULTS = {
    "train.warmup_epochs": 0, "train.warmup_lr": 8e-6, "train.amp": "", "train.channels_last": False,
    "train.checkpoint_every": 0, "model.pretrained_path": "",
    "data.check_files": True, "data.skip_bad": False, "data.check_cache": "",
    "dense.dsap_size": 32, "dense.alignment": "dense", "dense.iuv_kind": "densepose",
    "dense.strict": False, "dense.cache": False, "dense.sidecar_root": "", "dense.max_missing": 0.5,
    "dsa.weight_id_mf": 0.5, "dsa.weight_triplet": 1.5, "dsa.weight_id_fused": 1.0, "dsa.fusion": "add",
    "dsa.feature": "mf", "dsa.branches": "both", "dsa.streams": "two", "dsa.dsag_width": 0.0, "dsa.part_id_reduction": "sum",
    "san.pit_weight_rec": 1.0, "san.tr_reduction": "mean", "san.tr_normalize": "all", "san.pit_val_fraction": 0.1,
    "san.texture_size": [240, 160], "san.decoder_widths": [], "san.id_head": "bnneck",
    "san.weight_id": 0.5, "san.weight_triplet": 1.5, "san.weight_rec": 1.0, "san.weight_tr": 1.0,
    "san.tr_margin": 0.3, "san.use_tr": True, "san.use_pit": True, "san.pit_ratio": 4,
    "san.pit_batch_size": 0, "san.pit_root": "", "san.rec_target": "texture", "san.init_weights": "",
    "san.steps_dir": "", "san.pg_max_epoch": 60, "san.pg_optim": "adam", "san.pg_lr": 0.0003, "san.pg_batch_size": 64,
    "san.pg_lr_scheduler": "single_step", "san.pg_stepsize": [40], "san.pg_gamma": 0.1, "san.pg_warmup_epochs": 0,
    "synth.preset": "small", "synth.seed": 0, "synth.misalignment": 1.0,
    # the SAN authors' recipe (issue 26): every switch off by default
    "train.warmup_mode": "linear", "san.decoder": "residual", "san.tr_blocks": 3, "san.tr_pairing": "random",
    "san.tr_anchor_reduction": "mean", "san.texture_range": "normalized", "san.pg_init": "all",
    "san.texture_step": False, "san.texture_optim": "adam", "san.texture_lr": 1e-5, "san.texture_betas": [0.5, 0.999],
    "san.texture_weight_decay": 0.0,
}


def lookup(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------ defaults


@pytest.mark.parametrize("table", [TORCHREID_DEFAULTS, PLUGIN_DEFAULTS], ids=["torchreid", "plugin"])
def test_defaults_hold_every_key_with_its_default_and_type(table):
    cfg = get_default_config()
    for key, expected in table.items():
        value = lookup(cfg, key)
        assert value == expected, key
        assert type(value) is type(expected), key
    assert cfg.use_gpu == torch.cuda.is_available()


def test_every_default_key_has_an_inline_comment():
    source = "".join(open(osp.join(REPO, "torchreid_dense", "config", name)).read()
                     for name in ("torchreid_keys.py", "plugin_keys.py"))  # the modules defining the keys
    leaves = [line for line in source.splitlines()
              if re.match(r"\s*cfg(\.\w+)+ = ", line) and "CfgNode()" not in line]
    assert len(leaves) == len(TORCHREID_DEFAULTS) + len(PLUGIN_DEFAULTS) + 1  # + use_gpu
    missing = [line.strip() for line in leaves if "  # " not in line]
    assert not missing, missing


def test_add_config_functions_compose_on_a_plain_node():
    from yacs.config import CfgNode

    cfg = add_dense_config(CfgNode())
    assert sorted(cfg.dense.keys()) == sorted(k.split(".")[1] for k in PLUGIN_DEFAULTS if k.startswith("dense."))


# ------------------------------------------------------------------ strict merging


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = write(tmp_path, "x.yaml", "train:\n  lrr: 0.1\n")
    cfg = get_default_config()
    with pytest.raises(ConfigKeyError) as err:
        cfg.merge_from_file(path)
    assert isinstance(err.value, KeyError)
    assert str(err.value) == f"{path}: unknown config key 'train.lrr' (did you mean 'train.lr'?)"


def test_unknown_section_and_unknown_override_name_the_key(tmp_path):
    path = write(tmp_path, "y.yaml", "trian:\n  lr: 0.1\n")
    with pytest.raises(ConfigKeyError, match=r"y\.yaml: unknown config key 'trian'"):
        get_default_config().merge_from_file(path)
    with pytest.raises(ConfigKeyError, match=r"command line: unknown config key 'dsa\.weigth_triplet'"):
        get_default_config().merge_from_list(["dsa.weigth_triplet", "1.0"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("train:\n  lr: fast\n", "config key 'train.lr' expects float, got str 'fast'"),
        ("train:\n  max_epoch: 1.5\n", "config key 'train.max_epoch' expects int, got float 1.5"),
        ("test:\n  evaluate: 1\n", "config key 'test.evaluate' expects bool, got int 1"),
        ("model:\n  name: 50\n", "config key 'model.name' expects str, got int 50"),
        ("train:\n  stepsize: [40, x]\n", "config key 'train.stepsize[1]' expects int, got str 'x'"),
        ("train: 3\n", "config key 'train' is a section"),
        ("model:\n  name:\n    a: 1\n", "config key 'model.name' is a value of type str"),
    ],
)
def test_wrong_type_names_key_expected_and_got(tmp_path, text, message):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigValueError) as err:
        get_default_config().merge_from_file(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_accepted_conversions(tmp_path):
    cfg = get_default_config()
    path = write(tmp_path, "ok.yaml", "train:\n  lr: 3e-4\n  gamma: 1\n  stepsize: 40\n"
                                      "data:\n  sources: market1501_dsap\n  norm_mean: [0, 1, 0.5]\n")
    cfg.merge_from_file(path)
    assert cfg.train.lr == 3e-4 and type(cfg.train.lr) is float  # YAML reads 3e-4 as a string
    assert cfg.train.gamma == 1.0 and type(cfg.train.gamma) is float
    assert cfg.train.stepsize == [40]
    assert cfg.data.sources == ["market1501_dsap"]
    assert cfg.data.norm_mean == [0.0, 1.0, 0.5]
    cfg.merge_from_list(["test.evaluate", "true", "data.root", "123", "test.ranks", "[1, 5]",
                         "model.load_weights", "log/a b/model.pth.tar-1"])
    assert cfg.test.evaluate is True
    assert cfg.data.root == "123"  # str keys keep the raw text
    assert cfg.test.ranks == [1, 5]
    assert cfg.model.load_weights == "log/a b/model.pth.tar-1"


def test_synth_preset_must_agree_with_the_data_set_name():
    cfg = get_default_config()
    cfg.merge_from_list(["data.sources", "synthreid_tiny_dsap", "data.targets", "synthreid_tiny"])
    with pytest.raises(ConfigValueError, match="synth.preset is 'small' but data set 'synthreid_tiny_dsap' is "
                                               "the 'tiny' preset"):
        check_synth_preset(cfg)
    cfg.merge_from_list(["synth.preset", "tiny"])
    check_synth_preset(cfg)


def test_odd_override_list_and_frozen_config():
    cfg = get_default_config()
    with pytest.raises(ConfigValueError, match="KEY VALUE pairs"):
        cfg.merge_from_list(["train.lr"])
    cfg.freeze()
    with pytest.raises(AttributeError, match="frozen"):
        cfg.merge_from_list(["train.lr", "0.1"])


def test_dump_round_trips(tmp_path):
    cfg = get_default_config()
    cfg.merge_from_list(["train.warmup_lr", "8e-6", "data.sources", "['a', 'b']", "dense.strict", "True"])
    path = write(tmp_path, "dumped.yaml", cfg.dump())
    again = get_default_config()
    again.merge_from_file(path)
    assert again == cfg


# ------------------------------------------------------------------ shipped configs

SHIPPED = sorted(glob.glob(osp.join(CONFIG_DIR, "*.yaml")))


def test_user_facing_config_names_exist():
    names = {osp.basename(p) for p in SHIPPED}
    for kind in ("dsa", "san", "baseline"):
        for ds in ("market", "cuhk03_labeled", "cuhk03_detected", "duke", "msmt17", "synth"):
            assert f"{kind}_{ds}.yaml" in names
    assert {"san_pg.yaml", "san_pg_synth.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[osp.basename(p) for p in SHIPPED])
def test_shipped_config_loads_and_names_registered_things(path):
    cfg = get_default_config()
    cfg.merge_from_file(path)
    cfg.freeze()
    name = cfg.model.name
    assert name in MODELS or name in compat.model_factory()
    engine = MODELS.meta(name)["engine"] if name in MODELS else cfg.loss.name
    assert engine in ENGINES
    assert cfg.train.lr_scheduler in SCHEDULERS
    datasets = compat.image_dataset_factory()
    for ds in list(cfg.data.sources) + list(cfg.data.targets):
        assert ds in datasets, ds
    check_synth_preset(cfg)  # the named SynthReID data sets are of the configured preset
    if osp.basename(path).endswith("_synth.yaml"):
        assert cfg.use_gpu is False and cfg.model.pretrained is False  # CPU configs run offline


@pytest.mark.parametrize("ds, source, labeled", [
    ("market", "market1501", None), ("cuhk03_labeled", "cuhk03", True),
    ("cuhk03_detected", "cuhk03", False), ("duke", "dukemtmcreid", None), ("msmt17", "msmt17", None),
])
def test_paper_settings(ds, source, labeled):
    cfgs = {}
    for kind in ("dsa", "san", "baseline"):
        cfg = get_default_config()
        cfg.merge_from_file(osp.join(CONFIG_DIR, f"{kind}_{ds}.yaml"))
        cfgs[kind] = cfg
        assert (cfg.data.height, cfg.data.width) == (256, 128)
        assert cfg.sampler.train_sampler == "RandomIdentitySampler"
        assert (cfg.train.batch_size, cfg.sampler.num_instances) == (64, 4)
        assert cfg.train.weight_decay == 5e-4
        assert set(cfg.data.transforms) == {"random_flip", "random_crop", "random_erase"}
        assert cfg.loss.softmax.label_smooth is True
        assert (cfg.train.lr, cfg.train.warmup_lr, cfg.train.warmup_epochs) == (8e-4, 8e-6, 20)
        assert (cfg.train.lr_scheduler, cfg.train.stepsize, cfg.train.gamma) == ("warmup_single_step", [40], 0.5)
        assert cfg.train.max_epoch == 320
        assert cfg.data.targets == [source]
        if labeled is not None:
            assert cfg.cuhk03.labeled_images is labeled
            assert cfg.cuhk03.classic_split is False
    assert cfgs["dsa"].model.name == "dsa_reid" and cfgs["dsa"].data.sources == [f"{source}_dsap"]
    assert cfgs["dsa"].train.optim == "adam"
    assert cfgs["san"].model.name == "san" and cfgs["san"].data.sources == [f"{source}_texture"]
    assert cfgs["san"].train.optim == "amsgrad"
    base = cfgs["baseline"]
    assert (base.model.name, base.loss.name, base.data.sources) == ("resnet50", "triplet", [source])
    assert (base.loss.triplet.weight_t, base.loss.triplet.weight_x) == (1.0, 1.0)


# ------------------------------------------------------------------ adapters


def test_imagedata_kwargs_match_torchreid_datamanager():
    cfg = get_default_config()
    cfg.merge_from_list(["dense.dsap_size", "16", "san.texture_size", "[192, 128]",
                         "dense.alignment", "csa", "cuhk03.labeled_images", "True", "train.batch_size", "64"])
    kwargs = imagedata_kwargs(cfg)
    params = set(inspect.signature(compat.ImageDataManager.__init__).parameters) - {"self"}
    assert set(kwargs) - {"dense", "file_check"} == params
    assert kwargs["file_check"] == {"skip_bad": False, "cache_dir": ""}
    assert kwargs["dense"] == dict(size=16, alignment="csa", iuv_kind="densepose", strict=False, cache=False, sidecar_root="",
                                   max_missing=0.5, texture_size=(192, 128), texture_range="normalized")
    assert (kwargs["batch_size_train"], kwargs["batch_size_test"]) == (64, 100)
    assert kwargs["cuhk03_labeled"] is True and kwargs["use_gpu"] == cfg.use_gpu


def test_optimizer_and_run_and_model_kwargs():
    cfg = get_default_config()
    cfg.merge_from_list(["train.optim", "sgd", "sgd.momentum", "0.5", "test.evaluate", "True",
                         "cuhk03.use_metric_cuhk03", "True", "model.name", "resnet18"])
    opt = optimizer_kwargs(cfg)
    assert set(opt) == set(inspect.signature(compat.optim.build_optimizer).parameters) - {"model"}
    assert (opt["optim"], opt["momentum"], opt["adam_beta2"]) == ("sgd", 0.5, 0.999)
    run = engine_run_kwargs(cfg)
    assert set(run) == set(inspect.signature(compat.Engine.run).parameters) - {"self"}
    assert run["test_only"] is True and run["use_metric_cuhk03"] is True and run["save_dir"] == "log"
    assert model_kwargs(cfg) == {"name": "resnet18", "loss": "softmax", "pretrained": True, "use_gpu": cfg.use_gpu}
    sched = lr_scheduler_kwargs(cfg)
    assert set(sched) == set(inspect.signature(build_lr_scheduler).parameters) - {"optimizer"}


# ------------------------------------------------------------------ lr schedulers


def make_optimizer(lr=8e-4, staged=False):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    if staged:
        groups = [{"params": model[0].parameters(), "lr": lr * 0.1}, {"params": model[1].parameters()}]
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.Adam(model.parameters(), lr=lr)


def lr_per_epoch(optimizer, scheduler, epochs, group=0):
    lrs = []
    for _ in range(epochs):  # as torchreid's Engine: train an epoch, then scheduler.step()
        lrs.append(optimizer.param_groups[group]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_dsa_schedule_exact_values():
    cfg = get_default_config()
    cfg.merge_from_file(osp.join(CONFIG_DIR, "dsa_market.yaml"))
    optimizer = make_optimizer(cfg.train.lr)
    scheduler = build_lr_scheduler(optimizer, **lr_scheduler_kwargs(cfg))
    assert isinstance(scheduler, WarmupStepLR)
    lrs = lr_per_epoch(optimizer, scheduler, 320)
    expected = {0: 8e-6, 1: 8e-6 + 792e-6 / 20, 10: 8e-6 + 792e-6 / 2, 19: 8e-6 + 792e-6 * 19 / 20,
                20: 8e-4, 59: 8e-4, 60: 4e-4, 99: 4e-4, 100: 2e-4, 140: 1e-4, 299: 8e-4 / 64,
                300: 8e-4 / 128, 319: 8e-4 / 128}
    for epoch, lr in expected.items():
        assert lrs[epoch] == pytest.approx(lr, rel=1e-12, abs=0), epoch


def test_warmup_multi_step_values_and_staged_groups():
    optimizer = make_optimizer(1e-3, staged=True)
    scheduler = build_lr_scheduler(optimizer, "warmup_multi_step", stepsize=[10, 15], gamma=0.1,
                                   max_epoch=20, warmup_epochs=4, warmup_lr=1e-5)
    assert isinstance(scheduler, WarmupMultiStepLR)
    new = lr_per_epoch(optimizer, scheduler, 20, group=1)
    expected = [1e-5 + (1e-3 - 1e-5) * e / 4 for e in range(4)] + [1e-3] * 6 + [1e-4] * 5 + [1e-5] * 5
    assert new == pytest.approx(expected, rel=1e-12)
    base = [g["lr"] for g in optimizer.param_groups]
    assert base[0] == pytest.approx(0.1 * base[1], rel=1e-12)  # staged ratio kept


def test_exponential_warmup_is_the_san_authors_x1_259_per_epoch():
    """train.warmup_mode exponential: 8e-6 * (100 ** (1/20)) ** e over 20 epochs (x1.2589), then 8e-4, x0.5 every 40."""
    cfg = get_default_config()
    cfg.merge_from_list(["train.lr", "0.0008", "train.lr_scheduler", "warmup_multi_step", "train.warmup_epochs", "20",
                         "train.warmup_lr", "8e-6", "train.warmup_mode", "exponential", "train.gamma", "0.5",
                         "train.stepsize", "[60, 100, 140]", "train.max_epoch", "160"])
    optimizer = make_optimizer(cfg.train.lr)
    lrs = lr_per_epoch(optimizer, build_lr_scheduler(optimizer, **lr_scheduler_kwargs(cfg)), 160)
    assert lrs[0] == pytest.approx(8e-6, rel=1e-12) and lrs[19] == pytest.approx(8e-6 * 100 ** (19 / 20), rel=1e-12)
    ratios = [lrs[e + 1] / lrs[e] for e in range(19)]
    assert ratios == pytest.approx([1.2589254117941673] * 19, rel=1e-12)  # the authors' 1.259
    assert lrs[20] == lrs[59] == pytest.approx(8e-4, rel=1e-12) and lrs[60] == pytest.approx(4e-4, rel=1e-12)
    with pytest.raises(ValueError, match="train.warmup_mode must be one of"):
        WarmupStepLR(make_optimizer(), step_size=5, warmup_epochs=2, warmup_mode="cosine")


def test_warmup_scheduler_state_dict_round_trip():
    optimizer = make_optimizer()
    scheduler = WarmupStepLR(optimizer, step_size=5, gamma=0.5, warmup_epochs=3, warmup_lr=1e-5)
    straight = lr_per_epoch(optimizer, scheduler, 20)

    optimizer = make_optimizer()
    scheduler = WarmupStepLR(optimizer, step_size=5, gamma=0.5, warmup_epochs=3, warmup_lr=1e-5)
    first = lr_per_epoch(optimizer, scheduler, 7)
    state = torch.load(_save(scheduler.state_dict()), weights_only=True)
    optimizer2 = make_optimizer()
    optimizer2.load_state_dict(optimizer.state_dict())
    resumed = WarmupStepLR(optimizer2, step_size=99, gamma=0.9, warmup_epochs=0)
    resumed.load_state_dict(state)
    rest = lr_per_epoch(optimizer2, resumed, 13)
    assert first + rest == straight


def _save(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


def test_torchreid_schedulers_match_torchreid():
    ours_opt, ref_opt = make_optimizer(), make_optimizer()
    ours = build_lr_scheduler(ours_opt, "single_step", stepsize=[7], gamma=0.1, max_epoch=20)
    ref = compat.optim.build_lr_scheduler(ref_opt, "single_step", stepsize=7, gamma=0.1)
    assert lr_per_epoch(ours_opt, ours, 20) == lr_per_epoch(ref_opt, ref, 20)
    ours_opt, ref_opt = make_optimizer(), make_optimizer()
    ours = build_lr_scheduler(ours_opt, "multi_step", stepsize=[3, 9], gamma=0.5, max_epoch=20)
    ref = compat.optim.build_lr_scheduler(ref_opt, "multi_step", stepsize=[3, 9], gamma=0.5)
    assert lr_per_epoch(ours_opt, ours, 20) == lr_per_epoch(ref_opt, ref, 20)
    assert isinstance(build_lr_scheduler(make_optimizer(), "cosine", max_epoch=5),
                      torch.optim.lr_scheduler.CosineAnnealingLR)


def test_scheduler_errors_are_clear():
    with pytest.raises(ValueError, match=r"warmup_epochs=5 has no effect with lr scheduler 'single_step'"):
        build_lr_scheduler(make_optimizer(), "single_step", stepsize=[3], warmup_epochs=5)
    with pytest.raises(KeyError, match="unknown lr scheduler 'warmup_cosine'"):
        build_lr_scheduler(make_optimizer(), "warmup_cosine")
    with pytest.raises(ValueError, match="falls inside the warm-up"):
        WarmupMultiStepLR(make_optimizer(), milestones=[5], warmup_epochs=10)


def test_build_optimizer_is_torchreids():
    model = torch.nn.Linear(3, 3)
    optimizer = build_optimizer(model, **optimizer_kwargs(get_default_config()))
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["lr"] == 0.0003
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)


# ------------------------------------------------------------------ stock engines and model building


def fake_datamanager():
    return types.SimpleNamespace(train_loader=None, test_loader={}, sources=["x"], num_train_pids=3)


def test_stock_engines_from_config():
    cfg = get_default_config()
    cfg.merge_from_list(["use_gpu", "False", "loss.softmax.label_smooth", "False", "loss.triplet.margin", "0.7",
                         "loss.triplet.weight_t", "2.0", "loss.triplet.weight_x", "0.25"])
    model = torch.nn.Linear(2, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    softmax = ENGINES.get("softmax").from_config(cfg, fake_datamanager(), model, optimizer, None)
    assert isinstance(softmax, compat.ImageSoftmaxEngine)
    assert softmax.criterion.eps == 0  # torchreid keeps eps = 0.1 only with label smoothing
    triplet = ENGINES.get("triplet").from_config(cfg, fake_datamanager(), model, optimizer, None)
    assert isinstance(triplet, compat.ImageTripletEngine)
    assert (triplet.weight_t, triplet.weight_x, triplet.criterion_t.margin) == (2.0, 0.25, 0.7)
    assert triplet.use_gpu is False and triplet.criterion_x.eps == 0
    cfg.defrost()
    cfg.merge_from_list(["loss.softmax.label_smooth", "True"])
    assert ENGINES.get("softmax").from_config(cfg, fake_datamanager(), model, optimizer, None).criterion.eps == 0.1


def test_build_model_from_config_stock_and_plugin(monkeypatch):
    cfg = get_default_config()
    cfg.merge_from_list(["model.name", "resnet18", "model.pretrained", "False", "loss.name", "triplet",
                         "use_gpu", "False"])
    model, engine = build_model_from_config(cfg, num_classes=5)
    assert engine == "triplet"
    assert model.classifier.out_features == 5

    calls = []
    registry = Registry("model")

    def toy_cfg_kwargs(c):
        return {"width": c.dense.dsap_size, "pretrained": "overridden"}

    @registry.register("toy", engine="dsa", cfg_kwargs=toy_cfg_kwargs)
    def toy(num_classes, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
        calls.append(dict(num_classes=num_classes, loss=loss, pretrained=pretrained, use_gpu=use_gpu, **kwargs))
        return torch.nn.Linear(2, num_classes)

    monkeypatch.setattr("torchreid_dense.models.build.MODELS", registry)
    cfg.defrost()
    cfg.merge_from_list(["model.name", "toy", "dense.dsap_size", "8"])
    model, engine = build_model_from_config(cfg, num_classes=4)
    assert engine == "dsa" and model.out_features == 4
    assert calls == [dict(num_classes=4, loss="triplet", pretrained="overridden", use_gpu=False, width=8)]


def test_build_model_from_config_unknown_name():
    cfg = get_default_config()
    cfg.merge_from_list(["model.name", "resnet_51"])
    with pytest.raises(KeyError, match="model.name 'resnet_51' is neither"):
        build_model_from_config(cfg, num_classes=3)
