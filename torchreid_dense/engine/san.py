"""Engines of SAN (AAAI 2020): ``san`` (step 2, re-ID + texture, Sec. 3.2) and ``san_pg`` (step 1, Sec. 3.1)."""
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .. import compat
from ..data.pit import PITDataManager, PITDataset, split_pit_by_texture
from ..data.texture_io import IMAGENET_MEAN, IMAGENET_STD
from ..losses.reconstruction import ReconstructionLoss
from ..losses.san_loss import SANLoss
from ..models.san import load_san_pg_weights
from ..registry import ENGINES

__all__ = [
    "SANEngine",
    "SANPGEngine",
    "build_pit_loader",
    "evaluate_texture_l1",
    "REC_TARGETS",
]

REC_TARGETS = ("texture", "image")  # Table 2: reconstruct the texture (SAN) or the input image
_PIT_SPLITS = ("all", "train", "val")


def _bare(model):
    return getattr(model, "module", model)


def _cycle(loader):
    """Endless iteration over ``loader``, re-iterating (and so re-shuffling) when exhausted."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
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
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=shuffle,
        num_workers=int(workers),
        pin_memory=use_gpu,
        drop_last=training and len(dataset) >= int(batch_size),
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


def _cfg(cfg, dotted, default):
    """``cfg.a.b`` or ``default`` when the key is absent (for keys outside the ``san`` namespace)."""
    node = cfg
    for part in dotted.split("."):
        if not hasattr(node, part):
            return default
        node = getattr(node, part)
    return node


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
        height=_cfg(cfg, "data.height", 256),
        width=_cfg(cfg, "data.width", 128),
        texture_size=_bare(model).texture_size,
        batch_size=cfg.san.pit_batch_size or _cfg(cfg, "train.batch_size", 32),
        workers=_cfg(cfg, "data.workers", 0),
        norm_mean=_cfg(cfg, "data.norm_mean", None) or IMAGENET_MEAN,
        norm_std=_cfg(cfg, "data.norm_std", None) or IMAGENET_STD,
        val_fraction=_cfg(cfg, "san.pit_val_fraction", 0.1),
        seed=_cfg(cfg, "train.seed", 0),
    )


def _to_device(use_gpu, *tensors):
    return tuple(t.cuda() if (use_gpu and t is not None) else t for t in tensors)


@ENGINES.register("san")
class SANEngine(compat.Engine):
    """SAN step 2 (Sec. 3.2 "Training Scheme"): re-ID batches with ID + triplet + Rec + TR, interleaved
    with PIT batches (Rec only).

    Re-ID batches come from ``datamanager.train_loader`` and must carry ``texture`` and
    ``texture_valid`` (a ``<name>_texture`` data set) unless ``rec_target='image'``. After every
    ``pit_every`` re-ID batches, one PIT batch (from ``pit_loader``, cycled) makes its own
    optimisation step.

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
    """

    def __init__(self, datamanager, model, optimizer, scheduler=None, use_gpu=True, pit_loader=None,
                 pit_every=1, weight_id=0.5, weight_triplet=1.5, weight_rec=1.0, weight_tr=1.0,
                 pit_weight_rec=1.0, margin=0.3, tr_margin=0.3, tr_reduction="mean",
                 label_smooth=True, rec_target="texture", generator=None):
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
        self._reid_steps = 0
        self.criterion = SANLoss(
            num_classes=self.datamanager.num_train_pids,
            weight_id=weight_id, weight_triplet=weight_triplet, weight_rec=weight_rec,
            weight_tr=weight_tr, pit_weight_rec=pit_weight_rec, margin=margin,
            tr_margin=tr_margin, tr_reduction=tr_reduction, label_smooth=label_smooth,
            use_gpu=self.use_gpu, generator=generator,
        )

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Builds the engine from ``cfg.san.*`` (weights, ``use_tr``, ``use_pit``, ``pit_ratio``,
        ``pit_root``, ``pit_batch_size``, ``rec_target``, ``init_weights``; optional
        ``pit_weight_rec``, ``tr_reduction``), torchreid's ``loss.triplet.margin`` and
        ``loss.softmax.label_smooth``, ``use_gpu``, and ``data.*``/``train.batch_size`` for the PIT
        loader; loads ``san.init_weights`` (a SAN-PG checkpoint) into the model."""
        s = cfg.san
        use_gpu = bool(_cfg(cfg, "use_gpu", True)) and torch.cuda.is_available()
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
            weight_tr=s.weight_tr if s.use_tr else 0.0,
            pit_weight_rec=_cfg(cfg, "san.pit_weight_rec", 1.0),
            margin=_cfg(cfg, "loss.triplet.margin", 0.3), tr_margin=s.tr_margin,
            tr_reduction=_cfg(cfg, "san.tr_reduction", "mean"),
            label_smooth=bool(_cfg(cfg, "loss.softmax.label_smooth", True)), rec_target=s.rec_target,
        )

    def _reconstruction_target(self, data, imgs):
        if self.rec_target == "image":
            size = _bare(self.model).texture_size
            return F.interpolate(imgs, size=size, mode="bilinear", align_corners=False), None
        if "texture" not in data:
            raise KeyError(
                "SANEngine: re-ID batches carry no 'texture'; train on a '<name>_texture' data set "
                "(e.g. sources='market1501_texture') or set san.rec_target='image'"
            )
        return _to_device(self.use_gpu, data["texture"], data.get("texture_valid"))

    def _step(self, loss):
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def forward_backward(self, data):
        """One re-ID step (and, every ``pit_every`` calls, one PIT step); returns scalar components."""
        imgs, pids = self.parse_data_for_train(data)
        imgs, pids = _to_device(self.use_gpu, imgs, pids)
        target, valid = self._reconstruction_target(data, imgs)
        outputs = self.model(imgs)
        loss, summary = self.criterion(outputs, pids, target, valid)
        self._step(loss)
        summary["loss"] = loss.item()
        summary["acc"] = compat.metrics.accuracy(outputs["logits"].detach(), pids)[0].item()
        self._reid_steps += 1
        if self.pit_loader is not None and self._reid_steps % self.pit_every == 0:
            summary.update(self.pit_step())
        return summary

    def pit_step(self):
        """One PIT (synthetic pair) step: reconstruction only (weights 0/0/1/0)."""
        if self._pit_iter is None:
            self._pit_iter = _cycle(self.pit_loader)
        batch = next(self._pit_iter)
        imgs, target, valid = _to_device(self.use_gpu, batch["img"], batch["texture"], batch.get("texture_valid"))
        outputs = self.model(imgs)
        loss, parts = self.criterion(outputs, rec_target=target, rec_valid=valid, pit=True)
        self._step(loss)
        return {"loss_pit_rec": parts["loss_rec"]}


