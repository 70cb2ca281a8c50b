"""Engines of SAN (AAAI 2020): ``san`` (step 2, re-ID + texture, Sec. 3.2) and ``san_pg`` (step 1, Sec. 3.1)."""
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from .. import compat
from ..data.pit import PITDataManager, PITDataset, split_pit_by_texture
from ..data.texture_io import IMAGENET_MEAN, IMAGENET_STD
from ..losses.reconstruction import ReconstructionLoss
from ..losses.san_loss import SANLoss
from ..models.san import load_san_pg_weights
from ..registry import ENGINES
from ..utils.distributed import get_rank, get_world_size
from .base import DenseEngine, unwrap
from .loader import ResumableBatchSampler

__all__ = [
    "SANEngine",
    "SANPGEngine",
    "build_pit_loader",
    "evaluate_texture_l1",
    "REC_TARGETS",
]

REC_TARGETS = ("texture", "image")  # Table 2: reconstruct the texture (SAN) or the input image
_PIT_SPLITS = ("all", "train", "val")


_bare = unwrap


class _PITCycle:
    """Endless, resumable iteration over a PIT loader: pass k over the pairs uses sampler epoch k.

    ``position()`` / the constructor's ``cycle`` and ``batch`` give the pass and the batches of it
    already consumed, so a resumed run draws the same PIT batches as an uninterrupted one.
    """

    def __init__(self, loader, cycle=0, batch=0):
        self.loader, self.cycle, self.batch = loader, int(cycle), int(batch)
        self._it = None

    def position(self):
        return {"pit_cycle": self.cycle, "pit_batch": self.batch}

    def __iter__(self):
        return self

    def __next__(self):
        for _ in range(2):  # a resumed pass may be exhausted already; a fresh pass must yield
            fresh = self.batch == 0
            if self._it is None:
                batch_sampler = getattr(self.loader, "batch_sampler", None)
                if hasattr(batch_sampler, "set_epoch"):
                    batch_sampler.set_epoch(self.cycle)
                    batch_sampler.set_start_batch(self.batch)
                self._it = iter(self.loader)
            try:
                item = next(self._it)
            except StopIteration:
                if fresh:
                    break
                self._it, self.cycle, self.batch = None, self.cycle + 1, 0
                continue
            self.batch += 1
            return item
        raise ValueError("the PIT loader yields no batch (fewer pairs than one batch with drop_last?)")


def build_pit_loader(ds_dir, height=256, width=128, texture_size=(240, 160), batch_size=32, workers=0,
                     norm_mean=IMAGENET_MEAN, norm_std=IMAGENET_STD, split="all", val_fraction=0.1,
                     seed=0, shuffle=None, use_gpu=False):
    """A DataLoader of PIT pairs (Sec. 3.1) from ``<ds_dir>/pit/*.jpg`` and their texture sidecars.

    Args:
        ds_dir (str): data-set directory with ``pit/`` and ``textures/pit/``.
        height, width (int): image size; texture_size (tuple): ``(Ht, Wt)`` (the decoder's output).
        split (str): ``'all'`` pairs, or the ``'train'`` / ``'val'`` part of
            :func:`split_pit_by_texture` (held-out textures, ``val_fraction``, ``seed``).
        shuffle (bool, optional): defaults to True except for ``'val'`` (which also keeps the last
            partial batch).
        seed (int): split seed, and the shuffling seed of training loaders (whose order depends only on
            ``(seed, pass)``; their batch sampler is a resumable
            :class:`~torchreid_dense.engine.loader.ResumableBatchSampler`, partitioned over DDP ranks).

    Returns:
        DataLoader of dicts ``img``, ``texture``, ``texture_valid``, ``impath``.
    """
    if split not in _PIT_SPLITS:
        raise ValueError(f"PIT split must be one of {_PIT_SPLITS}; got '{split}'")
    paths = PITDataset.list_images(ds_dir)
    if split != "all":
        train, val = split_pit_by_texture(paths, val_fraction, seed)
        paths = train if split == "train" else val
        if not paths:
            raise ValueError(f"the '{split}' PIT split of '{ds_dir}' is empty (val_fraction={val_fraction})")
    dataset = PITDataset(ds_dir, height, width, texture_size, norm_mean, norm_std, image_paths=paths)
    training = split != "val"
    shuffle = training if shuffle is None else shuffle
    if not training:
        return DataLoader(dataset, batch_size=int(batch_size), shuffle=shuffle, num_workers=int(workers),
                          pin_memory=use_gpu, drop_last=False)
    # training: order from (seed, pass) only, partitioned over DDP ranks, resumable mid-pass
    sampler = DistributedSampler(dataset, num_replicas=get_world_size(), rank=get_rank(), shuffle=shuffle,
                                 seed=int(seed), drop_last=get_world_size() > 1)
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_sampler=ResumableBatchSampler(sampler, int(batch_size), drop_last=len(sampler) >= int(batch_size)),
        num_workers=int(workers),
        pin_memory=use_gpu,
        generator=generator,
    )


