"""The training loop every torchreid_dense engine shares (DSA, SAN, SAN-PG and the stock softmax/triplet engines).

:class:`DenseEngineMixin` sits before a torchreid ``Engine`` class in the bases. Its ``train`` is
torchreid's epoch loop reduced to its core (the batches, one :meth:`~DenseEngineMixin.train_step` each,
the lr update); everything else is a component with one job:

- :mod:`~torchreid_dense.engine.precision`: autocast of the forward pass (``amp``), the fp16 GradScaler and
  the finiteness guard (:class:`NonFiniteLossError`);
- :mod:`~torchreid_dense.engine.checkpointing`: checkpoints of the whole training state, exact mid-epoch
  resume, ``checkpoint_last.pth`` every ``checkpoint_every`` steps (a hook);
- :mod:`~torchreid_dense.engine.step_log`: the per-step loss log ``<save_dir>/train_losses.jsonl`` (a hook);
- :mod:`~torchreid_dense.engine.hooks`: torchreid's progress line and tensorboard scalars (a hook);
- :mod:`~torchreid_dense.engine.evaluation`: ``test`` through the plugin's exact evaluator, sharded over DDP.

An engine for a new method implements :meth:`~DenseEngineMixin.forward_loss` only.
"""
import time

import torch

from .. import compat
from ..utils import distributed as du
from ..utils.device import to_device, unwrap
from .checkpointing import CHECKPOINT_LAST, CheckpointingMixin, PeriodicCheckpointer
from .evaluation import REPORTED_RANKS, EvaluationMixin
from .hooks import NullWriter, ProgressLog, Step
from .precision import AMP_DTYPES, NonFiniteLossError, Precision
from .step_log import LOSS_LOG, StepLog, as_floats

__all__ = [
    "DenseEngineMixin",
    "DenseEngine",
    "NonFiniteLossError",
    "unwrap",
    "AMP_DTYPES",
    "LOSS_LOG",
    "CHECKPOINT_LAST",
    "REPORTED_RANKS",
]


