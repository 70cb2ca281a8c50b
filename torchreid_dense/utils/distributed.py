"""Distributed (DDP) helpers: process-group set-up from torchrun's environment and the collectives the engines use.

Every function here is safe to call without a process group: it then behaves like a single process
(rank 0 of a world of 1), so engines call the same code for one and for many processes.

Gradient of ``all_gather_with_grad`` (why its backward *sums* over ranks)
--------------------------------------------------------------------------
With W ranks, rank r holds the local slice ``x_r`` (computed from the shared parameters theta) and every
rank computes the *same* loss ``L(x_1, ..., x_W)`` on the gathered batch. The single-process gradient is
``dL/dtheta = sum_r dL/dx_r * dx_r/dtheta``. Autograd on rank r can only reach theta through its own
``x_r``; the other slices are constants there. Rank s's loss also depends on ``x_r`` (through the copy it
received), so the backward all-reduces (sums) the incoming gradient of the gathered tensor and returns
rank r's slice: rank r then holds ``sum_s dL_s/dx_r = W * dL/dx_r`` and its parameter gradient is
``W * dL/dx_r * dx_r/dtheta``. DDP averages parameter gradients over ranks (divides the sum by W), giving
``sum_r dL/dx_r * dx_r/dtheta``: exactly the single-process gradient on the full batch. Returning only the
local slice without the sum would give ``1/W`` of it (``tests/test_distributed.py`` checks both numbers).
The same sum is right when ranks compute different losses ``L_s`` (e.g. over their own anchors against
the gathered batch): the total objective is then ``mean_s L_s``, which is what DDP's average produces.
"""
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "is_distributed", "is_main_process", "get_rank", "get_world_size",
           "barrier", "cleanup", "all_gather_with_grad", "all_gather_tensor", "reduce_mean", "shard_indices",
           "gather_in_order"]


@dataclass
class DistInfo:
    """Where this process stands in the job (returned by ``init_distributed``).

    Attributes:
        rank (int): global rank (0 .. world_size - 1).
        world_size (int): number of processes.
        local_rank (int): rank on this machine (selects the GPU).
        device (torch.device): device this process computes on.
        backend (str or None): ``'nccl'`` or ``'gloo'``; None when not distributed.
        enabled (bool): True when a process group was initialised (world_size > 1).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None
    enabled: bool = False


def _env_int(name, default=None):
    """Integer value of environment variable ``name`` (``default`` when unset); clear error when malformed."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer; it is set by torchrun "
                         f"(torchrun --nproc_per_node=N tools/main.py ...), unset it for a single-process run")


def init_distributed(use_gpu):
    """Initialise the process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

    When WORLD_SIZE is unset or 1, torch.distributed is left untouched and a disabled ``DistInfo`` (rank 0,
    world 1) is returned. Otherwise the backend is NCCL when ``use_gpu`` and CUDA is available (the CUDA device
    is set to LOCAL_RANK), gloo otherwise. Calling it again in an initialised process returns the same info.

    Args:
        use_gpu (bool): whether the run asked for the GPU.

    Returns:
        DistInfo
    """
    cuda = bool(use_gpu) and torch.cuda.is_available()
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistInfo(device=torch.device("cuda") if cuda else torch.device("cpu"))
    rank = _env_int("RANK")
    if rank is None:
        raise RuntimeError(f"WORLD_SIZE={world_size} is set but RANK is not: launch the job with torchrun "
                           f"(torchrun --nproc_per_node=N tools/main.py --config-file ...), which sets both")
    local_rank = _env_int("LOCAL_RANK", 0)
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing and not dist.is_initialized():
        raise RuntimeError(f"WORLD_SIZE={world_size} is set but {', '.join(missing)} is not: launch the job with "
                           f"torchrun, or set MASTER_ADDR and MASTER_PORT of the rank-0 machine")
    backend = "nccl" if cuda else "gloo"
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s) are "
                               f"visible: use --nproc_per_node <= the number of GPUs")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    else:
        backend = dist.get_backend()
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device, backend=backend,
                    enabled=True)


