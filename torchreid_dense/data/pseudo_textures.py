"""SAN-PG pseudo ground truth (SAN, AAAI 2020, Sec. 3.1): a predicted full texture for every image, as sidecars.

Step 1 of SAN trains SAN-PG on PIT pairs; its predictions then serve as the (pseudo) texture targets of the
re-ID images. :func:`generate_textures` writes them as ``textures`` sidecars
(``<dataset_dir>/textures/<rel>/<stem>.png``, see :func:`torchreid_dense.dense.sidecar.sidecar_path`), which
the ``<name>_texture`` data sets read. Images are read like torchreid's test transform and batched; resumable:
images whose texture file exists are skipped unless ``overwrite``; every PNG is written atomically.
"""
import os.path as osp
import time

from torch.utils.data import DataLoader

from .. import compat
from ..dense.sidecar import sidecar_path, sidecar_root
from ..utils.io import save_png
from ..utils.path_dataset import PathDataset
from .texture_io import texture_to_uint8
from .texture_model import predict_textures
from .transforms import build_image_transform

__all__ = ["texture_targets", "generate_textures"]


class _ImageList(PathDataset):
    """Images read from a list of paths: ``(tensor [3, H, W], index)``."""

    def __getitem__(self, index):
        return self.transform(compat.read_image(self.paths[index])), index


def texture_targets(image_paths, dataset_dir, output_dir=None):
    """The ``textures`` sidecar path of every image; with ``output_dir`` the same layout under that directory.

    ``output_dir`` keeps existing textures apart (e.g. SynthReID's ground-truth atlases): image
    ``<dataset_dir>/<rel>/<stem>.jpg`` -> ``<output_dir>/textures/<rel>/<stem>.png``.
    """
    targets = [sidecar_path(dataset_dir, p, "textures") for p in image_paths]
    if output_dir is None:
        return targets
    base = osp.abspath(dataset_dir)
    return [osp.join(osp.abspath(output_dir), osp.relpath(t, base)) for t in targets]


def generate_textures(model, image_paths, dataset_dir, height=256, width=128, norm_mean=(0.485, 0.456, 0.406),
                      norm_std=(0.229, 0.224, 0.225), batch_size=64, overwrite=False, workers=0, progress=True,
                      output_dir=None, texture_range="normalized"):
    """Predict a pseudo full texture for every image and write it as its ``textures`` sidecar.

    Args:
        model: a texture-predicting model (``predict_texture``), e.g. from
            :func:`~torchreid_dense.data.texture_model.build_texture_model`.
        image_paths (list of str): images under ``dataset_dir``.
        dataset_dir (str): the sidecar base (torchreid's ``dataset_dir`` of the data set).
        height, width, norm_mean, norm_std: the model's input transform.
        batch_size (int): images per forward pass.
        overwrite (bool): rewrite textures that exist (default: skip them, so a run can resume).
        workers (int): DataLoader processes reading the images.
        progress (bool): show a tqdm progress bar.
        output_dir (str, optional): write the sidecar layout under this directory instead of
            ``dataset_dir`` (see :func:`texture_targets`).
        texture_range (str): the range the model predicts in (``san.texture_range`` of its training).

    Returns:
        dict: ``images`` (total), ``written``, ``skipped`` (already there), ``texture_size`` ``(Ht, Wt)``,
        ``textures_dir`` and ``seconds``.
    """
    from tqdm import tqdm

    start = time.time()
    targets = texture_targets(image_paths, dataset_dir, output_dir)
    todo = [i for i, t in enumerate(targets) if overwrite or not osp.exists(t)]
    was_training = model.training
    model.eval()
    texture_size = tuple(getattr(model, "module", model).texture_size)
    use_pin = next(model.parameters()).is_cuda
    loader = DataLoader(_ImageList([image_paths[i] for i in todo], build_image_transform(height, width, norm_mean,
                                                                                         norm_std)),
                        batch_size=int(batch_size), shuffle=False, num_workers=int(workers), pin_memory=use_pin)
    written = 0
    try:
        with tqdm(total=len(todo), desc="textures", unit="img", disable=not progress) as bar:
            for imgs, index in loader:
                pictures = texture_to_uint8(predict_textures(model, imgs), norm_mean, norm_std, texture_range)
                for k, picture in zip(index.tolist(), pictures):
                    save_png(targets[todo[k]], picture)
                written += len(pictures)
                bar.update(len(pictures))
    finally:
        model.train(was_training)
    return {
        "images": len(image_paths),
        "written": written,
        "skipped": len(image_paths) - len(todo),
        "texture_size": texture_size,
        "textures_dir": sidecar_root(osp.abspath(output_dir or dataset_dir), "textures"),
        "seconds": time.time() - start,
    }
