"""Hooks of the training loop (in the spirit of detectron2's ``HookBase``) and the progress hook.

:class:`~torchreid_dense.engine.base.DenseEngineMixin` calls, for each of its hooks in order,
``before_epoch()`` once the epoch's batches are known, ``after_step(step)`` after each optimisation step,
``after_epoch()`` after the epoch's lr update, ``after_evaluation(checkpoint)`` once an evaluation's epoch
checkpoint (its path) is written, and ``after_train()`` when ``run`` ends (even on an error).
A hook reads the loop's counters from its ``trainer`` (the engine): ``epoch``, ``batch_idx``,
``num_batches``, ``max_epoch``, ``global_step``, ``save_dir``, ``print_freq``, ``writer``.
"""
import datetime
from dataclasses import dataclass

from .. import compat

__all__ = ["HookBase", "Step", "ProgressLog", "NullWriter"]


@dataclass(frozen=True)
class Step:
    """One optimisation step as the hooks see it."""

    summary: dict  # name -> Python float: 'loss' (when logged), the loss components, extras such as 'acc'
    data_time: float  # seconds spent waiting for the batch
    batch_time: float  # seconds from the previous step's end to this step's end


class HookBase:
    """One job around the training loop; every method is a no-op unless overridden."""

    trainer = None  # the engine, set by DenseEngineMixin.register_hooks

    def before_epoch(self):
        pass

    def after_step(self, step):
        pass

    def after_epoch(self):
        pass

    def after_evaluation(self, checkpoint):
        pass

    def after_train(self):
        pass


class NullWriter:
    """Stands in for tensorboard's SummaryWriter on ranks other than 0."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


class ProgressLog(HookBase):
    """torchreid's progress line every ``print_freq`` steps and the ``Train/*`` tensorboard scalars of every step."""

    def before_epoch(self):
        self.losses = compat.utils.MetricMeter()
        self.batch_time = compat.utils.AverageMeter()
        self.data_time = compat.utils.AverageMeter()

    def after_step(self, step):
        t = self.trainer
        self.data_time.update(step.data_time)
        self.batch_time.update(step.batch_time)
        self.losses.update(step.summary)
        if (t.batch_idx + 1) % t.print_freq == 0:
            left = (t.num_batches - t.batch_idx - 1) + (t.max_epoch - t.epoch - 1) * t.num_batches
            eta = str(datetime.timedelta(seconds=int(self.batch_time.avg * left)))
            print(
                f"epoch: [{t.epoch + 1}/{t.max_epoch}][{t.batch_idx + 1}/{t.num_batches}]\t"
                f"time {self.batch_time.val:.3f} ({self.batch_time.avg:.3f})\t"
                f"data {self.data_time.val:.3f} ({self.data_time.avg:.3f})\t"
                f"eta {eta}\t{self.losses}\tlr {t.get_current_lr():.6f}"
            )
        if t.writer is not None:
            n_iter = t.epoch * t.num_batches + t.batch_idx
            t.writer.add_scalar("Train/time", self.batch_time.avg, n_iter)
            t.writer.add_scalar("Train/data", self.data_time.avg, n_iter)
            for name, meter in self.losses.meters.items():
                t.writer.add_scalar("Train/" + name, meter.avg, n_iter)
            t.writer.add_scalar("Train/lr", t.get_current_lr(), n_iter)
