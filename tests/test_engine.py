"""The shared engine machinery: evaluation, NaN stop, mixed precision, checkpoints, resumable batches, step log."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn

from torchreid_dense import compat
from torchreid_dense.engine.base import CHECKPOINT_LAST, LOSS_LOG, NonFiniteLossError
from torchreid_dense.engine.hooks import HookBase
from torchreid_dense.engine.step_log import StepLog, as_floats
from torchreid_dense.engine.checkpoint import CheckpointMismatchError, load_weights, read_checkpoint
from torchreid_dense.engine.loader import ResumableBatchSampler
from torchreid_dense.engine.stock import StockSoftmaxEngine, StockTripletEngine


class Toy(nn.Module):
    """conv -> pool -> 8-d feature -> classifier; returns (logits, feature) in training, the feature in eval.

    ``nan_at``: the forward pass with this 1-based call number multiplies the feature by NaN.
    """

    def __init__(self, num_classes=3, nan_at=None):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.classifier = nn.Linear(8, num_classes)
        self.nan_at, self.calls = nan_at, 0
        self.seen_dtypes = []

    def forward(self, x):
        y = self.conv(x)
        self.seen_dtypes.append(y.dtype)
        f = y.mean((2, 3))
        if not self.training:
            return f
        self.calls += 1
        if self.calls == self.nan_at:
            f = f * float("nan")
        return self.classifier(f), f


def batch(seed, pids=(0, 0, 1, 1, 2, 2), camid=0):
    g = torch.Generator().manual_seed(seed)
    pids = torch.tensor(pids)
    return {"img": torch.randn(len(pids), 3, 8, 4, generator=g), "pid": pids,
            "camid": torch.full((len(pids),), camid), "impath": [""] * len(pids)}


class StubDataManager:
    def __init__(self, steps=4):
        self.train_loader = [batch(i) for i in range(steps)]
        self.test_loader = {"toy": {"query": [batch(10, pids=(0, 1, 2))],
                                    "gallery": [batch(11, camid=1), batch(12, pids=(3, 4), camid=1)]}}
        self.num_train_pids = 3
        self.sources = ["toy"]


def triplet_engine(model, **kwargs):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return StockTripletEngine(StubDataManager(), model, opt, weight_x=1.0, use_gpu=False, **kwargs)


def test_evaluation_reports_ranks_map_minp_like_torchreid():
    torch.manual_seed(0)
    engine = triplet_engine(Toy())
    rank1 = engine.test(ranks=[1, 2])
    result = engine.last_metrics["toy"]
    assert set(result) == {"rank1", "rank2", "rank5", "rank10", "rank20", "mAP", "mINP"}
    assert rank1 == result["rank1"]
    # independent reference: torchreid's Python evaluator on the same features
    model = engine.model.eval()
    dm = engine.datamanager
    with torch.no_grad():
        qf = model(dm.test_loader["toy"]["query"][0]["img"])
        gf = torch.cat([model(b["img"]) for b in dm.test_loader["toy"]["gallery"]])
    dist = compat.metrics.compute_distance_matrix(qf, gf, "euclidean").numpy()
    q, g = dm.test_loader["toy"]["query"][0], dm.test_loader["toy"]["gallery"]
    g_pids = np.concatenate([b["pid"].numpy() for b in g])
    g_cams = np.concatenate([b["camid"].numpy() for b in g])
    cmc, mAP = compat.metrics.evaluate_rank(dist, q["pid"].numpy(), g_pids, q["camid"].numpy(), g_cams,
                                            use_cython=False)
    assert result["rank1"] == pytest.approx(float(cmc[0]), abs=1e-6)
    assert result["rank2"] == pytest.approx(float(cmc[1]), abs=1e-6)
    assert result["rank20"] == pytest.approx(float(cmc[-1]), abs=1e-6)  # gallery shorter than 20: the curve's end
    assert result["mAP"] == pytest.approx(float(mAP), abs=1e-6)
    # mINP by hand: per query, (number of positives) / (rank of the hardest positive)
    order = np.argsort(dist, axis=1, kind="stable")
    positives = [np.flatnonzero(g_pids[order[i]] == p) for i, p in enumerate(q["pid"].numpy())]
    inp = [len(pos) / (pos.max() + 1) for pos in positives]  # gallery on another camera: nothing removed
    assert result["mINP"] == pytest.approx(float(np.mean(inp)), abs=1e-6)


def test_non_finite_loss_stops_with_step_components_and_last_checkpoint(tmp_path):
    torch.manual_seed(0)
    engine = triplet_engine(Toy(nan_at=3), checkpoint_every=1)
    with pytest.raises(NonFiniteLossError) as err:
        engine.run(save_dir=str(tmp_path), max_epoch=1, print_freq=100)
    last = osp.join(str(tmp_path), "model", CHECKPOINT_LAST)
    message = str(err.value)
    assert "epoch 1, step 3 of the epoch (global step 3)" in message
    assert "loss_t=nan" in message and "loss_x=nan" in message
    assert f"Last good checkpoint (kept intact): {last}" in message
    state = read_checkpoint(last)
    assert (state["epoch"], state["batch"], state["global_step"]) == (0, 2, 2)
    # the failed step was not applied: the weights are those of the checkpoint
    for key, value in engine.model.state_dict().items():
        assert torch.equal(value, state["state_dict"][key]), key


def test_non_finite_loss_before_any_checkpoint_says_so():
    engine = triplet_engine(Toy(nan_at=1))
    with pytest.raises(NonFiniteLossError, match="none written yet"):
        engine.forward_backward(engine.train_loader[0])


def test_bf16_step_on_cpu_runs_in_bf16_with_fp32_losses():
    torch.manual_seed(0)
    model = Toy()
    engine = triplet_engine(model, amp="bf16")
    summary = engine.forward_backward(engine.train_loader[0])
    assert model.seen_dtypes[-1] == torch.bfloat16  # the conv ran under autocast
    assert all(np.isfinite(v) for v in summary.values()) and summary["loss_t"] > 0
    loss, components, _ = engine.forward_loss(engine.train_loader[1])
    assert loss.dtype == torch.float32 and all(v.dtype == torch.float32 for v in components.values())
    assert model.conv.weight.dtype == torch.float32  # master weights stay fp32


def test_fp16_on_cpu_and_unknown_amp_are_refused():
    with pytest.raises(ValueError, match="use train.amp 'bf16' on the CPU"):
        triplet_engine(Toy(), amp="fp16")
    with pytest.raises(ValueError, match="train.amp must be one of"):
        triplet_engine(Toy(), amp="fp8")


def test_channels_last_model_and_inputs():
    model = Toy()
    engine = triplet_engine(model, channels_last=True)
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    (img,) = engine.to_device(torch.randn(2, 3, 8, 4))
    assert img.is_contiguous(memory_format=torch.channels_last)
    assert np.isfinite(engine.forward_backward(engine.train_loader[0])["loss"])


def test_load_weights_says_what_differs(tmp_path):
    engine = triplet_engine(Toy(num_classes=3))
    engine.save_model(0, 0.5, str(tmp_path))
    path = osp.join(str(tmp_path), "model", "model.pth.tar-1")
    assert torch.load(path, weights_only=True)["rank1"] == 0.5
    same = Toy(num_classes=3)
    load_weights(same, path)
    assert torch.equal(same.conv.weight, engine.model.conv.weight)

    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(Toy(num_classes=5), path)
    message = str(err.value)
    assert "classifier.weight: checkpoint (3, 8) vs model (5, 8)" in message
    assert "trained on 3 identities, the model is built for 5" in message

    other = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(other, path)
    message = str(err.value)
    assert "key(s) of the model missing from the checkpoint: ['0.weight', '0.bias']" in message
    assert "unexpected key(s) in the checkpoint" in message and "'conv.weight'" in message

    resumed = triplet_engine(Toy(num_classes=4))
    with pytest.raises(CheckpointMismatchError, match="classifier"):
        resumed.resume(path)


def test_softmax_engine_step_and_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)

    class Logits(Toy):
        def forward(self, x):
            out = super().forward(x)
            return out[0] if self.training else out

    model = Logits()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    engine = StockSoftmaxEngine(StubDataManager(), model, opt, scheduler=sched, use_gpu=False)
    engine.run(save_dir=str(tmp_path), max_epoch=1, print_freq=100)
    state = torch.load(osp.join(str(tmp_path), "model", "model.pth.tar-1"), weights_only=True)
    assert state["global_step"] == 4 and state["scheduler"]["last_epoch"] == 1
    fresh = Logits()
    opt2 = torch.optim.Adam(fresh.parameters(), lr=0.01)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 1, gamma=0.5)
    engine2 = StockSoftmaxEngine(StubDataManager(), fresh, opt2, scheduler=sched2, use_gpu=False)
    assert engine2.resume(osp.join(str(tmp_path), "model", "model.pth.tar-1")) == 1
    assert engine2.global_step == 4 and sched2.last_epoch == 1
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.005)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_resumable_batch_sampler_skips_without_changing_the_epoch():
    sampler = torch.utils.data.DistributedSampler(range(20), num_replicas=1, rank=0, shuffle=True, seed=3)
    batches = ResumableBatchSampler(sampler, 6, drop_last=True)
    batches.set_epoch(2)
    full = list(batches)
    assert len(full) == batches.num_batches == len(batches) == 3
    batches.set_start_batch(2)
    assert list(batches) == full[2:] and len(batches) == 1
    assert batches.state_dict() == {"epoch": 2, "batch": 2}
    batches.set_epoch(3)  # a new epoch starts at its beginning, in another order
    other = list(batches)
    assert len(other) == 3 and other != full
    restored = ResumableBatchSampler(sampler, 6)
    restored.load_state_dict({"epoch": 2, "batch": 1})
    assert list(restored) == full[1:]


def test_step_log_one_handle_per_run_flushed_after_every_step(tmp_path):
    torch.manual_seed(0)
    engine = triplet_engine(Toy())
    step_log = next(h for h in engine.hooks if isinstance(h, StepLog))
    path = osp.join(str(tmp_path), LOSS_LOG)
    seen = []

    class Probe(HookBase):  # runs after the step log: reads the file through another handle
        def after_step(self, step):
            with open(path, encoding="utf-8") as f:
                records = [json.loads(line) for line in f]
            seen.append((step_log._file, records[-1], len(records), step.summary))

    engine.register_hooks(list(engine.hooks) + [Probe()])
    engine.run(save_dir=str(tmp_path), max_epoch=1, print_freq=100)
    assert [n for *_, n, _ in seen] == [1, 2, 3, 4]  # every record is on disk when its step ends
    assert len({id(f) for f, *_ in seen}) == 1 and seen[0][0].closed  # one handle, closed at the run's end
    assert step_log._file is None
    for step, (_, record, _, summary) in enumerate(seen, 1):
        assert record == {"step": step, "epoch": 0, "batch": step - 1, **summary}
        assert list(record)[3:] == ["loss", "loss_t", "loss_x", "acc"]
        assert record["loss"] == pytest.approx(record["loss_t"] + record["loss_x"], rel=1e-6)


def test_step_summary_is_read_back_exactly_and_in_order():
    third = torch.tensor(1 / 3)  # float32: its Python float is not 1/3
    summary = {"loss": third, "acc": torch.tensor([50.0]), "count": torch.tensor(2), "lr": 0.25,
               "half": torch.tensor(0.1, dtype=torch.bfloat16), "wide": torch.tensor(0.1, dtype=torch.float64)}
    out = as_floats(summary)
    assert list(out) == list(summary)
    assert out == {"loss": float(third), "acc": 50.0, "count": 2.0, "lr": 0.25,
                   "half": float(torch.tensor(0.1, dtype=torch.bfloat16)), "wide": 0.1}
    assert all(type(v) is float for v in out.values())
    assert as_floats({"lr": 1}) == {"lr": 1.0}
