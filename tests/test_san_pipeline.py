"""SAN from one command on a data set that has only its images (engine/san_pipeline.py), and no silent training
on missing sidecars (dense.max_missing).

The data set is a Market-1501-layout copy of SynthReID tiny's images (no sidecar, no pit/); the steps run at
tiny sizes, one epoch each.
"""
import json
import logging
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import torchreid_dense  # noqa: F401  (registers into torchreid)
from torchreid_dense.config import get_default_config
from torchreid_dense.data import DenseImageDataManager, MissingSidecarError
from torchreid_dense.data.pit import PITDataset
from torchreid_dense.data.synth.generate import generate_dataset
from torchreid_dense.data.texture_generation import build_image_transform, texture_to_uint8
from torchreid_dense.dense import sidecar_path
from torchreid_dense.engine import SANEngine
from torchreid_dense.engine.launch import cli, main
from torchreid_dense.engine.san_pipeline import STEP_FILE, StepMismatchError
from torchreid_dense.models.san import build_san
from torchreid_dense.registry import MODELS
from torchreid_dense.utils.io import save_png

SPLITS = ("bounding_box_train", "query", "bounding_box_test")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def market_copy(tmp_path_factory):
    """``<root>/market1501/Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}``: SynthReID tiny's
    images, nothing else."""
    base = tmp_path_factory.mktemp("san-steps")
    synth = generate_dataset(str(base / "gen"), "tiny", seed=0, workers=2, progress=False)
    root = str(base / "data")
    data_dir = osp.join(root, "market1501", "Market-1501-v15.09.15")
    for split in SPLITS:
        shutil.copytree(osp.join(synth, split), osp.join(data_dir, split))
    return root, osp.join(root, "market1501")


def listing(directory):
    return sorted(osp.relpath(osp.join(d, f), directory) for d, _, files in os.walk(directory) for f in files)


def san_options(root, save_dir, *extra):
    return [
        "use_gpu", "False", "model.name", "san_r18", "model.pretrained", "False", "data.root", root,
        "data.sources", "['market1501_texture']", "data.targets", "['market1501']", "data.height", "32",
        "data.width", "16", "data.workers", "0", "data.save_dir", save_dir, "data.transforms", "['random_flip']",
        "sampler.train_sampler", "RandomIdentitySampler", "train.batch_size", "16", "train.max_epoch", "1",
        "train.lr_scheduler", "warmup_single_step", "train.warmup_epochs", "1",  # SAN's warm-up is not SAN-PG's
        "train.print_freq", "4", "test.batch_size", "64", "san.texture_size", "[24, 16]",
        "san.decoder_widths", "[32, 16, 16, 8]", "san.pit_batch_size", "8", "san.pit_ratio", "2",
        "san.pg_max_epoch", "1", "san.pg_batch_size", "8", "synth.preset", "tiny", *extra,
    ]


def read_config(path):
    cfg = get_default_config()
    cfg.merge_from_file(path)
    return cfg


