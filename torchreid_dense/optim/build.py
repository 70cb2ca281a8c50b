"""Build optimisers (torchreid's) and learning-rate schedulers (looked up in ``SCHEDULERS``).

Every scheduler builder takes the same keyword arguments, those of
:func:`torchreid_dense.config.lr_scheduler_kwargs` minus the name:
``builder(optimizer, stepsize, gamma, max_epoch, warmup_epochs, warmup_lr)``.
"""
from .. import compat
from ..registry import Registry
from .lr_scheduler import WarmupMultiStepLR, WarmupStepLR

__all__ = ["SCHEDULERS", "build_optimizer", "build_lr_scheduler"]

# name -> builder(optimizer, stepsize, gamma, max_epoch, warmup_epochs, warmup_lr)
SCHEDULERS = Registry("lr scheduler")


def build_optimizer(model, **optimizer_kwargs):
    """torchreid's optimiser (``optim``: adam, amsgrad, sgd, rmsprop, radam; staged lr)."""
    return compat.optim.build_optimizer(model, **optimizer_kwargs)


def build_lr_scheduler(optimizer, lr_scheduler="single_step", stepsize=(20,), gamma=0.1,
                       max_epoch=1, warmup_epochs=0, warmup_lr=8e-6, warmup_mode="linear"):
    """Scheduler named ``lr_scheduler`` in :data:`SCHEDULERS`, stepped once per epoch.

    Args:
        optimizer (Optimizer): the optimiser whose lr it drives.
        lr_scheduler (str): registered name (``single_step``, ``multi_step``, ``cosine``,
            ``warmup_single_step``, ``warmup_multi_step``).
        stepsize (int or list): step length (``*single_step``: the last entry) or absolute
            milestone epochs (``*multi_step``).
        gamma (float): decay factor.
        max_epoch (int): training length (``cosine``).
        warmup_epochs (int): warm-up epochs; only the ``warmup_*`` schedulers use it.
        warmup_lr (float): learning rate at epoch 0 of the warm-up.
        warmup_mode (str): ``'linear'`` or ``'exponential'`` rise (``warmup_*`` schedulers).
    """
    builder = SCHEDULERS.get(lr_scheduler)
    if warmup_epochs and not SCHEDULERS.meta(lr_scheduler).get("warmup", False):
        warmups = [n for n in SCHEDULERS.names() if SCHEDULERS.meta(n).get("warmup", False)]
        raise ValueError(
            f"train.warmup_epochs={warmup_epochs} has no effect with lr scheduler "
            f"'{lr_scheduler}'; use one of {warmups} or set train.warmup_epochs 0"
        )
    return builder(
        optimizer,
        stepsize=_as_list(stepsize),
        gamma=gamma,
        max_epoch=max_epoch,
        warmup_epochs=warmup_epochs,
        warmup_lr=warmup_lr,
        **({"warmup_mode": warmup_mode} if SCHEDULERS.meta(lr_scheduler).get("warmup", False) else {}),
    )


def _as_list(stepsize):
    if isinstance(stepsize, (list, tuple)):
        return [int(s) for s in stepsize]
    return [int(stepsize)]


def _torchreid_scheduler(name, pick_stepsize):
    def build(optimizer, stepsize, gamma, max_epoch, warmup_epochs, warmup_lr):
        return compat.optim.build_lr_scheduler(
            optimizer, lr_scheduler=name, stepsize=pick_stepsize(stepsize), gamma=gamma,
            max_epoch=max_epoch,
        )

    build.__doc__ = f"torchreid's '{name}' scheduler."
    return build


# torchreid's own schedulers; single_step takes one int (the last entry), multi_step the list.
for _name, _pick in (
    ("single_step", lambda steps: steps[-1]),
    ("multi_step", lambda steps: steps),
    ("cosine", lambda steps: steps[-1]),
):
    SCHEDULERS.register(_name, _torchreid_scheduler(_name, _pick), warmup=False)


@SCHEDULERS.register("warmup_single_step", warmup=True)
def warmup_single_step(optimizer, stepsize, gamma, max_epoch, warmup_epochs, warmup_lr, warmup_mode="linear"):
    """Warm-up, then x``gamma`` every ``stepsize[-1]`` epochs (DSA-reID Sec. 4.2)."""
    return WarmupStepLR(optimizer, step_size=stepsize[-1], gamma=gamma,
                        warmup_epochs=warmup_epochs, warmup_lr=warmup_lr, warmup_mode=warmup_mode)


@SCHEDULERS.register("warmup_multi_step", warmup=True)
def warmup_multi_step(optimizer, stepsize, gamma, max_epoch, warmup_epochs, warmup_lr, warmup_mode="linear"):
    """Warm-up, then x``gamma`` at each absolute epoch in ``stepsize``."""
    return WarmupMultiStepLR(optimizer, milestones=stepsize, gamma=gamma,
                             warmup_epochs=warmup_epochs, warmup_lr=warmup_lr, warmup_mode=warmup_mode)
