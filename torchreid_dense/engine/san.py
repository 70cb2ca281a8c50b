"""Engine of SAN (AAAI 2020) step 2, ``san``: re-ID + texture (Sec. 3.2), interleaved with PIT batches."""
import torch
import torch.nn.functional as F

from .. import compat
from ..losses.san_loss import SANLoss
from ..models.san import load_san_pg_weights
from ..registry import ENGINES
from ..utils.device import resolve_use_gpu, unwrap
from .base import DenseEngine
from .pit import PITCycle, build_pit_loader, pit_loader_kwargs, pit_root

__all__ = ["SANEngine", "REC_TARGETS", "TEXTURE_OPTIMS", "PG_INITS", "build_texture_optimizer"]

REC_TARGETS = ("texture", "image")  # Table 2: reconstruct the texture (SAN) or the input image
TEXTURE_OPTIMS = ("adam", "amsgrad")  # optimisers of the texture step (san.texture_optim)
PG_INITS = ("all", "encoder", "none")  # what san.init_weights initialises (san.pg_init)


def build_texture_optimizer(model, optim="adam", lr=1e-5, betas=(0.5, 0.999), weight_decay=0.0):
    """The texture step's optimiser over SA-Enc and SA-Dec (SAN authors' code, docs/san_authors_code.md §2: Adam,
    lr 1e-5, betas (0.5, 0.999), no weight decay, never scheduled; their two Adams, one over the encoder and one
    over the decoder, are this one Adam, whose update is per parameter)."""
    if optim not in TEXTURE_OPTIMS:
        raise ValueError(f"san.texture_optim must be one of {TEXTURE_OPTIMS}; got '{optim}'")
    if len(betas) != 2:
        raise ValueError(f"san.texture_betas must be two numbers [beta1, beta2]; got {list(betas)}")
    san = unwrap(model)
    params = [p for m in (san.encoder, san.decoder) for p in m.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=float(lr), betas=tuple(float(b) for b in betas),
                            weight_decay=float(weight_decay), amsgrad=optim == "amsgrad")


