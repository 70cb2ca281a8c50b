"""DDP helpers and the distributed identity sampler.

The multi-process checks run this file as a script in 2 gloo processes (CPU, torchrun's environment
variables set by hand) once per test session; each test then checks a part of what the ranks wrote.
"""
import os
import random
import socket
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn as nn

from torchreid_dense.data.samplers import DistributedIdentitySampler
from torchreid_dense.losses.hard_mine_triplet import BatchHardTripletLoss
from torchreid_dense.utils import distributed as du

WORLD = 2
MARGIN = 5.0  # large enough that every anchor of the crafted batch is active


def _dataset(counts=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3, 12), seed=0):
    """torchreid-style train list with identity i holding counts[i] images, shuffled so indices are mixed."""
    pids = np.repeat(np.arange(len(counts)) * 10 + 7, counts)  # labels need not be 0..N-1
    np.random.default_rng(seed).shuffle(pids)
    return [(f"img_{i}.jpg", int(pid), i % 3, 0) for i, pid in enumerate(pids)]


def _pids(data):
    return np.array([item[1] for item in data])


def _grad_inputs():
    """A tiny linear model's state, a global batch of 8 (P=4 identities x K=2) and its identity labels."""
    gen = torch.Generator().manual_seed(1)
    model = nn.Linear(6, 4)
    with torch.no_grad():
        model.weight.copy_(torch.randn(4, 6, generator=gen))
        model.bias.copy_(torch.randn(4, generator=gen))
    x = torch.randn(8, 6, generator=gen)
    pids = torch.tensor([3, 3, 1, 1, 0, 0, 2, 2])
    return model.state_dict(), x, pids


