"""A job's data: the data manager (with errors that say what is missing where; SynthReID read from the directory
its ``synth.*`` settings name, :mod:`torchreid_dense.data.synth_root`) and the deterministic, resumable train
loader."""
import logging

from ..config import imagedata_kwargs
from ..data.availability import DatasetNotFoundError, check_datasets_present, explain_missing_dataset
from ..data.synth_root import check_synth_preset, resolve_synth_root
from .loader import build_train_loader

__all__ = ["build_datamanager", "use_resumable_train_loader"]

logger = logging.getLogger("torchreid_dense.launch")


def build_datamanager(cfg):
    """``DenseImageDataManager`` for the config, with a clear error when a data set is missing."""
    from ..data.datamanager import DenseImageDataManager

    names = list(dict.fromkeys(list(cfg.data.sources) + list(cfg.data.targets)))
    check_synth_preset(cfg)
    resolve_synth_root(cfg)
    check_datasets_present(cfg.data.root, names)
    try:
        return DenseImageDataManager(**imagedata_kwargs(cfg))
    except RuntimeError as err:
        explained = explain_missing_dataset(err, cfg.data.root, names)
        if explained is None:
            raise
        raise explained from err
    except (IndexError, ZeroDivisionError) as err:  # torchreid's failure on a directory without images
        raise DatasetNotFoundError(
            f"a data set of {names} under data.root '{cfg.data.root}' has an empty split (no images found; "
            f"torchreid failed with {type(err).__name__}: {err}); check that the data set's directories "
            "(e.g. bounding_box_train, query, bounding_box_test) hold its image files, or fetch it again"
        ) from err


def use_resumable_train_loader(cfg, datamanager):
    """Replace torchreid's train loader by the deterministic, resumable (and DDP-partitioned) one."""
    loader = getattr(datamanager, "train_loader", None)
    if loader is None:
        return
    replacement = build_train_loader(
        loader.dataset, cfg.sampler.train_sampler, cfg.train.batch_size, num_instances=cfg.sampler.num_instances,
        workers=cfg.data.workers, seed=cfg.train.seed, use_gpu=cfg.use_gpu,
    )
    if replacement is None:
        logger.warning("sampler.train_sampler '%s' keeps torchreid's loader: model.resume restarts its epoch "
                       "order instead of replaying it", cfg.sampler.train_sampler)
        return
    datamanager.train_loader = replacement


