"""Training engine of DSA-reID (CVPR 2019, Sec. 3.2.4): joint two-stream training, MF-Stream evaluation."""
from .. import compat
from ..losses.dsa_loss import DSALoss
from ..registry import ENGINES
from ..utils.device import unwrap
from .base import DenseEngine

__all__ = ["DSAEngine"]


@ENGINES.register("dsa")
class DSAEngine(DenseEngine):
    """torchreid ``Engine`` training :class:`~torchreid_dense.models.dsa_reid.DSAReID` with :class:`DSALoss`.

    Training batches must carry ``dsap`` (the ``<dataset>_dsap`` data sets add it). torchreid's
    ``run()``/``test()`` work unchanged: evaluation calls ``model(imgs)``, the MF-Stream feature
    ``[fG, fL]``; for the fused-feature ablations (``feature='fused*'``) the batch's ``dsap`` is
    passed as well. ``forward_backward`` returns every loss component (unweighted), the weighted
    total as ``loss`` and the accuracy of the zG classifier, so the run loop prints each one.

    Args:
        datamanager: torchreid ``ImageDataManager`` (``num_train_pids`` sizes the ID losses).
        model (DSAReID): the model.
        optimizer: built optimizer.
        scheduler: built LR scheduler (the paper's warm-up + step decay), or None.
        use_gpu (bool): train on the GPU when available.
        amp, channels_last, checkpoint_every: see :meth:`DenseEngineMixin.setup_dense`.
        **loss_kwargs: :class:`DSALoss`'s ``weight_id_mf``, ``weight_triplet``, ``weight_id_fused`` (paper:
            0.5, 1.5, 1.0), ``label_smooth``, ``margin`` and ``part_id_reduction``; its ``branches`` are
            the model's.
    """

    def __init__(self, datamanager, model, optimizer, scheduler=None, use_gpu=True, amp="", channels_last=False,
                 checkpoint_every=0, **loss_kwargs):
        super().__init__(datamanager, use_gpu)
        self.register_training(model, optimizer, scheduler)
        self.criterion = DSALoss(num_classes=datamanager.num_train_pids, use_gpu=self.use_gpu,
                                 branches=getattr(unwrap(model), "branches", "both"), **loss_kwargs)
        self.setup_dense(amp, channels_last, checkpoint_every)

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Build from a yacs config: ``dsa.weight_id_mf``, ``dsa.weight_triplet``, ``dsa.weight_id_fused``,
        ``dsa.part_id_reduction``, ``loss.softmax.label_smooth``, ``loss.triplet.margin``, ``use_gpu`` and
        ``train.amp/channels_last/checkpoint_every``."""
        return cls(
            datamanager,
            model,
            optimizer,
            scheduler=scheduler,
            use_gpu=cfg.use_gpu,
            weight_id_mf=cfg.dsa.weight_id_mf,
            weight_triplet=cfg.dsa.weight_triplet,
            weight_id_fused=cfg.dsa.weight_id_fused,
            label_smooth=cfg.loss.softmax.label_smooth,
            margin=cfg.loss.triplet.margin,
            part_id_reduction=cfg.dsa.part_id_reduction,
            **cls.dense_kwargs(cfg),
        )

    def parse_data_for_train(self, data):
        """``(imgs, pids, dsap)``; ``dsap`` is None when the batch has none (the model then explains)."""
        return data["img"], data["pid"], data.get("dsap")

    def forward_loss(self, data):
        imgs, pids, dsap = self.parse_data_for_train(data)
        imgs, pids, dsap = self.to_device(imgs, pids, dsap)
        with self.autocast():
            outputs = self.model(imgs, dsap)
        total, components = self.criterion(outputs, pids)  # fp32 inside
        logits = outputs.get("logits_zg", outputs.get("logits_zl"))
        return total, components, {"acc": compat.metrics.accuracy(logits.detach().float(), pids)[0]}

    def eval_features(self, data):
        """``model(imgs)``, or ``model(imgs, dsap)`` with the batch's ``dsap`` when the model's eval feature is a
        fused one (the ``feature='fused*'`` ablations)."""
        model = unwrap(self.model)
        (imgs,) = self.to_device(self.parse_data_for_eval(data)[0])
        if not getattr(model, "eval_needs_dsap", False):
            return model(imgs)
        dsap = data.get("dsap")
        return model(imgs, dsap.to(imgs.device) if dsap is not None else None)
