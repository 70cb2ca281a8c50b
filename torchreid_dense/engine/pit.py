"""PIT batches for the SAN engines (SAN, AAAI 2020, Sec. 3.1): the loader of PIT pairs and its endless, resumable cycle."""
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..data.pit import PITDataset, split_pit_by_texture
from ..data.texture_io import IMAGENET_MEAN, IMAGENET_STD
from ..utils.device import unwrap
from ..utils.distributed import get_rank, get_world_size
from .loader import ResumableBatchSampler

__all__ = ["PITCycle", "build_pit_loader", "pit_root", "pit_loader_kwargs", "PIT_SPLITS"]

PIT_SPLITS = ("all", "train", "val")


class PITCycle:
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
                     seed=0, shuffle=None, use_gpu=False, texture_range="normalized"):
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
    if split not in PIT_SPLITS:
        raise ValueError(f"PIT split must be one of {PIT_SPLITS}; got '{split}'")
    paths = PITDataset.list_images(ds_dir)
    if split != "all":
        train, val = split_pit_by_texture(paths, val_fraction, seed)
        paths = train if split == "train" else val
        if not paths:
            raise ValueError(f"the '{split}' PIT split of '{ds_dir}' is empty (val_fraction={val_fraction})")
    dataset = PITDataset(ds_dir, height, width, texture_size, norm_mean, norm_std, image_paths=paths,
                         texture_range=texture_range)
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


def pit_root(cfg, datamanager):
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


def pit_loader_kwargs(cfg, model):
    """:func:`build_pit_loader`'s size, batch, worker, normalisation and split arguments from ``cfg`` and ``model``."""
    return dict(
        height=cfg.data.height,
        width=cfg.data.width,
        texture_size=unwrap(model).texture_size,
        batch_size=cfg.san.pit_batch_size or cfg.train.batch_size,
        workers=cfg.data.workers,
        norm_mean=tuple(cfg.data.norm_mean) or IMAGENET_MEAN,
        norm_std=tuple(cfg.data.norm_std) or IMAGENET_STD,
        val_fraction=cfg.san.pit_val_fraction,
        seed=cfg.train.seed,
        texture_range=cfg.san.texture_range,
    )
