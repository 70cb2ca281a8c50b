"""Exact resume: a run killed with SIGKILL mid-epoch and resumed matches an uninterrupted run step by step."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from torchreid_dense.engine.base import CHECKPOINT_LAST, LOSS_LOG
from torchreid_dense.engine.checkpoint import read_checkpoint

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# The job runs in a child process: deterministic kernels, one setting of threads for all runs.
CHILD = (
    "import sys, torch; torch.use_deterministic_algorithms(True); torch.set_num_threads(2); "
    "from torchreid_dense.engine.launch import main; main(sys.argv[1:])"
)


def options(root, save_dir, *extra):
    """resnet18 triplet+softmax on SynthReID tiny at 32x16, P8 x K4, random flips (RNG-dependent), 2 epochs."""
    return [
        "use_gpu", "False", "model.name", "resnet18", "model.pretrained", "False",
        "loss.name", "triplet", "loss.triplet.weight_x", "1.0",
        "data.root", root, "data.sources", "synthreid_tiny", "data.targets", "synthreid_tiny", "synth.preset", "tiny",
        "data.height", "32", "data.width", "16", "data.workers", "0", "data.save_dir", save_dir,
        "data.transforms", "['random_flip']",
        "sampler.train_sampler", "RandomIdentitySampler", "sampler.num_instances", "4",
        "train.batch_size", "32", "train.max_epoch", "2", "train.print_freq", "100", "train.lr", "0.001",
        "train.checkpoint_every", "2", "test.batch_size", "128",
        *extra,
    ]


def child(args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def step_losses(save_dir):
    with open(osp.join(save_dir, LOSS_LOG)) as f:
        return {r["step"]: r for r in map(json.loads, f) if r}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("synth-resume"))


@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigkill_mid_epoch_then_resume_matches_the_straight_run(synth_root, tmp_path, workers):
    """With loader workers the augmentations draw from per-worker RNGs seeded by the loader's generator: the
    checkpoint keeps that generator's state at the epoch start and the resumed run replays the epoch's first
    batches through the workers (without it, the flips after a resume differ from the straight run's)."""
    straight_dir = str(tmp_path / "straight")
    proc = child(options(synth_root, straight_dir, "data.workers", workers))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    straight = step_losses(straight_dir)
    total = max(straight)
    assert total >= 5 and sorted(straight) == list(range(1, total + 1))

    killed_dir = str(tmp_path / "killed")
    last = osp.join(killed_dir, "model", CHECKPOINT_LAST)
    proc = child(options(synth_root, killed_dir, "data.workers", workers))
    deadline = time.time() + 600
    try:
        while True:  # kill as soon as a mid-epoch checkpoint of the second epoch exists
            assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read()
            assert time.time() < deadline
            if osp.exists(last):
                state = read_checkpoint(last)
                if state["epoch"] == 1 and state["batch"] > 0:
                    break
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    state = read_checkpoint(last)  # whatever the kill interrupted, the last checkpoint is whole
    resumed_at = state["global_step"]
    assert 0 < state["batch"] and resumed_at < total
    assert isinstance(state["config"], str) and "checkpoint_every: 2" in state["config"]

    proc = child(options(synth_root, killed_dir, "data.workers", workers, "model.resume", last))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    resumed = step_losses(killed_dir)
    assert sorted(resumed) == list(range(1, total + 1))  # steps after the checkpoint redone once, none lost
    for step in range(resumed_at + 1, total + 1):
        for key in ("loss", "loss_t", "loss_x"):
            assert resumed[step][key] == pytest.approx(straight[step][key], rel=1e-5, abs=1e-6), (step, key)
        assert (resumed[step]["epoch"], resumed[step]["batch"]) == (straight[step]["epoch"], straight[step]["batch"])

    final_a = torch.load(osp.join(straight_dir, "model", "model.pth.tar-2"), weights_only=True)
    final_b = torch.load(osp.join(killed_dir, "model", "model.pth.tar-2"), weights_only=True)
    for key, value in final_a["state_dict"].items():
        torch.testing.assert_close(final_b["state_dict"][key], value, rtol=1e-5, atol=1e-6)
    assert final_b["rank1"] == pytest.approx(final_a["rank1"])


def test_an_evaluated_epoch_ends_with_its_checkpoint_after_the_evaluation(synth_root, tmp_path):
    """The evaluation's loaders draw their seeds from the global torch RNG, so an evaluated epoch's
    ``checkpoint_last.pth`` is written after it: the same state as torchreid's epoch checkpoint (written before
    it, a run resumed there would start the next epoch from other RNG states than the straight run); a run
    resumed from the evaluated epoch 1 trains epoch 2 as the straight run does."""
    straight_dir = str(tmp_path / "straight")
    evaluated = ("test.eval_freq", "1", "train.checkpoint_every", "1000")
    proc = child(options(synth_root, straight_dir, *evaluated))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    last = read_checkpoint(osp.join(straight_dir, "model", CHECKPOINT_LAST))
    epoch_2 = read_checkpoint(osp.join(straight_dir, "model", "model.pth.tar-2"))
    assert (last["epoch"], last["batch"], last["global_step"]) == (epoch_2["epoch"], 0, epoch_2["global_step"])
    assert last["rank1"] == epoch_2["rank1"]
    assert torch.equal(last["rng"]["torch"], epoch_2["rng"]["torch"])
    assert torch.equal(last["loader_rng"], epoch_2["loader_rng"])
    assert last["rng"]["python"] == epoch_2["rng"]["python"]
    assert torch.equal(last["rng"]["numpy"][1], epoch_2["rng"]["numpy"][1])

    resumed_dir = str(tmp_path / "resumed")
    proc = child(options(synth_root, resumed_dir, *evaluated, "model.resume",
                         osp.join(straight_dir, "model", "model.pth.tar-1")))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    straight, resumed = step_losses(straight_dir), step_losses(resumed_dir)
    second = [step for step, r in straight.items() if r["epoch"] == 1]  # 0-based
    assert second and sorted(resumed) == second
    for step in second:
        assert resumed[step]["loss"] == pytest.approx(straight[step]["loss"], rel=1e-5, abs=1e-6), step
    final = read_checkpoint(osp.join(resumed_dir, "model", "model.pth.tar-2"))
    assert final["rank1"] == pytest.approx(epoch_2["rank1"])


def test_a_resume_drops_a_step_record_cut_short_by_a_failed_write(tmp_path, capsys):
    # a full disk cut the record of step 4 short; the checkpoint is at step 2: steps 1-2 stay, the rest is redone
    from torchreid_dense.engine.step_log import truncate_step_log
    records = [json.dumps({"step": s, "epoch": 0, "batch": s - 1, "loss": 1.0 / s}) + "\n" for s in (1, 2, 3)]
    torn = json.dumps({"step": 4, "epoch": 0, "batch": 3, "loss": 0.25})[:30]
    (tmp_path / LOSS_LOG).write_text("".join(records) + torn, encoding="utf-8")
    truncate_step_log(str(tmp_path), 2)
    assert (tmp_path / LOSS_LOG).read_text(encoding="utf-8") == "".join(records[:2])
    assert "dropped 1 damaged line(s)" in capsys.readouterr().out
    # an intact log loses only the steps after the checkpoint, and says nothing
    (tmp_path / LOSS_LOG).write_text("".join(records), encoding="utf-8")
    truncate_step_log(str(tmp_path), 1)
    assert (tmp_path / LOSS_LOG).read_text(encoding="utf-8") == records[0]
    assert "damaged" not in capsys.readouterr().out
