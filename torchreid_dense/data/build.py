"""One registered data set built on its own, outside a data manager (the texture tools' use)."""
from .. import compat
from .availability import check_datasets_present, explain_missing_dataset

__all__ = ["build_dataset", "dataset_images", "dataset_kwargs"]


def build_dataset(name, root, **kwargs):
    """torchreid's data set ``name`` under ``root`` (stock or plugin), built quietly.

    ``kwargs`` are the data-set arguments torchreid's data manager passes (``split_id``,
    ``cuhk03_labeled``, ``cuhk03_classic_split``, ``market1501_500k``, ...), see :func:`dataset_kwargs`.

    Raises:
        DatasetNotFoundError: the data set's directory is missing (with how to get it).
    """
    check_datasets_present(root, [name])
    try:
        return compat.data.datasets.init_image_dataset(name, root=root, mode="train", verbose=False, **kwargs)
    except RuntimeError as err:
        explained = explain_missing_dataset(err, root, [name])
        if explained is None:
            raise
        raise explained from err


def dataset_images(dataset):
    """Every image path of ``dataset``'s train, query and gallery sets, once each, in that order."""
    paths = (item[0] for split in (dataset.train, dataset.query, dataset.gallery) for item in split)
    return list(dict.fromkeys(paths))


def dataset_kwargs(cfg):
    """The data-set arguments torchreid's data manager passes, from the config."""
    return {
        "split_id": cfg.data.split_id,
        "cuhk03_labeled": cfg.cuhk03.labeled_images,
        "cuhk03_classic_split": cfg.cuhk03.classic_split,
        "market1501_500k": cfg.market1501.use_500k_distractors,
    }