@ENGINES.register("san_pg")
class SANPGEngine(compat.Engine):
    """SAN-PG step 1 (Sec. 3.1): encoder + decoder trained with L_Rec only on PIT pairs.

    ``datamanager.train_loader`` yields PIT batches (a :class:`~torchreid_dense.data.pit.PITDataManager`);
    :meth:`test` reports the texture L1 on ``datamanager.val_loader`` (held-out textures) instead of
    re-ID metrics and returns it (lower is better; torchreid stores it as the checkpoint's
    ``rank1`` field).
    """

    def __init__(self, datamanager, model, optimizer, scheduler=None, use_gpu=True, weight_rec=1.0,
                 norm_std=IMAGENET_STD):
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

    @classmethod
    def from_config(cls, cfg, datamanager, model, optimizer, scheduler):
        """Builds PIT train/held-out loaders from ``cfg.san.pit_root`` (split by texture with
        ``san.pit_val_fraction``, default 0.1; the re-ID ``datamanager`` is not used unless it
        already is a PITDataManager)."""
        use_gpu = bool(_cfg(cfg, "use_gpu", True)) and torch.cuda.is_available()
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
                   weight_rec=_cfg(cfg, "san.pit_weight_rec", 1.0), norm_std=kwargs["norm_std"])

    def forward_backward(self, data):
        imgs, target, valid = _to_device(self.use_gpu, data["img"], data["texture"], data.get("texture_valid"))
        out = self.model(imgs)
        texture = out["texture"] if isinstance(out, dict) else out
        loss_rec = self.criterion(texture, target, valid)
        self.optimizer.zero_grad()
        (self.weight_rec * loss_rec).backward()
        self.optimizer.step()
        return {"loss_rec": loss_rec.item()}

    def test(self, *args, **kwargs):
        """Held-out texture L1 (normalised units, returned) instead of re-ID metrics."""
        loader = getattr(self.datamanager, "val_loader", None)
        if loader is None:
            print("=> san_pg: no held-out PIT pairs (san.pit_val_fraction=0), nothing to evaluate")
            return 0.0
        res = evaluate_texture_l1(self.model, loader, self.norm_std, self.use_gpu)
        print(
            f"=> san_pg held-out texture L1: {res['l1']:.4f} (normalised), "
            f"{res['l1_pixel']:.4f} (pixels in [0,1]) over {res['num_images']} images"
        )
        if self.writer is not None:
            self.writer.add_scalar("Test/pit_texture_l1", res["l1"], self.epoch)
        return res["l1"]
