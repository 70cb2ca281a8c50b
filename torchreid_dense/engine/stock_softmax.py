"""torchreid's ``ImageSoftmaxEngine`` with the plugin's shared machinery, registered as ENGINE ``softmax``."""
from .. import compat
from ..registry import ENGINES
from .base import DenseEngineMixin

__all__ = ["StockSoftmaxEngine", "fp32_outputs", "top1_accuracy"]


def fp32_outputs(outputs):
    """Model outputs (a tensor, or a tuple/list for deep supervision) in fp32."""
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(o.float() for o in outputs)
    return outputs.float()


def top1_accuracy(logits, pids):
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
        outputs = fp32_outputs(outputs)
        loss = self.compute_loss(self.criterion, outputs, pids)
        return loss, {}, {"acc": top1_accuracy(outputs, pids)}