def test_san_steps_from_one_command_then_reused_and_checked(market_copy, tmp_path):
    root, ds_dir = market_copy
    before = listing(ds_dir)
    save_dir = str(tmp_path / "san")
    steps = osp.join(save_dir, "san_steps")
    metrics = main(san_options(root, save_dir))
    assert set(metrics) == {"market1501"} and 0.0 < metrics["market1501"]["mAP"] <= 1.0
    assert listing(ds_dir) == before  # nothing written into the data set

    # step 1: SynthReID tiny's PIT pairs (8 textures x 3 views) at the SAN input size, under data.root
    pit_root = osp.join(root, "synthreid", "pit_tiny_32x16_s0")
    pit = PITDataset.list_images(pit_root)
    assert len(pit) == 24 and Image.open(pit[0]).size == (16, 32)
    # step 2: SAN-PG trained for san.pg_max_epoch with the step-2 model sizes; its L1 in fields of its own
    pg_dir = osp.join(steps, "san_pg")
    ckpt = osp.join(pg_dir, "model", "model.pth.tar-1")
    state = torch.load(ckpt, weights_only=True)
    assert state["rank1"] == 0.0 and 0.0 < state["texture_l1_pixel"] < state["texture_l1"]
    pg_cfg = read_config(osp.join(pg_dir, "config.yaml"))
    assert (pg_cfg.model.name, pg_cfg.train.max_epoch, pg_cfg.train.batch_size) == ("san_pg_r18", 1, 8)
    assert (pg_cfg.san.texture_size, pg_cfg.san.decoder_widths) == ([24, 16], [32, 16, 16, 8])
    assert pg_cfg.san.pit_root == pit_root
    # step 3: a pseudo texture for every image (train, query, gallery), equal to SAN-PG's prediction
    tex_root = osp.join(steps, "textures_market1501")
    images = [osp.join(d, f) for d, _, files in os.walk(ds_dir) for f in files if f.endswith(".jpg")]
    textures = [osp.join(tex_root, osp.relpath(sidecar_path(ds_dir, p, "textures"), ds_dir)) for p in images]
    assert len(images) > 200 and all(osp.isfile(t) for t in textures)
    pg = MODELS.get("san_pg_r18")(0, pretrained=False, texture_size=(24, 16), decoder_widths=(32, 16, 16, 8))
    pg.load_state_dict(state["state_dict"])
    img = build_image_transform(32, 16, MEAN, STD)(Image.open(images[0]).convert("RGB"))
    with torch.no_grad():
        expected = texture_to_uint8(pg.eval()(img[None]), MEAN, STD)[0]
    # the written texture is SAN-PG's prediction: the step predicts batches, this one image alone, and batched and
    # single convolutions round differently on some CPUs (AVX2 vs AVX-512 kernels), so a texel may sit one level off
    written = np.asarray(Image.open(textures[0])).astype(int)
    assert np.abs(written - expected.astype(int)).max() <= 1 and (written != expected).mean() < 0.01
    # step 4: SAN ran from that SAN-PG with those textures and pairs; its config.yaml says so
    cfg = read_config(osp.join(save_dir, "config.yaml"))
    assert (cfg.san.init_weights, cfg.dense.sidecar_root, cfg.san.pit_root) == (ckpt, tex_root, pit_root)
    log = open(osp.join(save_dir, "log.txt")).read()
    for step in ("SAN step 1/3, PIT pairs", "SAN step 2/3, SAN-PG: training", "SAN step 3/3, pseudo textures"):
        assert step in log
    assert f"SAN-PG weights from '{ckpt}'" in log and "loss_pit_rec" in log and "have no 'textures'" not in log

    # a rerun reuses every step (nothing rewritten); SAN itself is not trained here (0 epochs)
    stamps = {p: os.stat(p).st_mtime_ns for p in (ckpt, textures[0], osp.join(tex_root, STEP_FILE))}
    main(san_options(root, save_dir, "train.max_epoch", "0"))
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps
    log = open(osp.join(save_dir, "log.txt")).read()
    assert "SAN-PG: reusing" in log and "pseudo textures: reusing" in log

    # other settings for a finished step: an error naming what differs, nothing reused or overwritten
    with pytest.raises(StepMismatchError, match=r"san\.pg_max_epoch: 1 there, 2 now"):
        main(san_options(root, save_dir, "train.max_epoch", "0", "san.pg_max_epoch", "2"))
    assert os.stat(ckpt).st_mtime_ns == stamps[ckpt]

    # an interrupted SAN-PG (record unfinished, no final checkpoint) resumes from its last epoch-end checkpoint;
    # the same weights again, so the textures they predicted are still reused
    record_path = osp.join(pg_dir, STEP_FILE)
    record = json.load(open(record_path))
    json.dump(dict(record, complete=False), open(record_path, "w"))
    os.remove(ckpt)
    main(san_options(root, save_dir, "train.max_epoch", "0"))
    assert json.load(open(record_path))["complete"] and osp.isfile(ckpt)
    assert torch.equal(torch.load(ckpt, weights_only=True)["state_dict"]["decoder.to_texture.weight"],
                       state["state_dict"]["decoder.to_texture.weight"])
    log = open(osp.join(save_dir, "log.txt")).read()
    last = osp.join(pg_dir, "model", "checkpoint_last.pth")
    assert "SAN-PG: resuming san_pg_r18" in log and f"Resumed from '{last}'" in log
    assert os.stat(textures[0]).st_mtime_ns == stamps[textures[0]]

    # an existing san.init_weights and existing textures skip their steps
    other = str(tmp_path / "given")
    main(san_options(root, other, "train.max_epoch", "0", "san.init_weights", ckpt, "dense.sidecar_root", tex_root))
    assert not osp.exists(osp.join(other, "san_steps"))
    log = open(osp.join(other, "log.txt")).read()
    assert f"san.init_weights {ckpt} (not trained here)" in log and "has its texture under" in log


