"""tools/main.py end to end on a tiny Market-1501-layout data set with torchreid's resnet18."""
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


def test_train_evaluate_and_reload_reproduce_metrics(market_root, tmp_path):
    save_dir = str(tmp_path / "train")
    stdout = sys.stdout
    metrics = main(options(market_root, save_dir))
    assert sys.stdout is stdout  # restored after the run
    assert set(metrics) == {"market1501"}
    rank1, mAP = metrics["market1501"]["rank1"], metrics["market1501"]["mAP"]
    assert 0.0 < mAP < 1.0 and 0.0 <= rank1 <= 1.0  # a non-trivial result to reproduce

    checkpoint = osp.join(save_dir, "model", "model.pth.tar-1")
    assert osp.isfile(checkpoint)
    state = torch.load(checkpoint, weights_only=True)  # plain types only
    assert state["epoch"] == 1 and isinstance(state["rank1"], float)

    written = get_default_config()
    written.merge_from_file(osp.join(save_dir, "config.yaml"))
    assert (written.model.name, written.train.max_epoch, written.data.root) == ("resnet18", 1, market_root)
    log = open(osp.join(save_dir, "log.txt")).read()
    assert "epoch: [1/1][2/2]" in log  # torchreid's own progress line
    assert "** Results **" in log and "market1501: rank1" in log

    test_dir = str(tmp_path / "test")
    again = main(options(market_root, test_dir, "test.evaluate", "True", "model.load_weights", checkpoint))
    assert again == metrics
    assert not osp.exists(osp.join(test_dir, "model"))  # test only: nothing trained or saved

    resume_dir = str(tmp_path / "resume")
    resumed = main(options(market_root, resume_dir, "model.resume", checkpoint, "train.max_epoch", "2"))
    log = open(osp.join(resume_dir, "log.txt")).read()
    assert "epoch: [2/2][1/2]" in log and "epoch: [1/2]" not in log  # continues at epoch 2
    assert torch.load(osp.join(resume_dir, "model", "model.pth.tar-2"), weights_only=True)["epoch"] == 2
    assert set(resumed) == {"market1501"}


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
