"""tools/main.py end to end: baseline, DSA-reID and SAN on SynthReID tiny; errors on a Market-1501 layout."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from torchreid_dense.config import get_default_config
from torchreid_dense.data.availability import DatasetNotFoundError
from torchreid_dense.engine.launch import cli, main

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def write_person(path, pid, rng):
    """A 32x16 image whose colours depend weakly on the identity, under strong noise."""
    colour = 128 + 24 * np.array([(pid % 3) - 1, (pid % 5) - 2, (pid % 2)], dtype=np.float32)
    image = colour + rng.normal(0, 60, size=(32, 16, 3))
    image[16:] = 255 - image[16:]
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def market_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("reid-data"))
    base = osp.join(root, "market1501", "Market-1501-v15.09.15")
    rng = np.random.default_rng(0)
    layout = {
        "bounding_box_train": [(pid, cam, k) for pid in (1, 2, 3, 4) for cam in (1, 2) for k in (1, 2)],
        "query": [(pid, 1, 1) for pid in (10, 11, 12, 13)],
        "bounding_box_test": [(pid, cam, 1) for pid in range(10, 18) for cam in (2, 3)],
    }
    for split, items in layout.items():
        os.makedirs(osp.join(base, split))
        for pid, cam, k in items:
            write_person(osp.join(base, split, f"{pid:04d}_c{cam}s1_{k:06d}_00.jpg"), pid, rng)
    return root


def options(root, save_dir, *extra):
    return [
        "use_gpu", "False",
        "model.name", "resnet18", "model.pretrained", "False",
        "loss.name", "softmax",
        "data.root", root, "data.sources", "market1501", "data.targets", "market1501",
        "data.height", "32", "data.width", "16", "data.workers", "0", "data.save_dir", save_dir,
        "train.batch_size", "8", "train.max_epoch", "1", "train.print_freq", "1",
        "test.batch_size", "16", "test.ranks", "[1, 5]",
        *extra,
    ]


def test_missing_dataset_says_where_and_how(tmp_path):
    root = str(tmp_path / "empty-root")
    with pytest.raises(DatasetNotFoundError) as err:
        main(options(root, str(tmp_path / "log")))
    message = str(err.value)
    expected = osp.join(root, "market1501")
    assert f"data set 'market1501' not found: expected the directory '{expected}'" in message
    assert "Market-1501-v15.09.15" in message and "data.root" in message
    assert not osp.exists(expected)  # no download attempt into an empty directory


def test_missing_subdirectory_is_explained(tmp_path):
    root = str(tmp_path / "partial-root")
    os.makedirs(osp.join(root, "market1501", "Market-1501-v15.09.15", "query"))
    with pytest.raises(DatasetNotFoundError, match=r"bounding_box_train' is missing"):
        main(options(root, str(tmp_path / "log")))


def test_cli_reports_config_errors_in_one_line(tmp_path, capsys):
    assert cli(["train.lrr", "0.1"]) == 2
    assert capsys.readouterr().err.strip() == "error: command line: unknown config key 'train.lrr' (did you mean 'train.lr'?)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_epoch: ten\n")
    assert cli(["--config-file", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {bad}: config key 'train.max_epoch' expects int, got str 'ten'"
    )


def test_tools_main_script_runs(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("data:\n  sorces: ['market1501']\n")
    proc = subprocess.run([sys.executable, osp.join(REPO, "tools", "main.py"), "--config-file", str(bad)],
                          capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 2
    assert f"error: {bad}: unknown config key 'data.sorces' (did you mean 'data.sources'?)" in proc.stderr


# ------------------------------------------------------------------ baseline, DSA-reID and SAN on SynthReID tiny

METRIC_KEYS = {"rank1", "rank5", "rank10", "rank20", "mAP", "mINP"}

SYNTH_JOBS = {
    "baseline": ["model.name", "resnet18", "loss.name", "triplet", "loss.triplet.weight_x", "1.0",
                 "data.sources", "synthreid_tiny", "data.targets", "synthreid_tiny"],
    "dsa": ["model.name", "dsa_reid_r18", "data.sources", "synthreid_tiny_dsap", "data.targets", "synthreid_tiny",
            "dense.dsap_size", "16"],
    "san": ["model.name", "san_r18", "data.sources", "synthreid_tiny_texture", "data.targets", "synthreid_tiny",
            "san.texture_size", "[48, 32]", "san.decoder_widths", "[32, 16, 16, 8]", "san.use_pit", "True",
            "san.pit_ratio", "2", "san.pit_batch_size", "8", "san.pg_max_epoch", "0"],  # SAN alone (steps: test_san_pipeline)
}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("synth-data"))


def synth_options(root, save_dir, job, *extra):
    return [
        "use_gpu", "False", "model.pretrained", "False", "synth.preset", "tiny",
        "data.root", root, "data.height", "32", "data.width", "16", "data.workers", "0", "data.save_dir", save_dir,
        "data.transforms", "['random_flip']",
        "sampler.train_sampler", "RandomIdentitySampler", "sampler.num_instances", "4",
        "train.batch_size", "32", "train.max_epoch", "1", "train.print_freq", "1", "train.lr", "0.0003",
        "test.batch_size", "64",
        *SYNTH_JOBS[job], *extra,
    ]


@pytest.mark.parametrize("job", sorted(SYNTH_JOBS))
def test_synth_train_evaluate_checkpoint_and_reload(synth_root, tmp_path, job):
    """tools/main.py end to end: one epoch, evaluation, checkpoint; test-only from it gives the same metrics."""
    save_dir = str(tmp_path / "train")
    stdout = sys.stdout
    metrics = main(synth_options(synth_root, save_dir, job))
    assert sys.stdout is stdout  # restored after the run
    assert set(metrics) == {"synthreid_tiny"}
    values = metrics["synthreid_tiny"]
    assert set(values) == METRIC_KEYS
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values.values())
    assert values["rank1"] <= values["rank5"] <= values["rank10"] <= values["rank20"]
    assert 0.0 < values["mINP"] <= values["mAP"]

    checkpoint = osp.join(save_dir, "model", "model.pth.tar-1")
    state = torch.load(checkpoint, weights_only=True)
    assert (state["epoch"], state["batch"]) == (1, 0) and state["rank1"] == pytest.approx(values["rank1"])
    assert state["global_step"] >= 2 and set(state["rng"]) >= {"python", "numpy", "torch"}
    assert f"name: {SYNTH_JOBS[job][1]}" in state["config"]
    written = get_default_config()
    written.merge_from_file(osp.join(save_dir, "config.yaml"))
    assert (written.model.name, written.train.max_epoch, written.data.root) == (SYNTH_JOBS[job][1], 1, synth_root)
    log = open(osp.join(save_dir, "log.txt")).read()
    assert "** Results **" in log and "mINP:" in log and "epoch: [1/1][1/" in log  # torchreid's progress line
    assert "synthreid_tiny: rank1" in log
    steps = [line for line in open(osp.join(save_dir, "train_losses.jsonl")) if line.strip()]
    assert len(steps) == state["global_step"]
    if job == "san":  # PIT batches interleaved: one after every 2 re-ID batches
        assert "loss_pit_rec" in log and state["engine"]["reid_steps"] == state["global_step"]

    again = main(synth_options(synth_root, str(tmp_path / "test"), job,
                               "test.evaluate", "True", "model.load_weights", checkpoint))
    assert again == metrics