def test_given_init_weights_that_do_not_exist_and_no_san_pg(market_copy, tmp_path, capsys):
    root, _ = market_copy
    assert cli(san_options(root, str(tmp_path / "a"), "san.init_weights", str(tmp_path / "nope.pth"))) == 2
    err = capsys.readouterr().err
    assert "san.init_weights" in err and "nope.pth" in err and "set san.init_weights ''" in err
    # san.pg_max_epoch 0: no SAN-PG, so no pseudo texture can be predicted: said before training, not L_Rec 0
    assert cli(san_options(root, str(tmp_path / "b"), "san.pg_max_epoch", "0")) == 2
    err = capsys.readouterr().err
    assert "have no texture" in err and "san.init_weights" in err
    assert not osp.exists(tmp_path / "b" / "train_losses.jsonl")


def test_sa_enc_control_runs_no_san_step(market_layout, tmp_path):
    from torchreid_dense.engine.launch import load_config
    from torchreid_dense.engine.san_pipeline import prepare_san
    from torchreid_dense.utils.distributed import DistInfo

    # the alignment suite's control: no L_Rec, no L_TR, no PIT batches, no SAN-PG -> nothing to prepare
    root = market_layout[0]
    cfg = load_config("", san_options(root, str(tmp_path / "enc"), "san.weight_rec", "0.0",
                                      "san.use_tr", "False", "san.use_pit", "False", "san.pg_max_epoch", "0"))
    assert prepare_san(cfg, DistInfo()) is cfg
    assert not osp.exists(tmp_path / "enc")


# ----------------------------------------------------------------------------- dense.max_missing


def dm(root, sources, **dense):
    return DenseImageDataManager(root=root, sources=sources, targets="market1501", height=32, width=16,
                                 batch_size_train=4, batch_size_test=4, workers=0, use_gpu=False, dense=dense)


def train_images(paths):
    return sorted(p for p in paths if "bounding_box_train" in p)


def test_max_missing_stops_with_count_folder_and_command(market_layout):
    root, data_dir, paths = market_layout
    ds_dir = osp.dirname(data_dir)
    train = train_images(paths)  # 16 images
    with pytest.raises(MissingSidecarError) as err:
        dm(root, "market1501_dsap")
    msg = str(err.value)
    assert "16 of 16 images" in msg and osp.join(ds_dir, "densepose") in msg
    assert f"tools/import_densepose.py --dump DUMP.pkl --dataset-dir {ds_dir}" in msg and "extract_densepose" in msg
    with pytest.raises(MissingSidecarError) as err:
        dm(root, "market1501_texture")
    msg = str(err.value)
    assert "16 of 16 images" in msg and osp.join(ds_dir, "textures") in msg
    assert "tools/main.py --config-file configs/san_" in msg and "--dataset market1501 " in msg

    # at the threshold (8 of 16 = 0.5) the fallback stays, reported once; above it (9 of 16) training stops
    texture = np.zeros((24, 16, 3), dtype=np.uint8)
    for p in train[:8]:
        save_png(sidecar_path(ds_dir, p, "textures"), texture)
    assert dm(root, "market1501_texture").train_loader.dataset.num_missing_sidecars == 8
    os.remove(sidecar_path(ds_dir, train[0], "textures"))
    with pytest.raises(MissingSidecarError, match="9 of 16 images"):
        dm(root, "market1501_texture")
    assert dm(root, "market1501_texture", max_missing=1.0).train_loader.dataset.num_missing_sidecars == 9


