"""Deterministic, resumable training loaders (exact resume and DDP partitioning).

torchreid's train samplers draw from the global RNGs (``RandomIdentitySampler`` uses ``random``,
``RandomSampler`` seeds itself from ``torch``'s generator), so a resumed run cannot replay an epoch.
The launcher therefore replaces ``datamanager.train_loader`` with :func:`build_train_loader`: the
same data set, batch size, workers and ``drop_last=True``, with

- ``RandomIdentitySampler`` -> :class:`~torchreid_dense.data.samplers.DistributedIdentitySampler`
  (P x K global batches from ``(seed, epoch)``, rank r taking the r-th slice);
- ``RandomSampler`` / ``SequentialSampler`` -> ``torch.utils.data.DistributedSampler`` (shuffled
  from ``(seed, epoch)`` / in order, partitioned across ranks);

wrapped in :class:`ResumableBatchSampler`, which can start an epoch at batch k. With one process
the batches keep torchreid's recipe (P x K identity balance, or a random permutation).
"""
import itertools
import math

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from ..data.samplers import DistributedIdentitySampler
from ..utils.distributed import get_rank, get_world_size

__all__ = ["ResumableBatchSampler", "build_train_loader", "RESUMABLE_SAMPLERS"]

RESUMABLE_SAMPLERS = ("RandomIdentitySampler", "RandomSampler", "SequentialSampler")


class ResumableBatchSampler(Sampler):
    """Batches of a per-epoch deterministic sampler that can start mid-epoch.

    Args:
        sampler: yields data-set indices; deterministic given ``set_epoch(epoch)``.
        batch_size (int): local batch size.
        drop_last (bool): drop the last incomplete batch.

    ``set_epoch(e)`` selects the epoch (and clears the start position); ``set_start_batch(k)`` skips
    the first k batches of that epoch without loading them. ``num_batches`` counts the whole epoch,
    ``len()`` the batches the next iteration yields.
    """

    def __init__(self, sampler, batch_size, drop_last=True):
        if int(batch_size) < 1:
            raise ValueError(f"ResumableBatchSampler: batch_size must be >= 1, got {batch_size}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)
        self.start_batch = 0
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)

    def set_start_batch(self, k):
        if int(k) < 0:
            raise ValueError(f"set_start_batch: k={k} must be >= 0")
        self.start_batch = int(k)

    @property
    def num_batches(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self):
        return max(self.num_batches - self.start_batch, 0)

    def _batches(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __iter__(self):
        return itertools.islice(self._batches(), self.start_batch, None)

    def state_dict(self, batches_done=None):
        """``{'epoch', 'batch'}``: the epoch and the batches of it already trained."""
        return {"epoch": self.epoch, "batch": self.start_batch if batches_done is None else int(batches_done)}

    def load_state_dict(self, state):
        self.set_epoch(state["epoch"])
        self.set_start_batch(state["batch"])


def _make_sampler(dataset, sampler_name, batch_size, num_instances, seed, rank, world):
    if sampler_name == "RandomIdentitySampler":
        return DistributedIdentitySampler(dataset.train, batch_size, num_instances, seed=seed, rank=rank,
                                          world_size=world)
    if sampler_name in ("RandomSampler", "SequentialSampler"):
        return DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=sampler_name == "RandomSampler",
                                  seed=seed, drop_last=True)
    return None


def build_train_loader(dataset, sampler_name, batch_size, num_instances=4, workers=0, seed=0, use_gpu=False,
                       rank=None, world_size=None):
    """The resumable (and, under DDP, partitioned) train loader replacing torchreid's.

    Args:
        dataset: torchreid's train data set (``datamanager.train_loader.dataset``).
        sampler_name (str): ``sampler.train_sampler``.
        batch_size (int): the GLOBAL batch size (``train.batch_size``); each of the ``world_size``
            processes loads ``batch_size // world_size`` images per step.
        num_instances (int): K of the identity sampler.
        workers (int): loader worker processes.
        seed (int): sampling seed (``train.seed``); the order depends only on ``(seed, epoch)``.
        use_gpu (bool): pin memory.
        rank, world_size (int, optional): default from torch.distributed (0 / 1 without it).

    Returns:
        ``DataLoader`` whose ``batch_sampler`` is a :class:`ResumableBatchSampler`, or None for a
        sampler this module does not know (torchreid's loader is kept: no exact resume, no DDP).

    Raises:
        ValueError: the global batch does not split over the processes, or an unknown sampler under DDP.
    """
    rank = get_rank() if rank is None else int(rank)
    world = get_world_size() if world_size is None else int(world_size)
    if batch_size % world:
        raise ValueError(f"train.batch_size={batch_size} is the global batch and must be divisible by the "
                         f"{world} processes; choose a multiple of --nproc_per_node")
    sampler = _make_sampler(dataset, sampler_name, batch_size, num_instances, seed, rank, world)
    if sampler is None:
        if world > 1:
            raise ValueError(f"sampler.train_sampler '{sampler_name}' has no distributed version; use one of "
                             f"{RESUMABLE_SAMPLERS} with torchrun")
        return None
    generator = torch.Generator()
    generator.manual_seed(int(seed))  # worker seeds come from here, not from torch's global generator
    return DataLoader(
        dataset,
        batch_sampler=ResumableBatchSampler(sampler, batch_size // world, drop_last=True),
        num_workers=int(workers),
        pin_memory=bool(use_gpu),
        generator=generator,
    )
