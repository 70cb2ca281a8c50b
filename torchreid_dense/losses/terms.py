"""What the combined criteria (DSA-reID's :class:`DSALoss`, SAN's :class:`SANLoss`) build their terms from."""
from .. import compat

__all__ = ["check_weights", "check_choice", "id_criterion"]


def check_weights(loss_name, **weights):
    """``weights`` (name -> value) as floats; refuses a negative one, naming ``loss_name`` (e.g. ``'DSA'``)."""
    negative = {k: v for k, v in weights.items() if v < 0}
    if negative:
        raise ValueError(f"{loss_name} loss weights must be >= 0; got {negative}")
    return {k: float(v) for k, v in weights.items()}


def check_choice(loss_name, name, value, choices, key):
    """``value`` if one of ``choices``; else a ValueError naming ``loss_name``, the argument and its config ``key``."""
    if value not in choices:
        raise ValueError(f"{loss_name} loss: {name} must be one of {tuple(choices)}; got {value!r} (set the config "
                         f"key {key} to one of them)")
    return value


def id_criterion(num_classes, label_smooth=True, use_gpu=False):
    """The ID loss: torchreid's cross entropy, label-smoothed (eps 0.1) when ``label_smooth``.

    ``use_gpu`` puts its targets on the GPU (torchreid's ``CrossEntropyLoss`` argument).
    """
    return compat.losses.CrossEntropyLoss(num_classes=num_classes, use_gpu=use_gpu, label_smooth=label_smooth)
