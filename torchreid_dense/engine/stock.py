"""torchreid's stock image engines, registered as ENGINES ``softmax`` and ``triplet``.

``tools/main.py`` trains stock torchreid models (``resnet50``, ``osnet_x1_0``, ...) with these,
picked by ``loss.name``, exactly as deep-person-reid's ``scripts/main.py`` would, with the
plugin's shared machinery (:mod:`torchreid_dense.engine.base`: mixed precision, exact resume,
checkpoints, NaN stop, the fast evaluator, DDP). They remain subclasses of torchreid's
``ImageSoftmaxEngine`` / ``ImageTripletEngine`` (same constructor and criteria, except that the
triplet term is the plugin's vectorised :class:`~torchreid_dense.losses.hard_mine_triplet.BatchHardTripletLoss`,
mined over the whole global batch under DDP).
"""
from .. import compat
from ..losses.hard_mine_triplet import BatchHardTripletLoss
from ..registry import ENGINES
from ..utils.distributed import all_gather_tensor, all_gather_with_grad
from .base import DenseEngineMixin

__all__ = ["StockSoftmaxEngine", "StockTripletEngine"]


def _fp32(outputs):
    """Model outputs (a tensor, or a tuple/list for deep supervision) in fp32."""
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(o.float() for o in outputs)
    return outputs.float()


def _accuracy(logits, pids):
    """Top-1 accuracy (%) of the (first) logits, a scalar tensor (read back with the step's summary)."""
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits
    return compat.metrics.accuracy(logits.detach(), pids)[0]


@ENGINES.register("softmax")
class StockSoftmaxEngine(DenseEngineMixin, compat.ImageSoftmaxEngine):
    """torchreid's ``ImageSoftmaxEngine`` (cross-entropy, optional label smoothing).

    Args: torchreid's, plus ``amp``, ``channels_last``, ``checkpoint_every`` (see
    :meth:`DenseEngineMixin.setup_dense`).
    """

    def __init__(self, datamanager, model, optimizer, scheduler=None, use_gpu=True, label_smooth=True,
                 amp="", channels_last=False, checkpoint_every=0):
        super().__init__(datamanager, model, optimizer, scheduler=scheduler, use_gpu=use_gpu,
                         label_smooth=label_smooth)
        self.setup_dense(amp, channels_last, checkpoint_every)

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Build from ``use_gpu``, ``loss.softmax.*`` and ``train.amp/channels_last/checkpoint_every``."""
        return cls(datamanager, model, optimizer=optimizer, scheduler=scheduler, use_gpu=cfg.use_gpu,
                   label_smooth=cfg.loss.softmax.label_smooth, **cls.dense_kwargs(cfg))

    def forward_loss(self, data):
        imgs, pids = self.parse_data_for_train(data)
        imgs, pids = self.to_device(imgs, pids)
        with self.autocast():
            outputs = self.model(imgs)
        outputs = _fp32(outputs)
        loss = self.compute_loss(self.criterion, outputs, pids)
        return loss, {}, {"acc": _accuracy(outputs, pids)}


@ENGINES.register("triplet")
class StockTripletEngine(DenseEngineMixin, compat.ImageTripletEngine):
    """torchreid's ``ImageTripletEngine`` (batch-hard triplet + weighted cross-entropy).

    Args: torchreid's, plus ``amp``, ``channels_last``, ``checkpoint_every``.
    """

    def __init__(self, datamanager, model, optimizer, margin=0.3, weight_t=1, weight_x=1, scheduler=None,
                 use_gpu=True, label_smooth=True, amp="", channels_last=False, checkpoint_every=0):
        super().__init__(datamanager, model, optimizer, margin=margin, weight_t=weight_t, weight_x=weight_x,
                         scheduler=scheduler, use_gpu=use_gpu, label_smooth=label_smooth)
        self.criterion_t = BatchHardTripletLoss(margin=margin)
        self.setup_dense(amp, channels_last, checkpoint_every)

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Build from ``use_gpu``, ``loss.triplet.*``, ``loss.softmax.label_smooth`` and ``train.amp/...``."""
        return cls(datamanager, model, optimizer=optimizer, margin=cfg.loss.triplet.margin,
                   weight_t=cfg.loss.triplet.weight_t, weight_x=cfg.loss.triplet.weight_x, scheduler=scheduler,
                   use_gpu=cfg.use_gpu, label_smooth=cfg.loss.softmax.label_smooth, **cls.dense_kwargs(cfg))

    def _global_triplet(self, features, pids):
        """Batch-hard triplet over the global P x K batch (features gathered from every DDP rank)."""
        return self.criterion_t(all_gather_with_grad(features.float()), all_gather_tensor(pids))

    def forward_loss(self, data):
        imgs, pids = self.parse_data_for_train(data)
        imgs, pids = self.to_device(imgs, pids)
        with self.autocast():
            outputs, features = self.model(imgs)
        outputs, features = _fp32(outputs), _fp32(features)
        loss, components, extra = 0.0, {}, {}
        if self.weight_t > 0:
            components["loss_t"] = self.compute_loss(self._global_triplet, features, pids)
            loss = loss + self.weight_t * components["loss_t"]
        if self.weight_x > 0:
            components["loss_x"] = self.compute_loss(self.criterion_x, outputs, pids)
            loss = loss + self.weight_x * components["loss_x"]
            extra["acc"] = _accuracy(outputs, pids)
        return loss, components, extra