class DenseEngineMixin(CheckpointingMixin, EvaluationMixin):
    """The shared training loop (see the module docstring).

    Engines call :meth:`setup_dense` at the end of ``__init__`` and implement :meth:`forward_loss`.
    Attributes the launcher may set: ``config_yaml`` (stored in checkpoints). The class attributes
    below are the defaults before :meth:`setup_dense`.
    """

    channels_last = False
    config_yaml = ""
    global_step = 0
    save_dir = ""
    print_freq = 10
    precision = None
    hooks = ()
    log_total = True  # the step summary starts with the total 'loss' (False: the components alone)
    _eval_schedule = None  # (start_eval, eval_freq, max_epoch) of the running Engine.run

    # ------------------------------------------------------------------ set-up
    def setup_dense(self, amp="", channels_last=False, checkpoint_every=0):
        """Mixed precision, memory format and mid-epoch checkpointing.

        Args:
            amp (str): ``''``, ``'bf16'`` or ``'fp16'`` (see :class:`~torchreid_dense.engine.precision.Precision`).
            channels_last (bool): model and image batches in channels-last memory format.
            checkpoint_every (int): also write ``<save_dir>/model/checkpoint_last.pth`` every N steps
                (and at every epoch end); 0 = only torchreid's epoch checkpoints.
        """
        self.precision = Precision(amp, self.use_gpu)
        self.register_hooks([StepLog(), ProgressLog(), PeriodicCheckpointer(checkpoint_every)])
        self.channels_last = bool(channels_last)
        self.global_step = 0
        self.last_metrics = {}
        ddp = torch.nn.parallel.DistributedDataParallel
        if self.channels_last and self.model is not None and not isinstance(self.model, ddp):
            self.model.to(memory_format=torch.channels_last)

    def register_hooks(self, hooks):
        """Run ``hooks`` (:class:`~torchreid_dense.engine.hooks.HookBase`) around the loop, in this order."""
        for hook in hooks:
            hook.trainer = self
        self.hooks = tuple(hooks)

    @staticmethod
    def dense_kwargs(cfg):
        """The :meth:`setup_dense` arguments from ``train.amp``, ``train.channels_last``, ``train.checkpoint_every``."""
        return {"amp": cfg.train.amp, "channels_last": cfg.train.channels_last,
                "checkpoint_every": cfg.train.checkpoint_every}

    def autocast(self):
        """Autocast context of ``amp`` (a no-op context when off). Wrap the model call only."""
        return self.precision.autocast()

    def to_device(self, *tensors):
        """Tensors to the GPU when training on it; 4-D image batches channels-last when asked."""
        return to_device(tensors, self.use_gpu, self.channels_last)

    # ------------------------------------------------------------------ one step
    def forward_loss(self, data):
        """One batch's forward pass and loss (engine-specific).

        Returns:
            ``(loss, components, extra)``: the total loss tensor (fp32), a dict of unweighted loss
            components (detached scalar tensors, or numbers; logged and printed on a non-finite loss)
            and a dict of other values to log (e.g. ``acc``; scalar tensors or numbers).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward_loss(data)")

    def train_step(self, data):
        """One optimisation step; returns its summary (name -> scalar tensor or number, not yet read back)."""
        loss, components, extra = self.forward_loss(data)
        self.optimize(loss, components)
        summary = {"loss": loss.detach() if isinstance(loss, torch.Tensor) else loss} if self.log_total else {}
        summary.update(components)
        summary.update(extra)
        return summary

    def forward_backward(self, data):
        """torchreid's step: :meth:`train_step`, its summary as Python floats (one device sync)."""
        return as_floats(self.train_step(data))

    def check_finite(self, loss, components, what="training"):
        """Raise :class:`NonFiniteLossError` when ``loss`` is NaN/Inf on any rank (before any update)."""
        self.precision.check_finite(loss, components, self.epoch, getattr(self, "batch_idx", 0), self.global_step,
                                    self.last_checkpoint, what)

    def optimize(self, loss, components, optimizer=None):
        """Check ``loss``, then zero_grad / backward / step (through the GradScaler under fp16)."""
        self.check_finite(loss, components)
        self.precision.step(loss, optimizer or self.optimizer)

    # ------------------------------------------------------------------ training loop
    def run(self, save_dir="log", **kwargs):
        """torchreid's ``Engine.run``; remembers ``save_dir`` and the evaluation schedule, keeps tensorboard on
        rank 0, ends the hooks."""
        self.save_dir = save_dir
        self._eval_schedule = (kwargs.get("start_eval", 0), kwargs.get("eval_freq", -1), kwargs.get("max_epoch", 0))
        if not du.is_main_process():
            self.writer = NullWriter()
        try:
            return super().run(save_dir=save_dir, **kwargs)
        finally:
            for hook in self.hooks:
                hook.after_train()

    def evaluates_after(self, epoch):
        """Whether ``Engine.run`` evaluates after ``epoch`` (0-based): every ``eval_freq`` epochs from
        ``start_eval``, and after the last (False outside ``run``)."""
        if self._eval_schedule is None:
            return False
        start_eval, eval_freq, max_epoch = self._eval_schedule
        done = epoch + 1
        return done == max_epoch or (done >= start_eval and eval_freq > 0 and done % eval_freq == 0)

    def _epoch_iterator(self):
        """Select the epoch in the batch sampler and position a resumed run at its batch.

        Returns ``(start, num_batches, replay)``: with loader workers, the first ``start`` batches are loaded
        again and dropped (``replay``, a count), so each worker's RNG (seeded from the loader's generator, restored by
        :meth:`resume`) draws the same augmentations as in an uninterrupted run; without workers they are
        skipped unloaded (the augmentations draw from the global RNGs the checkpoint restored).
        """
        batch_sampler = getattr(self.train_loader, "batch_sampler", None)
        resumable = hasattr(batch_sampler, "set_start_batch")
        if hasattr(batch_sampler, "set_epoch"):
            batch_sampler.set_epoch(self.epoch)
        elif hasattr(getattr(self.train_loader, "sampler", None), "set_epoch"):
            self.train_loader.sampler.set_epoch(self.epoch)
        start = self.start_batch(self.epoch)
        if start and not resumable:
            raise RuntimeError(
                "resuming mid-epoch needs the launcher's resumable train loader (sampler.train_sampler one of "
                "RandomIdentitySampler, RandomSampler, SequentialSampler)")
        generator = getattr(self.train_loader, "generator", None)
        if generator is not None:
            if self._pending_loader_rng is not None:
                generator.set_state(self._pending_loader_rng)
            self._epoch_loader_rng = generator.get_state()
        self._pending_loader_rng = None
        replay = start if getattr(self.train_loader, "num_workers", 0) > 0 else 0
        if start and not replay:
            batch_sampler.set_start_batch(start)
        num_batches = batch_sampler.num_batches if resumable else len(self.train_loader)
        return start, num_batches, replay

    def train(self, print_freq=10, fixbase_epoch=0, open_layers=None):
        """One epoch: a :meth:`train_step` per batch, the hooks after each, the lr update at the end."""
        self.print_freq = print_freq
        self.set_model_mode("train")
        self.two_stepped_transfer_learning(self.epoch, fixbase_epoch, open_layers)
        start, self.num_batches, replay = self._epoch_iterator()
        for hook in self.hooks:
            hook.before_epoch()
        batches = iter(self.train_loader)
        for _ in range(replay):
            next(batches)
        end = time.time()
        for self.batch_idx, data in enumerate(batches, start):
            data_time = time.time() - end
            summary = self.forward_backward(data)
            step = Step(summary, data_time, time.time() - end)
            self.global_step += 1
            for hook in self.hooks:
                hook.after_step(step)
            end = time.time()
        self.update_lr()
        for hook in self.hooks:
            hook.after_epoch()


class DenseEngine(DenseEngineMixin, compat.Engine):
    """A torchreid ``Engine`` with the plugin's shared machinery (base of the DSA and SAN engines)."""

    def register_training(self, model, optimizer, scheduler=None):
        """``model``, ``optimizer``, ``scheduler`` as the engine's (torchreid's ``register_model('model', ...)``)."""
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.register_model("model", model, optimizer, scheduler)
