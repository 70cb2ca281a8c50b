"""Sidecar layout: per-image dense-semantics files stored beside a data set.

For an image ``<dataset_dir>/<rel>/<stem>.<ext>`` its IUV map lives at
``<dataset_dir>/densepose/<rel>/<stem>.png`` and its (pseudo) full texture at
``<dataset_dir>/textures/<rel>/<stem>.png``. Synthetic data also has ``densepose_gt/``.
"""
import os
import os.path as osp

__all__ = ["SIDECAR_KINDS", "sidecar_path", "sidecar_root"]

SIDECAR_KINDS = ("densepose", "densepose_gt", "textures")


def sidecar_root(dataset_dir, kind="densepose"):
    """Directory holding all sidecars of ``kind`` for ``dataset_dir``."""
    if kind not in SIDECAR_KINDS:
        raise ValueError(f"unknown sidecar kind '{kind}'; expected one of {SIDECAR_KINDS}")
    return osp.join(os.fspath(dataset_dir), kind)


def sidecar_path(dataset_dir, image_path, kind="densepose"):
    """Path of the ``kind`` sidecar of ``image_path`` (which must lie under ``dataset_dir``)."""
    dataset_dir = osp.abspath(os.fspath(dataset_dir))
    image_path = osp.abspath(os.fspath(image_path))
    rel = osp.relpath(image_path, dataset_dir)
    if rel == os.curdir or rel.startswith(os.pardir + os.sep) or rel == os.pardir:
        raise ValueError(
            f"image {image_path} is not inside the data set directory {dataset_dir}; "
            "sidecars are stored under the data set directory"
        )
    stem = osp.splitext(rel)[0]
    return osp.join(sidecar_root(dataset_dir, kind), stem + ".png")
