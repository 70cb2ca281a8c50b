"""Identity-balanced P x K sampler, deterministic per (seed, epoch) and partitioned across DDP ranks.

Differences from torchreid's ``RandomIdentitySampler`` (``torchreid.data.sampler``), whose batch rule it keeps
(each identity's images shuffled and cut into groups of K, identities with fewer than K images drawn K times
with replacement, the incomplete last group dropped, P distinct identities drawn uniformly among those with
groups left until fewer than P remain, each contributing its next group):

- Randomness comes from ``numpy.random.default_rng([seed, epoch])`` only, never the global RNGs, so every rank
  builds the same global batches and a resumed run replays the epoch exactly.
- ``__len__`` is exact: the number of samples the epoch really yields. torchreid's is an estimate (the sum of
  the complete groups, which overcounts the groups left over when fewer than P identities remain).
- ``batch_size`` must be a multiple of ``num_instances`` (torchreid silently uses ``batch_size // K``
  identities, so its batches straddle loader batches otherwise) and of the world size.
- Global batches are split across ranks: rank r receives the r-th contiguous slice of every global batch.
"""
from collections.abc import Mapping

import numpy as np
from torch.utils.data import Sampler

from ..utils.distributed import get_rank, get_world_size

__all__ = ["DistributedIdentitySampler"]


def _pids_of(data_source):
    """Identity label of every item: torchreid tuples ``(img_path, pid, camid, dsetid)`` or dicts with 'pid'."""
    items = getattr(data_source, "train", data_source)
    return np.asarray([item["pid"] if isinstance(item, Mapping) else item[1] for item in items])