def _worker(outdir):
    """One rank of the 2-process job: every distributed check, results saved to ``outdir/rank<r>.pt``."""
    torch.set_num_threads(1)
    info = du.init_distributed(use_gpu=False)
    rank, world = info.rank, info.world_size
    out = {"info": (info.rank, info.world_size, info.local_rank, str(info.device), info.backend, info.enabled),
           "helpers": (du.get_rank(), du.get_world_size(), du.is_main_process(), du.is_distributed())}

    # gradient equivalence: loss over the gathered features, DDP-averaged gradients
    state, x, pids = _grad_inputs()
    model = nn.Linear(6, 4)
    model.load_state_dict(state)
    ddp = nn.parallel.DistributedDataParallel(model)
    local = x.chunk(world)[rank]
    criterion = BatchHardTripletLoss(margin=MARGIN)
    gathered = du.all_gather_with_grad(ddp(local))
    loss = criterion(gathered, pids)
    loss.backward()
    out["gathered"] = gathered.detach()
    out["loss"] = loss.detach()
    out["grads"] = [p.grad.clone() for p in model.parameters()]
    # the naive gather (gradient to the local slice, no sum over ranks) loses a factor world
    model.zero_grad()
    feats = ddp(local)
    chunks = [torch.empty_like(feats) for _ in range(world)]
    dist.all_gather(chunks, feats.detach())
    chunks[rank] = feats
    criterion(torch.cat(chunks), pids).backward()
    out["naive_grads"] = [p.grad.clone() for p in model.parameters()]

    # evaluation gather, n = 7 on 2 ranks
    n = 7
    idx = du.shard_indices(n, rank, world)
    full = torch.arange(n * 3, dtype=torch.float32).view(n, 3) * 1.5 - 4.0
    out["shard"] = idx
    out["in_order"] = du.gather_in_order(full[idx], idx, n)
    out["uneven"] = du.all_gather_tensor(torch.full((rank + 1, 2), float(rank)))
    out["mean"] = du.reduce_mean(float(rank + 1))
    out["mean_int"] = du.reduce_mean(torch.tensor(rank * 3))

    # sampler: rank and world size from the process group
    sampler = DistributedIdentitySampler(_dataset(), batch_size=8, num_instances=2, seed=5)
    sampler.set_epoch(2)
    out["sampler"] = (sampler.rank, sampler.world_size, list(iter(sampler)), len(sampler))

    du.barrier()
    torch.save(out, os.path.join(outdir, f"rank{rank}.pt"))
    du.cleanup()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run the 2-process gloo job once; returns the list of per-rank result dicts."""
    outdir = str(tmp_path_factory.mktemp("ddp"))
    port = _free_port()
    procs = []
    for rank in range(WORLD):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                   LOCAL_WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, os.path.abspath(__file__), outdir], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=180)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    for rank, (proc, log) in enumerate(zip(procs, logs)):
        assert proc.returncode == 0, f"rank {rank} failed:\n{log}"
    return [torch.load(os.path.join(outdir, f"rank{r}.pt"), weights_only=False) for r in range(WORLD)]


# ---------------------------------------------------------------------------------------------- multi-process
def test_init_distributed_from_torchrun_env(ranks):
    for rank, out in enumerate(ranks):
        assert out["info"] == (rank, WORLD, rank, "cpu", "gloo", True)
        assert out["helpers"] == (rank, WORLD, rank == 0, True)


def test_all_gather_with_grad_matches_single_process_gradients(ranks):
    state, x, pids = _grad_inputs()
    model = nn.Linear(6, 4)
    model.load_state_dict(state)
    feats = du.all_gather_with_grad(model(x))  # identity without a process group
    loss = BatchHardTripletLoss(margin=MARGIN)(feats, pids)
    loss.backward()
    assert float(loss.detach()) > MARGIN / 2  # the crafted batch has active hinges
    ref = [p.grad for p in model.parameters()]
    assert ref[0].abs().max() > 1e-2  # the weight gradient is not zero (the bias one is: distances ignore shifts)
    for out in ranks:
        torch.testing.assert_close(out["gathered"], feats.detach(), rtol=0, atol=1e-6)
        torch.testing.assert_close(out["loss"], loss.detach(), rtol=0, atol=1e-6)
        for got, want in zip(out["grads"], ref):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        for got, want in zip(out["naive_grads"], ref):  # without the sum over ranks: 1 / world of it
            torch.testing.assert_close(got * WORLD, want, rtol=1e-5, atol=1e-6)


def test_gather_in_order_returns_each_item_once_in_order(ranks):
    full = torch.arange(21, dtype=torch.float32).view(7, 3) * 1.5 - 4.0
    assert ranks[0]["shard"] == [0, 2, 4, 6] and ranks[1]["shard"] == [1, 3, 5]
    for out in ranks:
        assert torch.equal(out["in_order"], full)


def test_all_gather_tensor_uneven_and_reduce_mean(ranks):
    want = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    for out in ranks:
        assert torch.equal(out["uneven"], want)
        assert float(out["mean"]) == 1.5
        assert float(out["mean_int"]) == 1.5


def test_sampler_takes_rank_from_process_group(ranks):
    ref = DistributedIdentitySampler(_dataset(), batch_size=8, num_instances=2, seed=5)
    ref.set_epoch(2)
    batches = ref.global_batches()
    for rank, out in enumerate(ranks):
        got_rank, got_world, order, length = out["sampler"]
        assert (got_rank, got_world) == (rank, WORLD)
        assert order == batches[:, rank * 4:(rank + 1) * 4].reshape(-1).tolist()
        assert length == len(order) == len(batches) * 4


# ---------------------------------------------------------------------------------------------- single process
def test_init_distributed_disabled_without_world_size(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = du.init_distributed(use_gpu=False)
    assert info == du.DistInfo(0, 1, 0, torch.device("cpu"), None, False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert du.init_distributed(use_gpu=False).enabled is False
    assert not dist.is_initialized()
    assert (du.get_rank(), du.get_world_size(), du.is_main_process(), du.is_distributed()) == (0, 1, True, False)
    du.barrier()
    du.cleanup()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        du.init_distributed(use_gpu=False)
    assert not dist.is_initialized()


def test_shard_indices_cover_once():
    for n in range(0, 11):
        for world in range(1, 5):
            shards = [du.shard_indices(n, r, world) for r in range(world)]
            assert sorted(i for s in shards for i in s) == list(range(n))
            assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1
    with pytest.raises(ValueError):
        du.shard_indices(5, 2, 2)


def test_single_process_collectives():
    x = torch.randn(5, 3, requires_grad=True)
    assert du.all_gather_with_grad(x) is x
    assert torch.equal(du.all_gather_tensor(x), x.detach())
    assert float(du.reduce_mean(2.5)) == 2.5
    feats = torch.randn(7, 4)
    order = [3, 0, 6, 1, 5, 2, 4]
    assert torch.equal(du.gather_in_order(feats[order], order, 7), feats)
    with pytest.raises(ValueError, match="exactly once"):
        du.gather_in_order(feats[:6], [0, 1, 2, 3, 4, 4], 7)
    with pytest.raises(ValueError, match="exactly once"):
        du.gather_in_order(feats, [0, 1, 2, 3, 4, 5, 6], 6)


def test_sampler_deterministic_per_epoch_and_ignores_global_rng():
    data = _dataset()
    a = DistributedIdentitySampler(data, batch_size=8, num_instances=2, seed=3)
    b = DistributedIdentitySampler(data, batch_size=8, num_instances=2, seed=3)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    first = list(iter(a))
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    assert list(iter(b)) == first
    a.set_epoch(1)
    assert list(iter(a)) != first
    a.set_epoch(0)
    assert list(iter(a)) == first
    c = DistributedIdentitySampler(data, batch_size=8, num_instances=2, seed=4)
    assert list(iter(c)) != first


@pytest.mark.parametrize("batch_size,k", [(8, 2), (12, 4), (9, 3)])
def test_sampler_identity_balance_and_torchreid_rule(batch_size, k):
    data = _dataset()
    pids = _pids(data)
    counts = Counter(pids.tolist())
    p = batch_size // k
    sampler = DistributedIdentitySampler(data, batch_size=batch_size, num_instances=k, seed=11)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = sampler.global_batches()
        assert batches.shape[1] == batch_size and len(batches) >= 1
        used = Counter()
        seen = Counter()
        for batch in batches:
            groups = pids[batch].reshape(p, k)
            assert (groups == groups[:, :1]).all()  # K consecutive images of one identity
            assert len(set(groups[:, 0].tolist())) == p  # P distinct identities
            used.update(groups[:, 0].tolist())
            seen.update(batch.tolist())
        # identities with >= K images: no image twice in the epoch, at most floor(n / K) groups;
        # identities with < K images: one group, drawn with replacement
        for pid, n in counts.items():
            groups_of_pid = n // k if n >= k else 1
            assert used[pid] <= groups_of_pid
        for idx, times in seen.items():
            assert times == 1 or counts[pids[idx]] < k
        # the epoch stops when fewer than P identities have groups left
        left = [pid for pid, n in counts.items() if used[pid] < (n // k if n >= k else 1)]
        assert len(left) < p
        assert len(sampler) == len(list(iter(sampler))) == len(batches) * batch_size


@pytest.mark.parametrize("world", [2, 4])
def test_sampler_rank_partition(world):
    data = _dataset()
    pids = _pids(data)
    single = DistributedIdentitySampler(data, batch_size=16, num_instances=4, seed=7, rank=0, world_size=1)
    single.set_epoch(5)
    ref = single.global_batches()
    locals_ = []
    for rank in range(world):
        s = DistributedIdentitySampler(data, batch_size=16, num_instances=4, seed=7, rank=rank, world_size=world)
        s.set_epoch(5)
        order = np.array(list(iter(s))).reshape(-1, 16 // world)
        assert len(s) == order.size == ref.size // world
        locals_.append(order)
    # rank r holds the r-th contiguous slice of each global batch (disjoint slots); their union, slot by slot,
    # is the 1-process batches
    assert np.array_equal(np.concatenate(locals_, axis=1), ref)
    if world == 2:  # K = 4 divides the local batch 8: each identity's images stay on one rank
        for rank in range(world):
            for row in locals_[rank]:
                assert all(c == 4 for c in Counter(pids[row].tolist()).values())


def test_sampler_with_dataloader_batches():
    data = _dataset()
    s = DistributedIdentitySampler(data, batch_size=8, num_instances=2, seed=0, rank=1, world_size=2)
    loader = torch.utils.data.DataLoader(list(range(len(data))), batch_size=4, sampler=s, drop_last=True)
    got = torch.stack(list(loader)).numpy()
    assert np.array_equal(got, s.local_batches())
    assert len(loader) == len(s.local_batches())


def test_sampler_resume_skips_batches_and_state_round_trip():
    data = _dataset()
    s = DistributedIdentitySampler(data, batch_size=8, num_instances=2, seed=9, rank=0, world_size=1)
    s.set_epoch(3)
    full = list(iter(s))
    s.set_start_batch(2)
    assert list(iter(s)) == full[16:] and len(s) == len(full) - 16
    s.set_epoch(3)  # same epoch: the skip stays
    assert len(s) == len(full) - 16
    state = s.state_dict(batches_done=3)
    assert state["epoch"] == 3 and state["seed"] == 9 and state["start_batch"] == 3

    resumed = DistributedIdentitySampler(data, batch_size=8, num_instances=2, seed=0, rank=0, world_size=1)
    resumed.load_state_dict(state)
    assert list(iter(resumed)) == full[24:]
    resumed.set_epoch(4)  # the next epoch starts from its first batch
    ref = DistributedIdentitySampler(data, batch_size=8, num_instances=2, seed=9)
    ref.set_epoch(4)
    assert list(iter(resumed)) == list(iter(ref))

    # a position is a global batch: resuming on 2 ranks continues the same global batches
    on_rank1 = DistributedIdentitySampler(data, batch_size=8, num_instances=2, rank=1, world_size=2)
    on_rank1.load_state_dict(state)
    assert list(iter(on_rank1)) == np.array(full).reshape(-1, 8)[3:, 4:].reshape(-1).tolist()

    s.set_start_batch(0)
    assert s.state_dict() == dict(state, start_batch=0)
    with pytest.raises(ValueError, match="num_instances"):
        DistributedIdentitySampler(data, batch_size=8, num_instances=4).load_state_dict(dict(state, batch_size=8))


def test_sampler_errors_speak_to_user():
    data = _dataset()
    with pytest.raises(ValueError, match="multiple of num_instances"):
        DistributedIdentitySampler(data, batch_size=10, num_instances=4)
    with pytest.raises(ValueError, match="nproc_per_node"):
        DistributedIdentitySampler(data, batch_size=12, num_instances=2, rank=0, world_size=8)
    with pytest.raises(ValueError, match="identities"):
        DistributedIdentitySampler(data, batch_size=64, num_instances=2)
    with pytest.raises(ValueError, match="rank"):
        DistributedIdentitySampler(data, batch_size=8, num_instances=2, rank=2, world_size=2)


if __name__ == "__main__":
    _worker(sys.argv[1])