@ENGINES.register("san")
class SANEngine(DenseEngine):
    """SAN step 2 (Sec. 3.2 "Training Scheme"): re-ID batches with ID + triplet + Rec + TR, interleaved
    with PIT batches (Rec only).

    Re-ID batches come from ``datamanager.train_loader`` and must carry ``texture`` and
    ``texture_valid`` (a ``<name>_texture`` data set) unless ``rec_target='image'``. After every
    ``pit_every`` re-ID batches, one PIT batch (from ``pit_loader``, cycled) makes its own
    optimisation step. Checkpoints store the PIT position, so a resumed run draws the same PIT
    batches.

    Args:
        datamanager: torchreid data manager.
        model (SAN): a ``san``/``san_r18`` model.
        optimizer, scheduler: as in torchreid engines.
        use_gpu (bool): use CUDA when available.
        pit_loader (iterable, optional): PIT batches (dicts ``img``, ``texture``, ``texture_valid``);
            None trains without synthetic data (SAN-basic, SAN w/ L_TR).
        pit_every (int): one PIT batch after every ``pit_every`` re-ID batches.
        rec_target (str): ``'texture'`` (SAN) or ``'image'`` (Table 2 "Enc-Dec rec. input": the
            input image, bilinearly resized to the decoder's texture size).
        texture_optimizer (Optimizer, optional): when given, each re-ID batch makes two steps (the SAN authors'
            code): ID + triplet with ``optimizer``, then a second forward at the updated weights and L_Rec + L_TR
            with ``texture_optimizer`` (:func:`build_texture_optimizer`); PIT batches step it too. None: one step
            of all four terms (the paper).
        amp, channels_last, checkpoint_every: see :meth:`DenseEngineMixin.setup_dense`.
        **loss_kwargs: :class:`~torchreid_dense.losses.SANLoss`'s ``weight_id``, ``weight_triplet``,
            ``weight_rec``, ``weight_tr``, ``pit_weight_rec``, ``margin``, ``tr_margin``, ``tr_reduction``,
            ``tr_normalize``,
            ``label_smooth`` and ``generator``.
    """

    def __init__(self, datamanager, model, optimizer, scheduler=None, use_gpu=True, pit_loader=None,
                 pit_every=1, rec_target="texture", texture_optimizer=None, amp="", channels_last=False,
                 checkpoint_every=0, **loss_kwargs):
        super().__init__(datamanager, use_gpu)
        if rec_target not in REC_TARGETS:
            raise ValueError(f"rec_target must be one of {REC_TARGETS}; got '{rec_target}'")
        if int(pit_every) < 1:
            raise ValueError(f"pit_every must be >= 1; got {pit_every}")
        if unwrap(model).decoder is None:
            raise ValueError("SANEngine needs a SAN with its decoder (with_decoder=True)")
        self.register_training(model, optimizer, scheduler)
        self.rec_target = rec_target
        self.pit_loader = pit_loader
        self.pit_every = int(pit_every)
        self._pit_iter = None
        self._pit_position = {"pit_cycle": 0, "pit_batch": 0}
        self._reid_steps = 0
        self.criterion = SANLoss(num_classes=self.datamanager.num_train_pids, use_gpu=self.use_gpu, **loss_kwargs)
        self.texture_optimizer = texture_optimizer
        self.texture_criterion = None
        if texture_optimizer is not None:  # the same terms, split over the two steps
            weights = ("weight_id", "weight_triplet", "weight_rec", "weight_tr")
            texture_terms = {k: v for k, v in loss_kwargs.items() if k not in weights[:2]}
            self.texture_criterion = SANLoss(num_classes=self.datamanager.num_train_pids, use_gpu=self.use_gpu,
                                             weight_id=0.0, weight_triplet=0.0, **texture_terms)
            if not self.texture_criterion.uses_decoder:
                raise ValueError("san.texture_step needs L_Rec or L_TR (san.weight_rec / san.weight_tr > 0)")
            self.criterion = SANLoss(num_classes=self.datamanager.num_train_pids, use_gpu=self.use_gpu,
                                     **{**loss_kwargs, "weight_rec": 0.0, "weight_tr": 0.0})
        self.setup_dense(amp, channels_last, checkpoint_every)

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Builds the engine from ``cfg.san.*`` (weights, ``use_tr``, ``use_pit``, ``pit_ratio``,
        ``pit_root``, ``pit_batch_size``, ``pit_weight_rec``, ``pit_val_fraction``, ``tr_reduction``, ``tr_normalize``,
        ``rec_target``, ``init_weights``, ``pg_init``, ``texture_step`` and ``texture_*``), torchreid's
        ``loss.triplet.margin`` and
        ``loss.softmax.label_smooth``, ``use_gpu``, ``train.amp/channels_last/checkpoint_every`` and
        ``data.*``/``train.batch_size``/``train.seed`` for the PIT loader; loads ``san.init_weights``
        (a SAN-PG checkpoint) into the model."""
        s = cfg.san
        use_gpu = resolve_use_gpu(cfg.use_gpu)
        if s.pg_init not in PG_INITS:
            raise ValueError(f"san.pg_init must be one of {PG_INITS}; got '{s.pg_init}'")
        if s.init_weights and s.pg_init != "none":
            load_san_pg_weights(model, s.init_weights, decoder=s.pg_init == "all")
        pit_loader = None
        if s.use_pit:
            pit_loader = build_pit_loader(
                pit_root(cfg, datamanager), split="all", use_gpu=use_gpu, **pit_loader_kwargs(cfg, model)
            )
        texture_optimizer = (build_texture_optimizer(model, s.texture_optim, s.texture_lr, s.texture_betas,
                                                     s.texture_weight_decay) if s.texture_step else None)
        return cls(
            datamanager, model, optimizer, scheduler=scheduler, use_gpu=use_gpu,
            pit_loader=pit_loader, pit_every=s.pit_ratio, texture_optimizer=texture_optimizer,
            weight_id=s.weight_id, weight_triplet=s.weight_triplet, weight_rec=s.weight_rec,
            weight_tr=s.weight_tr if s.use_tr else 0.0, pit_weight_rec=s.pit_weight_rec,
            margin=cfg.loss.triplet.margin, tr_margin=s.tr_margin, tr_reduction=s.tr_reduction,
            tr_normalize=s.tr_normalize, tr_pairing=s.tr_pairing, tr_anchor_reduction=s.tr_anchor_reduction,
            label_smooth=cfg.loss.softmax.label_smooth, rec_target=s.rec_target, **cls.dense_kwargs(cfg),
        )

    def _reconstruction_target(self, data, imgs):
        if self.rec_target == "image":
            size = unwrap(self.model).texture_size
            return F.interpolate(imgs.float(), size=size, mode="bilinear", align_corners=False), None
        if "texture" not in data:
            raise KeyError(
                "SANEngine: re-ID batches carry no 'texture'; train on a '<name>_texture' data set "
                "(e.g. sources='market1501_texture') or set san.rec_target='image'"
            )
        return self.to_device(data["texture"], data.get("texture_valid"))

    def forward_loss(self, data):
        """One re-ID batch: ID + triplet + Rec + TR (losses in fp32)."""
        imgs, pids = self.parse_data_for_train(data)
        imgs, pids = self.to_device(imgs, pids)
        target, valid = self._reconstruction_target(data, imgs)
        with self.autocast():  # SA-Dec is skipped when no term of this batch reads it (same loss and gradients)
            outputs = self.model(imgs, with_texture=self.criterion.uses_decoder)
        loss, parts = self.criterion(outputs, pids, target, valid)
        extra = {"acc": compat.metrics.accuracy(outputs["logits"].detach().float(), pids)[0]}
        if valid is not None:  # images without a texture sidecar: no L_Rec for them (the counted fallback)
            extra["no_texture"] = (~valid.flatten(1).any(1)).sum()
        return loss, parts, extra

    def texture_step(self, data):
        """The second step of a re-ID batch (SAN authors' code): L_Rec + L_TR at the weights after the first step,
        with ``texture_optimizer`` (a new forward: a graph is never reused across a change of its weights)."""
        imgs, pids = self.parse_data_for_train(data)
        imgs, pids = self.to_device(imgs, pids)
        target, valid = self._reconstruction_target(data, imgs)
        with self.autocast():
            outputs = self.model(imgs)
        loss, parts = self.texture_criterion(outputs, pids, target, valid)
        self.optimize(loss, parts, optimizer=self.texture_optimizer)
        return loss.detach(), parts

    def train_step(self, data):
        """One re-ID step (the texture step after it when split, and every ``pit_every`` calls one PIT step);
        returns the steps' summary (``loss``: the sum of the re-ID batch's steps)."""
        summary = super().train_step(data)
        if self.texture_optimizer is not None:
            loss, parts = self.texture_step(data)
            summary = {"loss": summary["loss"] + loss, **{k: v for k, v in summary.items() if k != "loss"}, **parts}
        self._reid_steps += 1
        if self.pit_loader is not None and self._reid_steps % self.pit_every == 0:
            summary.update(self.pit_step())
        return summary

    def pit_step(self):
        """One PIT (synthetic pair) step: reconstruction only (weights 0/0/1/0); returns ``{'loss_pit_rec': ...}``."""
        if self._pit_iter is None:
            self._pit_iter = PITCycle(self.pit_loader, self._pit_position["pit_cycle"],
                                      self._pit_position["pit_batch"])
        batch = next(self._pit_iter)
        self._pit_position = self._pit_iter.position()
        imgs, target, valid = self.to_device(batch["img"], batch["texture"], batch.get("texture_valid"))
        with self.autocast():
            outputs = self.model(imgs, texture_only=True)  # the ID head never sees a synthetic image
        loss, parts = self.criterion(outputs, rec_target=target, rec_valid=valid, pit=True)
        self.optimize(loss, {"loss_pit_rec": parts["loss_rec"]}, optimizer=self.texture_optimizer)
        return {"loss_pit_rec": parts["loss_rec"]}

    def extra_state(self):
        state = {"reid_steps": self._reid_steps, **self._pit_position}
        if self.texture_optimizer is not None:
            state["texture_optimizer"] = self.texture_optimizer.state_dict()
        return state

    def load_extra_state(self, state):
        if self.texture_optimizer is not None:
            if "texture_optimizer" not in state:
                raise ValueError("the checkpoint was trained without san.texture_step and holds no texture optimiser; "
                                 "resume it with san.texture_step False, or start a new run")
            self.texture_optimizer.load_state_dict(state["texture_optimizer"])
        self._reid_steps = int(state.get("reid_steps", 0))
        self._pit_position = {"pit_cycle": int(state.get("pit_cycle", 0)), "pit_batch": int(state.get("pit_batch", 0))}
        self._pit_iter = None
