"""Learning-rate schedulers stepped once per epoch, as torchreid's ``Engine`` does.

The plugin's own schedulers add a warm-up in front of step decay, the schedule of DSA-reID (CVPR 2019,
Sec. 4.2: lr rises linearly from 8e-6 to 8e-4 over 20 epochs, then is multiplied by 0.5 every 40 epochs) and,
with an exponential warm-up (x1.259 per epoch from 8e-6), of the SAN authors' released code. The learning rate is a
closed-form function of the epoch, so ``state_dict()``/``load_state_dict()`` round-trip exactly
and a resumed run continues on the same curve.
"""
from bisect import bisect_right

from torch.optim.lr_scheduler import LRScheduler

__all__ = ["WarmupLR", "WarmupMultiStepLR", "WarmupStepLR", "WARMUP_MODES"]

WARMUP_MODES = ("linear", "exponential")


class WarmupLR(LRScheduler):
    """Warm-up from ``warmup_lr`` to each group's base lr, then ``base * gamma**k``.

    On its own it keeps the base lr after the warm-up (no decay).

    At epoch ``e < warmup_epochs``: ``lr = w + (base - w) * e / warmup_epochs`` (``linear``) or
    ``lr = w * (base / w) ** (e / warmup_epochs)`` (``exponential``: the SAN authors' x1.259 per epoch for
    8e-6 -> 8e-4 over 20 epochs), where ``w`` is ``warmup_lr`` scaled by the group's share of the largest
    base lr (so staged learning rates keep their ratio). From ``warmup_epochs`` on: ``lr = base * gamma ** decay_count(e)``;
    subclasses override :meth:`decay_count`.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        gamma (float): multiplicative decay.
        warmup_epochs (int): number of warm-up epochs (0 = none).
        warmup_lr (float): learning rate at epoch 0 for the group with the largest base lr.
        warmup_mode (str): ``'linear'`` or ``'exponential'`` (see above).
        last_epoch (int): index of the last epoch (-1 = start).
    """

    def __init__(self, optimizer, gamma=0.1, warmup_epochs=0, warmup_lr=8e-6, last_epoch=-1, warmup_mode="linear"):
        if warmup_mode not in WARMUP_MODES:
            raise ValueError(f"train.warmup_mode must be one of {WARMUP_MODES}; got '{warmup_mode}'")
        self.warmup_mode = warmup_mode
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if warmup_epochs > 0 and warmup_lr <= 0:
            raise ValueError(f"warmup_lr must be > 0 when warming up, got {warmup_lr}")
        self.gamma = float(gamma)
        self.warmup_epochs = int(warmup_epochs)
        self.warmup_lr = float(warmup_lr)
        peak = max(group.get("initial_lr", group["lr"]) for group in optimizer.param_groups)
        self.warmup_factor = self.warmup_lr / peak if peak > 0 else 1.0
        super().__init__(optimizer, last_epoch)

    def decay_count(self, epoch):
        """Number of decays applied at ``epoch`` (``epoch >= warmup_epochs``); none here."""
        return 0

    def lr_at(self, base_lr, epoch):
        """Learning rate of a group with base lr ``base_lr`` during ``epoch`` (0-based)."""
        if epoch < self.warmup_epochs:
            start = base_lr * self.warmup_factor
            if self.warmup_mode == "exponential":
                return start * (base_lr / start) ** (epoch / self.warmup_epochs)
            return start + (base_lr - start) * epoch / self.warmup_epochs
        return base_lr * self.gamma ** self.decay_count(epoch)

    def get_lr(self):
        return [self.lr_at(base_lr, self.last_epoch) for base_lr in self.base_lrs]

    def _get_closed_form_lr(self):
        return self.get_lr()


class WarmupMultiStepLR(WarmupLR):
    """Warm-up, then decay by ``gamma`` at each epoch in ``milestones`` (absolute epochs).

    Example (SAN's released recipe counted from epoch 0): ``WarmupMultiStepLR(opt,
    milestones=[60, 100, 140, 180, 220, 260, 300], gamma=0.5, warmup_epochs=20, warmup_lr=8e-6)``.
    """

    def __init__(self, optimizer, milestones, gamma=0.1, warmup_epochs=0, warmup_lr=8e-6,
                 last_epoch=-1, warmup_mode="linear"):
        milestones = [int(m) for m in milestones]
        if milestones != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {milestones}")
        if milestones and milestones[0] < warmup_epochs:
            raise ValueError(
                f"the first milestone ({milestones[0]}) falls inside the warm-up "
                f"({warmup_epochs} epochs); milestones are absolute epochs"
            )
        self.milestones = milestones
        super().__init__(optimizer, gamma, warmup_epochs, warmup_lr, last_epoch, warmup_mode)

    def decay_count(self, epoch):
        return bisect_right(self.milestones, epoch)


class WarmupStepLR(WarmupLR):
    """Warm-up, then decay by ``gamma`` every ``step_size`` epochs counted from the warm-up's end.

    DSA-reID: ``WarmupStepLR(opt, step_size=40, gamma=0.5, warmup_epochs=20, warmup_lr=8e-6)``
    with base lr 8e-4 gives 8e-6 at epoch 0, 8e-4 at epochs 20-59, 4e-4 at 60-99, ...
    """

    def __init__(self, optimizer, step_size, gamma=0.1, warmup_epochs=0, warmup_lr=8e-6,
                 last_epoch=-1, warmup_mode="linear"):
        if int(step_size) < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.step_size = int(step_size)
        super().__init__(optimizer, gamma, warmup_epochs, warmup_lr, last_epoch, warmup_mode)

    def decay_count(self, epoch):
        return (epoch - self.warmup_epochs) // self.step_size