class DistributedIdentitySampler(Sampler):
    """P identities x K images per GLOBAL batch, the same on every rank, rank r taking the r-th slice of each.

    With ``world_size`` 1 it is a deterministic drop-in for torchreid's ``RandomIdentitySampler`` (see the
    module docstring for the differences). The DataLoader must use ``batch_size // world_size`` and
    ``drop_last=True``.

    Args:
        data_source (list): torchreid train list of ``(img_path, pid, camid, dsetid)`` (or a data set with a
            ``train`` attribute, or items that are dicts with a ``'pid'`` key).
        batch_size (int): the global batch size P x K.
        num_instances (int): K, images per identity in a batch.
        seed (int): seed of the per-epoch generator ``default_rng([seed, epoch])``.
        rank (int, optional): this process's rank (default: from torch.distributed, 0 without it).
        world_size (int, optional): number of processes (default: from torch.distributed, 1 without it).
    """

    def __init__(self, data_source, batch_size, num_instances, seed=0, rank=None, world_size=None):
        self.batch_size = int(batch_size)
        self.num_instances = int(num_instances)
        self.seed = int(seed)
        self.rank = get_rank() if rank is None else int(rank)
        self.world_size = get_world_size() if world_size is None else int(world_size)
        if self.num_instances < 1 or self.batch_size < self.num_instances:
            raise ValueError(f"DistributedIdentitySampler: batch_size={batch_size} must be >= num_instances="
                             f"{num_instances} >= 1 (set train.batch_size / sampler.num_instances)")
        if self.batch_size % self.num_instances:
            raise ValueError(f"DistributedIdentitySampler: batch_size={batch_size} is not a multiple of "
                             f"num_instances={num_instances}; set train.batch_size to P x K")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"DistributedIdentitySampler: rank={self.rank} is not in [0, world_size="
                             f"{self.world_size})")
        if self.batch_size % self.world_size:
            raise ValueError(f"DistributedIdentitySampler: the global batch_size={batch_size} is not divisible by "
                             f"the {self.world_size} processes; choose train.batch_size as a multiple of "
                             f"--nproc_per_node")
        self.num_pids_per_batch = self.batch_size // self.num_instances
        self.local_batch_size = self.batch_size // self.world_size

        pids = _pids_of(data_source)
        # identity groups: image indices sorted by identity, with each identity's start and image count
        self._pid_values, self._pid_codes, self._counts = np.unique(pids, return_inverse=True, return_counts=True)
        self._order = np.argsort(self._pid_codes, kind="stable")
        self._starts = np.concatenate([[0], np.cumsum(self._counts)[:-1]]).astype(np.int64)
        if len(self._pid_values) < self.num_pids_per_batch:
            raise ValueError(f"DistributedIdentitySampler: the training set has {len(self._pid_values)} identities, "
                             f"fewer than P = batch_size / num_instances = {self.num_pids_per_batch}; lower "
                             f"train.batch_size or raise sampler.num_instances")
        self.epoch = 0
        self.start_batch = 0
        self._cache = None  # (seed, epoch, global batches [num_batches, batch_size])

    # ------------------------------------------------------------------ plan
    def _groups(self, rng):
        """The epoch's K-image groups ``[num_groups, K]`` sorted by identity, groups per identity, first row of each."""
        k = self.num_instances
        # shuffle within identities: random keys, then sort by (identity, key)
        keys = rng.random(len(self._pid_codes))
        shuffled = np.lexsort((keys, self._pid_codes))
        rank_in_id = np.arange(len(shuffled)) - self._starts[self._pid_codes[shuffled]]
        full = self._counts >= k
        n_groups = np.where(full, self._counts // k, 1)
        keep = full[self._pid_codes[shuffled]] & (rank_in_id < (self._counts // k * k)[self._pid_codes[shuffled]])
        big = shuffled[keep].reshape(-1, k)  # identities in code order, groups in shuffled order
        big_ids = np.repeat(np.flatnonzero(full), n_groups[full])
        # identities with fewer than K images: K draws with replacement
        small_ids = np.flatnonzero(~full)
        draws = (rng.random((len(small_ids), k)) * self._counts[small_ids, None]).astype(np.int64)
        small = self._order[self._starts[small_ids, None] + draws]
        groups = np.concatenate([big, small], axis=0)
        group_ids = np.concatenate([big_ids, small_ids])
        # rows of identity i are groups[first[i]: first[i] + n_groups[i]]
        by_id = np.argsort(group_ids, kind="stable")
        groups, group_ids = groups[by_id], group_ids[by_id]
        first = np.concatenate([[0], np.cumsum(n_groups)[:-1]])
        return groups, n_groups, first

    def _plan(self, epoch):
        """The epoch's global batches, ``[num_batches, batch_size]`` int64 (cached per (seed, epoch))."""
        if self._cache is not None and self._cache[:2] == (self.seed, epoch):
            return self._cache[2]
        rng = np.random.default_rng([self.seed, epoch])
        groups, left, first = self._groups(rng)
        left = left.copy()
        used = np.zeros_like(left)
        p = self.num_pids_per_batch
        rows = []
        # one iteration per batch (not per item): draw P distinct identities among those with groups left
        while True:
            available = np.flatnonzero(left > 0)
            if len(available) < p:
                break
            chosen = rng.choice(available, size=p, replace=False)
            rows.append(first[chosen] + used[chosen])
            used[chosen] += 1
            left[chosen] -= 1
        if rows:
            batches = groups[np.stack(rows)].reshape(len(rows), self.batch_size)
        else:
            batches = np.zeros((0, self.batch_size), dtype=np.int64)
        self._cache = (self.seed, epoch, batches)
        return batches

    def global_batches(self, epoch=None):
        """The global P x K batches of ``epoch`` (default: the current one) as an int64 array ``[num_batches, P*K]``."""
        return self._plan(self.epoch if epoch is None else int(epoch)).copy()

    def local_batches(self, epoch=None):
        """This rank's slices of the global batches, ``[num_batches, batch_size // world_size]``."""
        start = self.rank * self.local_batch_size
        return self.global_batches(epoch)[:, start:start + self.local_batch_size]

    def batches_per_epoch(self):
        """Number of (global = local) batches of the current epoch, skipped ones included."""
        return len(self._plan(self.epoch))

    # ------------------------------------------------------------------ Sampler API
    def __iter__(self):
        local = self.local_batches()[self.start_batch:]
        return iter(local.reshape(-1).tolist())

    def __len__(self):
        """Samples the next iteration yields on this rank: (batches of the epoch - skipped ones) x local batch."""
        return max(self.batches_per_epoch() - self.start_batch, 0) * self.local_batch_size

    def set_epoch(self, epoch):
        """Select the epoch whose batches the next iteration yields; a different epoch clears ``set_start_batch``."""
        epoch = int(epoch)
        if epoch != self.epoch:
            self.start_batch = 0
        self.epoch = epoch

    def set_start_batch(self, k):
        """Skip the first ``k`` local batches of the current epoch (mid-epoch resume); cleared by a new epoch."""
        k = int(k)
        if k < 0:
            raise ValueError(f"set_start_batch: k={k} must be >= 0")
        self.start_batch = k

    def state_dict(self, batches_done=None):
        """Epoch, seed and position, for exact resume.

        Args:
            batches_done (int, optional): local batches of the current epoch already trained, counted from the
                epoch's start (skipped ones included). Default: the current ``start_batch``. The sampler cannot
                count them itself because the DataLoader prefetches ahead of training.
        """
        position = self.start_batch if batches_done is None else int(batches_done)
        return {"seed": self.seed, "epoch": self.epoch, "start_batch": position, "batch_size": self.batch_size,
                "num_instances": self.num_instances, "world_size": self.world_size}

    def load_state_dict(self, state):
        """Restore epoch, seed and position (``start_batch``); the world size may differ from the saved one.

        A global batch is the same whatever the number of ranks, so position k (in batches) resumes the same
        global batch on any world size; the batch composition (batch_size, num_instances) must match.
        """
        for key in ("batch_size", "num_instances"):
            if key in state and int(state[key]) != getattr(self, key):
                raise ValueError(f"DistributedIdentitySampler.load_state_dict: the checkpoint was made with "
                                 f"{key}={state[key]}, this run uses {getattr(self, key)}; resume with the same "
                                 f"train.batch_size and sampler.num_instances (or start a new run from the weights)")
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.set_start_batch(state.get("start_batch", 0))