def test_sidecars_read_apart_are_not_reported_missing_beside_the_data_set(market_layout, tmp_path, caplog):
    root, data_dir, paths = market_layout
    ds_dir = osp.dirname(data_dir)
    apart = str(tmp_path / "pseudo")
    for p in paths:  # every texture under dense.sidecar_root, none beside the data set
        save_png(osp.join(apart, osp.relpath(sidecar_path(ds_dir, p, "textures"), ds_dir)),
                 np.zeros((24, 16, 3), dtype=np.uint8))
    with caplog.at_level(logging.WARNING):
        manager = dm(root, "market1501_texture", sidecar_root=apart)
    assert manager.train_loader.dataset.num_missing_sidecars == 0
    assert not [r for r in caplog.records if "sidecar" in r.getMessage()]  # no report of the data set's own folder


def test_dsa_on_images_only_stops_before_training(market_layout, tmp_path, capsys):
    root, data_dir, _ = market_layout
    save_dir = tmp_path / "dsa"
    argv = ["use_gpu", "False", "model.name", "dsa_reid_r18", "model.pretrained", "False", "data.root", root,
            "data.sources", "['market1501_dsap']", "data.targets", "['market1501']", "data.height", "32",
            "data.width", "16", "data.workers", "0", "data.save_dir", str(save_dir)]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "16 of 16 images" in err and "import_densepose" in err
    assert not (save_dir / "train_losses.jsonl").exists()


def test_images_without_texture_are_counted_in_the_training_log():
    torch.manual_seed(0)
    model = build_san(3, "resnet18", pretrained=False, texture_size=(24, 16), decoder_widths=(32, 16, 16, 8))
    valid = torch.ones(6, 1, 24, 16, dtype=torch.bool)
    valid[[1, 4]] = False  # two images got the fallback (no texture sidecar)
    batch = {"img": torch.randn(6, 3, 32, 16), "pid": torch.arange(3).repeat_interleave(2),
             "camid": torch.zeros(6, dtype=torch.long), "texture": torch.randn(6, 3, 24, 16),
             "texture_valid": valid}
    dm_stub = type("DM", (), {"train_loader": [batch], "test_loader": {}, "num_train_pids": 3, "sources": []})()
    engine = SANEngine(dm_stub, model, torch.optim.SGD(model.parameters(), lr=0.0), use_gpu=False)
    assert engine.forward_backward(batch)["no_texture"] == 2.0


def test_pit_error_names_the_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"point san\.pit_root at it"):
        PITDataset.list_images(str(tmp_path))


# ----------------------------------------------------------------------------- SAN-PG settings and results

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.mark.parametrize("san, pg", [("san_market.yaml", "san_pg.yaml"), ("san_synth.yaml", "san_pg_synth.yaml")])
def test_san_pg_step_follows_san_pg_yaml_and_the_san_model_sizes(san, pg):
    from torchreid_dense.engine.san_pipeline import san_pg_config

    cfg = read_config(osp.join(REPO, "configs", san))
    cfg.freeze()
    made = san_pg_config(cfg, "/pit", "/out", "market1501")
    ref = read_config(osp.join(REPO, "configs", pg))
    keys = ("model.name", "train.optim", "train.lr", "train.max_epoch", "train.batch_size", "train.lr_scheduler",
            "train.stepsize", "train.gamma", "train.weight_decay", "train.warmup_epochs", "data.height", "data.width",
            "san.texture_size", "san.decoder_widths", "model.pretrained")
    value = lambda c, k: c[k.split(".")[0]][k.split(".")[1]]  # noqa: E731
    assert {k: value(made, k) for k in keys} == {k: value(ref, k) for k in keys}
    assert (made.san.pit_root, made.data.save_dir, made.data.sources) == ("/pit", "/out", ["market1501"])
    assert not (made.san.init_weights or made.model.load_weights or made.test.evaluate)


def test_benchmark_summary_shows_san_pg_texture_l1_not_rank1():
    from torchreid_dense.benchmark.runner import _summary

    result = {"target": "synthreid", "train_time_s": 60.0,
              "metrics": {"pit_val": {"texture_l1": 0.59, "texture_l1_pixel": 0.1335}}}
    assert _summary(result) == "held-out texture L1 0.1335 (pixels); 1.0 min"
