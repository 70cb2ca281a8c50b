"""Writing ``densepose`` sidecars (IUV PNGs): one resumable, atomic bookkeeping (:class:`SidecarRun`, in
:mod:`.sidecar_run`) for both tools: ``import_densepose`` one image at a time (:func:`write_densepose_sidecars`,
:func:`import_dump`), ``extract_densepose`` on batches of images decoded in DataLoader workers
(:func:`extract_densepose_sidecars`, in :mod:`.densepose_batches`). The image files are read by
:mod:`.image_files`; this module re-exports the public names of all three.

Every run rewrites two listings in ``<dataset_dir>/densepose/``, paths relative to the data set folder, sorted:
``no_detection.txt`` (images where DensePose found nobody, one per line) and ``bad_files.txt`` (images skipped
because a file is bad, one ``<path><TAB><problem>`` per line). Neither kind gets a sidecar, so the next run
retries them.
"""
import os
import os.path as osp

from tqdm import tqdm

from .densepose_batches import DensePoseImages, extract_densepose_sidecars, same_size_batches
from .densepose_boxes import DEFAULT_MIN_SCORE, dump_entry_to_iuv
from .densepose_dump import load_dump
from .densepose_results import DensePoseDumpError
from .image_files import IMAGE_EXTENSIONS, BadImageError, decode_image, list_dataset_images, read_image_size
from .sidecar_run import BAD_FILES_FILE, NO_DETECTION_FILE, SidecarRun, format_summary

__all__ = ["NO_DETECTION_FILE", "BAD_FILES_FILE", "IMAGE_EXTENSIONS", "BadImageError", "list_dataset_images",
           "read_image_size", "decode_image", "SidecarRun", "write_densepose_sidecars", "DensePoseImages",
           "same_size_batches", "extract_densepose_sidecars", "format_summary", "import_dump"]


def write_densepose_sidecars(dataset_dir, image_paths, estimate_iuv, overwrite=False, progress=True,
                             desc="densepose", errors=()):
    """Write the ``densepose`` sidecar (IUV PNG) of every image, one image at a time; resumable and atomic.

    Images whose sidecar exists are skipped unless ``overwrite``; images with no detection get no file and
    are listed in ``densepose/no_detection.txt``; images that cannot be read, or whose ``estimate_iuv``
    raises one of ``errors``, are listed with their problem in ``densepose/bad_files.txt`` and skipped while
    the others are written (see the module doc).

    Args:
        dataset_dir: the data set folder.
        image_paths: images under ``dataset_dir``.
        estimate_iuv: ``f(image_path, (H, W)) -> [3, H, W] uint8 IUV or None`` (no detection).
        overwrite: rewrite existing sidecars.
        progress: show a tqdm progress bar.
        errors: exception classes of ``estimate_iuv`` that mark one image's input as bad.

    Returns:
        the summary dict of :meth:`SidecarRun.finish`.
    """
    run = SidecarRun(dataset_dir, image_paths, overwrite=overwrite)
    for image_path in tqdm(run.pending, desc=desc, unit="img", disable=not progress):
        try:
            iuv = estimate_iuv(image_path, read_image_size(image_path))
        except (BadImageError,) + tuple(errors) as e:
            run.record_bad(image_path, e)
            continue
        run.record(image_path, iuv)
    return run.finish()


def _inside(path, root):
    rel = osp.relpath(path, root)
    return not (rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep) or osp.isabs(rel))


def _resolve_image(file_name, dataset_dir, images_root, where):
    """Absolute path under ``dataset_dir`` of a dump's ``file_name`` (relative names are joined to ``images_root``)."""
    path = osp.abspath(osp.join(images_root, file_name))
    if not _inside(path, dataset_dir):
        real = osp.realpath(path)
        real_root = osp.realpath(dataset_dir)
        if not _inside(real, real_root):
            raise DensePoseDumpError(
                f"{where}: image {path} is not inside the data set directory {dataset_dir}; sidecars are written "
                "under the data set directory, so import the dump into the data set it was computed on "
                "(relative file names are resolved against --images-root, default the data set directory)")
        path = osp.join(dataset_dir, osp.relpath(real, real_root))
    if not osp.isfile(path):
        raise DensePoseDumpError(
            f"{where}: image {path} does not exist; relative file names are resolved against --images-root "
            f"(now {images_root}): pass the directory apply_net.py was run from")
    return path


def import_dump(dump_path, dataset_dir, images_root=None, overwrite=False, progress=True,
                min_score=DEFAULT_MIN_SCORE):
    """Write one IUV sidecar per image of an ``apply_net.py dump`` file (the ``import_densepose`` tool).

    Each entry's ``file_name`` is used as is when absolute, else joined to ``images_root`` (default
    ``dataset_dir``: the folder apply_net.py was run from for relative inputs); the image must lie
    under ``dataset_dir``. Every entry is checked before anything is written. Boxes scoring below ``min_score``
    are ignored (:data:`~torchreid_dense.dense.densepose_boxes.DEFAULT_MIN_SCORE` explains the default).

    Returns:
        the summary dict of :meth:`SidecarRun.finish`.
    """
    dump_path = os.fspath(dump_path)
    dataset_dir = osp.abspath(os.fspath(dataset_dir))
    if not osp.isdir(dataset_dir):
        raise DensePoseDumpError(f"data set directory {dataset_dir} does not exist")
    images_root = osp.abspath(os.fspath(images_root)) if images_root is not None else dataset_dir
    entries = load_dump(dump_path)
    by_path = {}
    for i, entry in enumerate(entries):
        where = f"{dump_path} entry {i} ({entry['file_name']})"
        path = _resolve_image(entry["file_name"], dataset_dir, images_root, where)
        if path in by_path:
            raise DensePoseDumpError(f"{where}: image {path} appears twice in the dump")
        by_path[path] = entry

    def estimate(image_path, image_size):
        return dump_entry_to_iuv(by_path[image_path], image_size, min_score=min_score)

    return write_densepose_sidecars(dataset_dir, list(by_path), estimate, overwrite=overwrite, progress=progress,
                                    desc="import densepose")