def is_distributed():
    """True when a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank():
    """Global rank of this process (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size():
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process():
    """True on rank 0, the process that writes logs and checkpoints."""
    return get_rank() == 0


def barrier():
    """Wait for every rank (no-op without a process group)."""
    if is_distributed():
        dist.barrier()


def cleanup():
    """Destroy the process group if one was initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _comm_device():
    """Device that collectives of the current backend accept (CUDA for NCCL, CPU for gloo)."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums the gradient over ranks and returns the local slice."""

    @staticmethod
    def forward(ctx, x):
        world, rank = dist.get_world_size(), dist.get_rank()
        ctx.rank, ctx.batch = rank, x.shape[0]
        x = x.contiguous()
        chunks = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(chunks, x)
        return torch.cat(chunks, dim=0)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = ctx.rank * ctx.batch
        return grad[start:start + ctx.batch]


def all_gather_with_grad(x):
    """Concatenate ``x`` of every rank along dim 0 in rank order; the gradient flows back to the local slice.

    Every rank must pass a tensor of the same shape (the distributed sampler gives equal local batches).
    The backward all-reduces (sums) the gradient so that, after DDP's gradient averaging, the parameter
    gradients equal those of one process computing the loss on the whole global batch (see the module
    docstring). Identity without a process group.

    Args:
        x (torch.Tensor): local tensor ``[B, ...]``.

    Returns:
        torch.Tensor: ``[world_size * B, ...]``.
    """
    if not is_distributed():
        return x
    return _AllGatherWithGrad.apply(x)


def all_gather_tensor(x):
    """Concatenate ``x`` of every rank along dim 0 in rank order, without gradient; batch sizes may differ.

    Each rank's tensor is padded to the largest batch before the all-gather and trimmed after it.

    Args:
        x (torch.Tensor): local tensor ``[B_rank, ...]`` (same trailing shape and dtype on every rank).

    Returns:
        torch.Tensor: ``[sum of B_rank, ...]`` (``x`` detached without a process group).
    """
    x = x.detach()
    if not is_distributed():
        return x
    world = dist.get_world_size()
    size = torch.tensor([x.shape[0]], dtype=torch.long, device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s.item()) for s in sizes]
    longest = max(sizes)
    padded = x.new_zeros((longest,) + tuple(x.shape[1:]))
    padded[:x.shape[0]] = x
    chunks = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(chunks, padded)
    return torch.cat([chunk[:n] for chunk, n in zip(chunks, sizes)], dim=0)


def reduce_mean(x):
    """Mean of ``x`` over ranks, for logging (detached; a number becomes a tensor).

    Args:
        x (torch.Tensor or float): value on this rank.

    Returns:
        torch.Tensor: the mean over ranks (``x`` itself, as a detached tensor, without a process group).
    """
    if not isinstance(x, torch.Tensor):
        x = torch.tensor(float(x), device=_comm_device())
    x = x.detach().clone()
    if not is_distributed():
        return x
    if not x.is_floating_point():
        x = x.double()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x / dist.get_world_size()


def shard_indices(n, rank, world):
    """Indices of the ``n`` evaluation items that ``rank`` of ``world`` processes extracts: ``range(rank, n, world)``.

    The shards are disjoint and cover ``0 .. n - 1`` whatever ``n`` (ranks differ by at most one item).
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard_indices: rank={rank} is not in [0, world={world})")
    return list(range(rank, n, world))


def gather_in_order(local, indices, n):
    """Assemble the full ``[n, ...]`` tensor on every rank from the rows each rank computed.

    Args:
        local (torch.Tensor): ``[len(indices), ...]`` rows computed on this rank.
        indices (list or torch.Tensor): data-set index of each local row (e.g. ``shard_indices(n, rank, world)``).
        n (int): size of the data set.

    Returns:
        torch.Tensor: ``[n, ...]`` ordered like the data set, on ``local``'s device.

    Raises:
        ValueError: when the ranks' indices do not cover ``0 .. n - 1`` exactly once.
    """
    indices = torch.as_tensor(indices, dtype=torch.long, device=local.device).reshape(-1)
    if indices.numel() != local.shape[0]:
        raise ValueError(f"gather_in_order: {local.shape[0]} local rows but {indices.numel()} indices")
    rows = all_gather_tensor(local)
    where = all_gather_tensor(indices)
    counts = torch.bincount(where.clamp(0, max(n - 1, 0)), minlength=n) if where.numel() else where.new_zeros(n)
    if where.numel() != n or (where.numel() and (where.min() < 0 or where.max() >= n)) or bool((counts != 1).any()):
        raise ValueError(f"gather_in_order: the ranks' indices do not cover 0..{n - 1} exactly once "
                         f"({where.numel()} rows gathered); give each rank shard_indices(n, rank, world)")
    out = rows.new_empty((n,) + tuple(rows.shape[1:]))
    out[where] = rows
    return out
