"""Engine of SAN (AAAI 2020) step 1, ``san_pg``: SAN-PG, the encoder-decoder trained on PIT pairs (Sec. 3.1)."""
from ..data.pit import PITDataManager
from ..data.texture_io import IMAGENET_STD
from ..losses.reconstruction import ReconstructionLoss
from ..registry import ENGINES
from ..utils.device import resolve_use_gpu, unwrap
from .base import DenseEngine
from .pit import build_pit_loader, pit_loader_kwargs, pit_root
from ..data.texture_io import texture_norm
from .texture_eval import evaluate_texture_l1

__all__ = ["SANPGEngine"]


@ENGINES.register("san_pg")
class SANPGEngine(DenseEngine):
    """SAN-PG step 1 (Sec. 3.1): encoder + decoder trained with L_Rec only on PIT pairs.

    ``datamanager.train_loader`` yields PIT batches (a :class:`~torchreid_dense.data.pit.PITDataManager`);
    :meth:`test` reports the texture L1 on ``datamanager.val_loader`` (held-out textures) instead of
    re-ID metrics (lower is better): ``last_metrics['pit_val']`` and the checkpoint fields ``texture_l1`` /
    ``texture_l1_pixel``; the checkpoint's ``rank1`` stays 0 (SAN-PG has no re-ID metric). Its one loss
    term is logged alone, as ``loss_rec``.
    """

    log_total = False

    def __init__(self, datamanager, model, optimizer, scheduler=None, use_gpu=True, weight_rec=1.0,
                 norm_std=IMAGENET_STD, amp="", channels_last=False, checkpoint_every=0):
        super().__init__(datamanager, use_gpu)
        if unwrap(model).decoder is None:
            raise ValueError("SANPGEngine needs a model with a decoder (san_pg / san_pg_r18)")
        self.register_training(model, optimizer, scheduler)
        self.weight_rec = float(weight_rec)
        self.norm_std = tuple(norm_std)
        self.criterion = ReconstructionLoss()
        self.setup_dense(amp, channels_last, checkpoint_every)

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Builds PIT train/held-out loaders from ``cfg.san.pit_root`` (split by texture with
        ``san.pit_val_fraction``; the re-ID ``datamanager`` is not used unless it already is a
        PITDataManager); ``san.pit_weight_rec``; ``train.amp/channels_last/checkpoint_every``."""
        use_gpu = resolve_use_gpu(cfg.use_gpu)
        kwargs = pit_loader_kwargs(cfg, model)
        if not isinstance(datamanager, PITDataManager):
            root = pit_root(cfg, datamanager)
            if kwargs["val_fraction"] > 0:
                train = build_pit_loader(root, split="train", use_gpu=use_gpu, **kwargs)
                val = build_pit_loader(root, split="val", use_gpu=use_gpu, **kwargs)
            else:
                train, val = build_pit_loader(root, split="all", use_gpu=use_gpu, **kwargs), None
            datamanager = PITDataManager(train, val, kwargs["height"], kwargs["width"])
        return cls(datamanager, model, optimizer, scheduler=scheduler, use_gpu=use_gpu,
                   weight_rec=cfg.san.pit_weight_rec, **cls.dense_kwargs(cfg),
                   norm_std=texture_norm(kwargs["texture_range"], kwargs["norm_mean"], kwargs["norm_std"])[1])

    def forward_loss(self, data):
        imgs, target, valid = self.to_device(data["img"], data["texture"], data.get("texture_valid"))
        with self.autocast():
            out = self.model(imgs)
        texture = out["texture"] if isinstance(out, dict) else out
        loss_rec = self.criterion(texture, target, valid)
        return self.weight_rec * loss_rec, {"loss_rec": loss_rec.detach()}, {}

    def test(self, *args, **kwargs):
        """Held-out texture L1 into ``last_metrics['pit_val']`` instead of re-ID metrics; returns 0.0, the rank-1
        torchreid's ``run`` hands to ``save_model`` (SAN-PG has none)."""
        loader = getattr(self.datamanager, "val_loader", None)
        if loader is None:
            print("=> san_pg: no held-out PIT pairs (san.pit_val_fraction=0), nothing to evaluate")
            return 0.0
        res = evaluate_texture_l1(self.model, loader, self.norm_std, self.use_gpu)
        print(
            f"=> san_pg held-out texture L1: {res['l1']:.4f} (normalised), "
            f"{res['l1_pixel']:.4f} (pixels in [0,1]) over {res['num_images']} images"
        )
        self.last_metrics = {"pit_val": {"texture_l1": res["l1"], "texture_l1_pixel": res["l1_pixel"]}}
        if self.writer is not None:
            self.writer.add_scalar("Test/pit_texture_l1", res["l1"], self.epoch)
        return 0.0

    def checkpoint_state(self, epoch, batch, rank1=0.0):
        """The checkpoint with the last held-out texture L1 in fields of its own (``texture_l1``, normalised
        units; ``texture_l1_pixel``, in [0, 1] pixel units), once evaluated."""
        state = super().checkpoint_state(epoch, batch, rank1=rank1)
        state.update((self.last_metrics or {}).get("pit_val", {}))
        return state