@torch.no_grad()
def evaluate_texture_l1(model, loader, norm_std=IMAGENET_STD, use_gpu=False):
    """Texture L1 of a texture-predicting model over a PIT loader (valid texels only).

    Returns:
        dict: ``l1`` (normalised units, the training loss), ``l1_pixel`` (in [0, 1] pixel units,
        i.e. the error times the per-channel std) and ``num_images``.
    """
    was_training = model.training
    model.eval()
    std = torch.tensor(norm_std, dtype=torch.float32).view(1, 3, 1, 1)
    total = total_px = count = 0.0
    n_img = 0
    try:
        for batch in loader:
            imgs, target, valid = batch["img"], batch["texture"], batch["texture_valid"]
            if use_gpu:
                imgs, target, valid = imgs.cuda(), target.cuda(), valid.cuda()
            pred = _bare(model).predict_texture(imgs).float()
            diff = (pred - target.float()).abs()
            mask = valid.to(diff.dtype).expand_as(diff)
            total += float((diff * mask).sum())
            total_px += float((diff * std.to(diff.device) * mask).sum())
            count += float(mask.sum())
            n_img += imgs.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("no valid texel in the evaluation loader")
    return {"l1": total / count, "l1_pixel": total_px / count, "num_images": n_img}


def _pit_root(cfg, datamanager):
    """``san.pit_root``, or the training data set's ``dataset_dir`` when that key is ''."""
    root = cfg.san.pit_root
    if not root:
        dataset = getattr(getattr(datamanager, "train_loader", None), "dataset", None)
        root = getattr(dataset, "dataset_dir", "")
        if not root:
            raise ValueError(
                "SAN with PIT batches needs san.pit_root (a SynthReID directory with pit/ pairs) when the "
                "training set is not a single synthreid data set; or set san.use_pit=False (SAN-basic)"
            )
    return root


def _pit_loader_kwargs(cfg, model):
    return dict(
        height=cfg.data.height,
        width=cfg.data.width,
        texture_size=_bare(model).texture_size,
        batch_size=cfg.san.pit_batch_size or cfg.train.batch_size,
        workers=cfg.data.workers,
        norm_mean=tuple(cfg.data.norm_mean) or IMAGENET_MEAN,
        norm_std=tuple(cfg.data.norm_std) or IMAGENET_STD,
        val_fraction=cfg.san.pit_val_fraction,
        seed=cfg.train.seed,
    )


