"""torchreid's ``ImageTripletEngine`` with the plugin's shared machinery, registered as ENGINE ``triplet``; its
triplet term is the vectorised batch-hard loss over the global P x K batch."""
from .. import compat
from ..losses.hard_mine_triplet import BatchHardTripletLoss
from ..registry import ENGINES
from ..utils.distributed import all_gather_tensor, all_gather_with_grad
from .base import DenseEngineMixin
from .stock_softmax import fp32_outputs, top1_accuracy

__all__ = ["StockTripletEngine"]


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
        outputs, features = fp32_outputs(outputs), fp32_outputs(features)
        loss, components, extra = 0.0, {}, {}
        if self.weight_t > 0:
            components["loss_t"] = self.compute_loss(self._global_triplet, features, pids)
            loss = loss + self.weight_t * components["loss_t"]
        if self.weight_x > 0:
            components["loss_x"] = self.compute_loss(self.criterion_x, outputs, pids)
            loss = loss + self.weight_x * components["loss_x"]
            extra["acc"] = top1_accuracy(outputs, pids)
        return loss, components, extra
