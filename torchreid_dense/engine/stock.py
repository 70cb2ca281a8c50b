"""torchreid's stock image engines, registered as ENGINES ``softmax`` and ``triplet``.

``tools/main.py`` trains stock torchreid models (``resnet50``, ``osnet_x1_0``, ...) with these,
picked by ``loss.name``, exactly as deep-person-reid's ``scripts/main.py`` would.
"""
from .. import compat
from ..registry import ENGINES

__all__ = ["PlainCheckpointMixin", "StockSoftmaxEngine", "StockTripletEngine"]


class PlainCheckpointMixin:
    """Checkpoints hold a Python float rank-1 so ``torch.load(weights_only=True)`` can read them.

    torchreid's evaluator returns a NumPy scalar, which torch >= 2.6 refuses to unpickle by
    default (``load_pretrained_weights`` would then fail on our own checkpoints).
    """

    def save_model(self, epoch, rank1, save_dir, is_best=False):
        super().save_model(epoch, float(rank1), save_dir, is_best=is_best)


@ENGINES.register("softmax")
class StockSoftmaxEngine(PlainCheckpointMixin, compat.ImageSoftmaxEngine):
    """torchreid's ``ImageSoftmaxEngine`` (cross-entropy, optional label smoothing)."""

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Build from ``use_gpu`` and ``loss.softmax.*``."""
        return cls(
            datamanager,
            model,
            optimizer=optimizer,
            scheduler=scheduler,
            use_gpu=cfg.use_gpu,
            label_smooth=cfg.loss.softmax.label_smooth,
        )


@ENGINES.register("triplet")
class StockTripletEngine(PlainCheckpointMixin, compat.ImageTripletEngine):
    """torchreid's ``ImageTripletEngine`` (batch-hard triplet + weighted cross-entropy)."""

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Build from ``use_gpu``, ``loss.triplet.*`` and ``loss.softmax.label_smooth``."""
        return cls(
            datamanager,
            model,
            optimizer=optimizer,
            margin=cfg.loss.triplet.margin,
            weight_t=cfg.loss.triplet.weight_t,
            weight_x=cfg.loss.triplet.weight_x,
            scheduler=scheduler,
            use_gpu=cfg.use_gpu,
            label_smooth=cfg.loss.softmax.label_smooth,
        )
