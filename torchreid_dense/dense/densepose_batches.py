"""``densepose`` sidecars from a model run on batches: images decoded in DataLoader workers, grouped by size,
predicted, recorded by :class:`~torchreid_dense.dense.sidecar_run.SidecarRun` (the ``extract_densepose`` tool)."""
import torch
from tqdm import tqdm

from ..utils.path_dataset import PathDataset
from .image_files import BadImageError, decode_image
from .sidecar_run import SidecarRun

__all__ = ["DensePoseImages", "same_size_batches", "extract_densepose_sidecars"]


class DensePoseImages(PathDataset):
    """The pending images of an extraction run, decoded (:func:`decode_image`) and prepared for the model.

    Item ``i`` is a dict with ``path``, ``height``, ``width`` (the decoded image's size) and ``image``
    (``prepare(rgb)``: the model's input tensor), or ``path`` and ``problem`` when the file is bad, so that
    one bad file never stops the DataLoader.

    Args:
        paths: the images.
        transform: ``prepare``, ``f([H, W, 3] uint8 RGB) -> tensor``; runs in the DataLoader workers, so it must be
            picklable.
    """

    def __getitem__(self, index):
        path = self.paths[index]
        try:
            rgb = decode_image(path)
        except BadImageError as e:
            return {"path": path, "problem": str(e)}
        return {"path": path, "height": rgb.shape[0], "width": rgb.shape[1], "image": self.transform(rgb)}


def same_size_batches(items, batch_size, max_held=None):
    """Group prepared images into batches of up to ``batch_size`` whose ``image`` tensors have one shape.

    A detector pads the images of a batch to a common size, so an image batched with larger ones would be
    seen with extra padding; grouping by shape makes every image's input exactly what it is alone. Full
    groups are yielded at once; when more than ``max_held`` (default ``4 * batch_size``) images wait in
    partial groups (data sets of many image sizes), the largest group goes out early; the rest at the end.
    """
    max_held = max_held or 4 * batch_size
    groups, held = {}, 0
    for item in items:
        key = tuple(item["image"].shape)
        groups.setdefault(key, []).append(item)
        held += 1
        if len(groups[key]) < batch_size and held <= max_held:
            continue
        if len(groups[key]) < batch_size:
            key = max(groups, key=lambda k: len(groups[k]))
        held -= len(groups[key])
        yield groups.pop(key)
    yield from groups.values()


def _loader(dataset, batch_size, workers):
    """Single images (no collation) from ``workers`` processes, enough of them prefetched to fill a batch."""
    extra = {"prefetch_factor": max(2, -(-2 * batch_size // workers))} if workers > 0 else {}
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers, **extra)


def extract_densepose_sidecars(dataset_dir, image_paths, predict_batch, prepare, batch_size=8, workers=2,
                               overwrite=False, progress=True, desc="extract densepose"):
    """Write the ``densepose`` sidecar of every image from a model run on batches; resumable and atomic.

    Same files as :func:`~torchreid_dense.dense.densepose_sidecars.write_densepose_sidecars`: images are decoded in ``workers``
    DataLoader processes, prepared with ``prepare``, grouped by :func:`same_size_batches` and given to
    ``predict_batch``; a bad image file is listed and skipped while the run goes on.

    Args:
        dataset_dir: the data set folder.
        image_paths: images under ``dataset_dir``.
        predict_batch: ``f(list of DensePoseImages items) -> list of [3, H, W] uint8 IUV or None``, in order.
        prepare: ``f([H, W, 3] uint8 RGB) -> tensor``, the transform of :class:`DensePoseImages`.
        batch_size: images per ``predict_batch`` call.
        workers: DataLoader worker processes decoding images (0: in this process).
        overwrite: rewrite existing sidecars.
        progress: show a tqdm progress bar.

    Returns:
        the summary dict of :meth:`SidecarRun.finish`.
    """
    run = SidecarRun(dataset_dir, image_paths, overwrite=overwrite)
    with tqdm(total=len(run.pending), desc=desc, unit="img", disable=not progress) as bar:
        def readable(items):
            for item in items:
                if "problem" in item:
                    run.record_bad(item["path"], item["problem"])
                    bar.update(1)
                else:
                    yield item

        items = _loader(DensePoseImages(run.pending, prepare), batch_size, workers) if run.pending else ()
        for batch in same_size_batches(readable(items), batch_size):
            iuvs = list(predict_batch(batch))
            if len(iuvs) != len(batch):
                raise RuntimeError(f"predict_batch returned {len(iuvs)} IUV maps for {len(batch)} images")
            for item, iuv in zip(batch, iuvs):
                run.record(item["path"], iuv)
            bar.update(len(batch))
    return run.finish()