def _to_device(use_gpu, *tensors):
    return tuple(t.cuda() if (use_gpu and t is not None) else t for t in tensors)


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
        weight_id, weight_triplet, weight_rec, weight_tr, pit_weight_rec, margin, tr_margin,
        tr_reduction, label_smooth, generator: see :class:`~torchreid_dense.losses.SANLoss`.
        rec_target (str): ``'texture'`` (SAN) or ``'image'`` (Table 2 "Enc-Dec rec. input": the
            input image, bilinearly resized to the decoder's texture size).
        amp, channels_last, checkpoint_every: see :meth:`DenseEngineMixin.setup_dense`.
    """

    def __init__(self, datamanager, model, optimizer, scheduler=None, use_gpu=True, pit_loader=None,
                 pit_every=1, weight_id=0.5, weight_triplet=1.5, weight_rec=1.0, weight_tr=1.0,
                 pit_weight_rec=1.0, margin=0.3, tr_margin=0.3, tr_reduction="mean",
                 label_smooth=True, rec_target="texture", generator=None, amp="", channels_last=False,
                 checkpoint_every=0):
        super().__init__(datamanager, use_gpu)
        if rec_target not in REC_TARGETS:
            raise ValueError(f"rec_target must be one of {REC_TARGETS}; got '{rec_target}'")
        if int(pit_every) < 1:
            raise ValueError(f"pit_every must be >= 1; got {pit_every}")
        if _bare(model).decoder is None:
            raise ValueError("SANEngine needs a SAN with its decoder (with_decoder=True)")
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.register_model("model", model, optimizer, scheduler)
        self.rec_target = rec_target
        self.pit_loader = pit_loader
        self.pit_every = int(pit_every)
        self._pit_iter = None
        self._pit_position = {"pit_cycle": 0, "pit_batch": 0}
        self._reid_steps = 0
        self.criterion = SANLoss(
            num_classes=self.datamanager.num_train_pids,
            weight_id=weight_id, weight_triplet=weight_triplet, weight_rec=weight_rec,
            weight_tr=weight_tr, pit_weight_rec=pit_weight_rec, margin=margin,
            tr_margin=tr_margin, tr_reduction=tr_reduction, label_smooth=label_smooth,
            use_gpu=self.use_gpu, generator=generator,
        )
        self.setup_dense(amp, channels_last, checkpoint_every)

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Builds the engine from ``cfg.san.*`` (weights, ``use_tr``, ``use_pit``, ``pit_ratio``,
        ``pit_root``, ``pit_batch_size``, ``pit_weight_rec``, ``pit_val_fraction``, ``tr_reduction``,
        ``rec_target``, ``init_weights``), torchreid's ``loss.triplet.margin`` and
        ``loss.softmax.label_smooth``, ``use_gpu``, ``train.amp/channels_last/checkpoint_every`` and
        ``data.*``/``train.batch_size``/``train.seed`` for the PIT loader; loads ``san.init_weights``
        (a SAN-PG checkpoint) into the model."""
        s = cfg.san
        use_gpu = bool(cfg.use_gpu) and torch.cuda.is_available()
        if s.init_weights:
            load_san_pg_weights(model, s.init_weights)
        pit_loader = None
        if s.use_pit:
            pit_loader = build_pit_loader(
                _pit_root(cfg, datamanager), split="all", use_gpu=use_gpu, **_pit_loader_kwargs(cfg, model)
            )
        return cls(
            datamanager, model, optimizer, scheduler=scheduler, use_gpu=use_gpu,
            pit_loader=pit_loader, pit_every=s.pit_ratio,
            weight_id=s.weight_id, weight_triplet=s.weight_triplet, weight_rec=s.weight_rec,
            weight_tr=s.weight_tr if s.use_tr else 0.0, pit_weight_rec=s.pit_weight_rec,
            margin=cfg.loss.triplet.margin, tr_margin=s.tr_margin, tr_reduction=s.tr_reduction,
            label_smooth=cfg.loss.softmax.label_smooth, rec_target=s.rec_target, **cls.dense_kwargs(cfg),
        )

    def _reconstruction_target(self, data, imgs):
        if self.rec_target == "image":
            size = _bare(self.model).texture_size
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
        with self.autocast():
            outputs = self.model(imgs)
        loss, parts = self.criterion(outputs, pids, target, valid)
        extra = {"acc": compat.metrics.accuracy(outputs["logits"].detach().float(), pids)[0].item()}
        if valid is not None:  # images without a texture sidecar: no L_Rec for them (the counted fallback)
            extra["no_texture"] = float((~valid.flatten(1).any(1)).sum())
        return loss, parts, extra

    def forward_backward(self, data):
        """One re-ID step (and, every ``pit_every`` calls, one PIT step); returns scalar components."""
        summary = super().forward_backward(data)
        self._reid_steps += 1
        if self.pit_loader is not None and self._reid_steps % self.pit_every == 0:
            summary.update(self.pit_step())
        return summary

    def pit_step(self):
        """One PIT (synthetic pair) step: reconstruction only (weights 0/0/1/0)."""
        if self._pit_iter is None:
            self._pit_iter = _PITCycle(self.pit_loader, self._pit_position["pit_cycle"],
                                       self._pit_position["pit_batch"])
        batch = next(self._pit_iter)
        self._pit_position = self._pit_iter.position()
        imgs, target, valid = self.to_device(batch["img"], batch["texture"], batch.get("texture_valid"))
        with self.autocast():
            outputs = self.model(imgs, texture_only=True)  # the ID head never sees a synthetic image
        loss, parts = self.criterion(outputs, rec_target=target, rec_valid=valid, pit=True)
        self.optimize(loss, {"loss_pit_rec": parts["loss_rec"]})
        return {"loss_pit_rec": parts["loss_rec"]}

    def extra_state(self):
        return {"reid_steps": self._reid_steps, **self._pit_position}

    def load_extra_state(self, state):
        self._reid_steps = int(state.get("reid_steps", 0))
        self._pit_position = {"pit_cycle": int(state.get("pit_cycle", 0)), "pit_batch": int(state.get("pit_batch", 0))}
        self._pit_iter = None


@ENGINES.register("san_pg")
class SANPGEngine(DenseEngine):
    """SAN-PG step 1 (Sec. 3.1): encoder + decoder trained with L_Rec only on PIT pairs.

    ``datamanager.train_loader`` yields PIT batches (a :class:`~torchreid_dense.data.pit.PITDataManager`);
    :meth:`test` reports the texture L1 on ``datamanager.val_loader`` (held-out textures) instead of
    re-ID metrics (lower is better): ``last_metrics['pit_val']`` and the checkpoint fields ``texture_l1`` /
    ``texture_l1_pixel``; the checkpoint's ``rank1`` stays 0 (SAN-PG has no re-ID metric).
    """

    def __init__(self, datamanager, model, optimizer, scheduler=None, use_gpu=True, weight_rec=1.0,
                 norm_std=IMAGENET_STD, amp="", channels_last=False, checkpoint_every=0):
        super().__init__(datamanager, use_gpu)
        if _bare(model).decoder is None:
            raise ValueError("SANPGEngine needs a model with a decoder (san_pg / san_pg_r18)")
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.register_model("model", model, optimizer, scheduler)
        self.weight_rec = float(weight_rec)
        self.norm_std = tuple(norm_std)
        self.criterion = ReconstructionLoss()
        self.setup_dense(amp, channels_last, checkpoint_every)

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Builds PIT train/held-out loaders from ``cfg.san.pit_root`` (split by texture with
        ``san.pit_val_fraction``; the re-ID ``datamanager`` is not used unless it already is a
        PITDataManager); ``san.pit_weight_rec``; ``train.amp/channels_last/checkpoint_every``."""
        use_gpu = bool(cfg.use_gpu) and torch.cuda.is_available()
        kwargs = _pit_loader_kwargs(cfg, model)
        if not isinstance(datamanager, PITDataManager):
            root = _pit_root(cfg, datamanager)
            if kwargs["val_fraction"] > 0:
                train = build_pit_loader(root, split="train", use_gpu=use_gpu, **kwargs)
                val = build_pit_loader(root, split="val", use_gpu=use_gpu, **kwargs)
            else:
                train, val = build_pit_loader(root, split="all", use_gpu=use_gpu, **kwargs), None
            datamanager = PITDataManager(train, val, kwargs["height"], kwargs["width"])
        return cls(datamanager, model, optimizer, scheduler=scheduler, use_gpu=use_gpu,
                   weight_rec=cfg.san.pit_weight_rec, norm_std=kwargs["norm_std"], **cls.dense_kwargs(cfg))

    def forward_loss(self, data):
        imgs, target, valid = self.to_device(data["img"], data["texture"], data.get("texture_valid"))
        with self.autocast():
            out = self.model(imgs)
        texture = out["texture"] if isinstance(out, dict) else out
        loss_rec = self.criterion(texture, target, valid)
        return self.weight_rec * loss_rec, {"loss_rec": loss_rec}, {}

    def forward_backward(self, data):
        """The L_Rec step; returns ``{'loss_rec': ...}``."""
        loss, components, _ = self.forward_loss(data)
        self.optimize(loss, components)
        return {"loss_rec": float(components["loss_rec"].detach())}

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
