"""Checkpoints of the whole training state, exact mid-epoch resume and the periodic checkpoint hook.

:class:`CheckpointingMixin` gives an engine torchreid's ``save_model`` (``<save_dir>/model/model.pth.tar-<epoch>``)
holding the whole training state (keys: :mod:`torchreid_dense.engine.checkpoint`), written atomically by
rank 0 only, and :meth:`~CheckpointingMixin.resume`, after which training continues with the batch after
the last one the checkpoint had trained. :class:`PeriodicCheckpointer` also writes
``<save_dir>/model/checkpoint_last.pth`` every ``checkpoint_every`` steps and at every epoch end -- after the
epoch's evaluation when ``Engine.run`` evaluates it, since the evaluation's loaders draw from the global RNG.
"""
import os.path as osp

from ..utils import distributed as du
from ..utils.device import unwrap
from ..utils.io import atomic_copy, atomic_torch_save
from . import checkpoint as ckpt
from .hooks import HookBase

__all__ = ["CHECKPOINT_LAST", "CheckpointingMixin", "PeriodicCheckpointer"]

CHECKPOINT_LAST = "checkpoint_last.pth"  # under <save_dir>/model/


class CheckpointingMixin:
    """Checkpoint writing and resume of a torchreid engine (its registered models, optimisers, schedulers).

    Reads ``precision.scaler``, ``global_step``, ``train_loader``, ``config_yaml`` and the engine's
    :meth:`extra_state`; sets ``last_checkpoint`` (the last good checkpoint, named on a non-finite loss).
    """

    last_checkpoint = None
    _resume_position = None
    _epoch_loader_rng = None  # the train loader's generator state when this epoch's iterator was made
    _pending_loader_rng = None  # a resumed checkpoint's loader_rng, restored before the first iterator

    def last_checkpoint_path(self):
        """``<save_dir>/model/checkpoint_last.pth``."""
        return osp.join(self.save_dir or ".", "model", CHECKPOINT_LAST)

    def extra_state(self):
        """Engine-specific counters stored in checkpoints (numbers / strings / tensors)."""
        return {}

    def load_extra_state(self, state):
        """Restore what :meth:`extra_state` returned."""

    def checkpoint_state(self, epoch, batch, rank1=0.0):
        """The checkpoint dict (see :mod:`torchreid_dense.engine.checkpoint` for the keys)."""
        names = self.get_model_names()
        first = names[0]

        def entry(name):
            optim, sched = self._optims.get(name), self._scheds.get(name)
            return {"state_dict": unwrap(self._models[name]).state_dict(),
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None}

        state = entry(first)
        batch_sampler = getattr(self.train_loader, "batch_sampler", None)
        scaler = self.precision.scaler if self.precision is not None else None
        state.update({
            "epoch": int(epoch),
            "batch": int(batch),
            "global_step": int(self.global_step),
            "rank1": float(rank1),
            "models": {name: entry(name) for name in names[1:]},
            "grad_scaler": scaler.state_dict() if scaler is not None else {},
            "sampler": batch_sampler.state_dict(batch) if hasattr(batch_sampler, "state_dict") else {},
            "rng": ckpt.rng_state(),
            "loader_rng": self._loader_rng_at(batch),
            "engine": self.extra_state(),
            "config": self.config_yaml,
        })
        return state

    def _loader_rng_at(self, batch):
        """What a run resumed at ``batch`` restores into the train loader's generator before its first iterator:
        mid-epoch, the state this epoch's iterator was made from (the resumed run replays the epoch's first
        batches through the workers, whose seeds come from it); at an epoch end, the current state."""
        generator = getattr(self.train_loader, "generator", None)
        if generator is None:
            return None
        return generator.get_state() if batch == 0 else self._epoch_loader_rng

    def save_checkpoint(self, path, epoch, batch, rank1=0.0):
        """Write the checkpoint atomically (rank 0 only); it becomes the last good checkpoint."""
        if du.is_main_process():
            atomic_torch_save(self.checkpoint_state(epoch, batch, rank1), path)
            self.last_checkpoint = path
        du.barrier()

    def copy_checkpoint(self, src, dst):
        """Copy the checkpoint file ``src`` to ``dst`` atomically (rank 0 only); ``dst`` becomes the last good one."""
        if du.is_main_process():
            atomic_copy(src, dst)
            self.last_checkpoint = dst
        du.barrier()

    def save_model(self, epoch, rank1, save_dir, is_best=False):
        """torchreid's ``<save_dir>/model/model.pth.tar-<epoch+1>``, holding the whole training state."""
        path = osp.join(save_dir, "model", f"model.pth.tar-{epoch + 1}")
        self.save_checkpoint(path, epoch=epoch + 1, batch=0, rank1=rank1)
        if du.is_main_process():
            print(f'Checkpoint saved to "{path}"')
        for hook in getattr(self, "hooks", ()):
            hook.after_evaluation(path)

    def resume(self, path):
        """Restore model(s), optimiser(s), scheduler(s), grad scaler, RNG states, engine counters and the
        sampler position from ``path``; returns the epoch to start at (``Engine.run(start_epoch=...)``).

        Training then continues with the batch after the last one the checkpoint had trained.
        """
        state = ckpt.read_checkpoint(path)
        names = self.get_model_names()
        entries = {names[0]: state, **state.get("models", {})}
        for name in names:
            if name not in entries:
                raise ckpt.CheckpointMismatchError(f"checkpoint '{path}' has no state for model '{name}'")
            entry = entries[name]
            ckpt.load_model_state(self._models[name], ckpt.model_state_of(entry), path)
            if self._optims.get(name) is not None and entry.get("optimizer") is not None:
                self._optims[name].load_state_dict(entry["optimizer"])
            if self._scheds.get(name) is not None and entry.get("scheduler") is not None:
                self._scheds[name].load_state_dict(entry["scheduler"])
        if self.precision is not None and state.get("grad_scaler"):
            self.precision.scaler.load_state_dict(state["grad_scaler"])
        if "rng" in state:
            ckpt.set_rng_state(state["rng"])
        self._pending_loader_rng = state.get("loader_rng")
        self.load_extra_state(state.get("engine", {}))
        epoch, batch = int(state.get("epoch", 0)), int(state.get("batch", 0))
        self.global_step = int(state.get("global_step", 0))
        self._resume_position = {"epoch": epoch, "batch": batch}
        self.last_checkpoint = path
        print(f"=> Resumed from '{path}': epoch {epoch + 1}, batch {batch + 1} (global step {self.global_step})")
        return epoch

    def start_batch(self, epoch):
        """The first batch of ``epoch`` to train: the resumed checkpoint's batch in its epoch, else 0 (once)."""
        position = self._resume_position
        if position is None or position["epoch"] != epoch:
            return 0
        self._resume_position = None
        return position["batch"]


class PeriodicCheckpointer(HookBase):
    """``checkpoint_last.pth`` every ``every`` steps inside an epoch and at every epoch end (0: never).

    An epoch that ``Engine.run`` evaluates gets its end checkpoint after the evaluation, a copy of torchreid's epoch
    checkpoint (the RNG states the next epoch starts from, with the metric); a run killed during that evaluation
    resumes from the epoch's last mid-epoch checkpoint and evaluates again.
    """

    def __init__(self, every=0):
        if int(every) < 0:
            raise ValueError(f"train.checkpoint_every must be >= 0; got {every}")
        self.every = int(every)

    def after_step(self, step):
        t = self.trainer
        if self.every and t.global_step % self.every == 0 and t.batch_idx + 1 < t.num_batches:
            t.save_checkpoint(t.last_checkpoint_path(), epoch=t.epoch, batch=t.batch_idx + 1)

    def after_epoch(self):
        t = self.trainer
        if self.every and not t.evaluates_after(t.epoch):
            t.save_checkpoint(t.last_checkpoint_path(), epoch=t.epoch + 1, batch=0)

    def after_evaluation(self, checkpoint):
        t = self.trainer
        if self.every:
            t.copy_checkpoint(checkpoint, t.last_checkpoint_path())
