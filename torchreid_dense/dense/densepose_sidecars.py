"""Writing ``densepose`` sidecars (IUV PNGs): one resumable, atomic bookkeeping (:class:`SidecarRun`) for both
tools: ``import_densepose`` one image at a time (:func:`write_densepose_sidecars`), ``extract_densepose`` on
batches of images decoded in DataLoader workers (:func:`extract_densepose_sidecars`).

Every run rewrites two listings in ``<dataset_dir>/densepose/``, paths relative to the data set folder, sorted:
``no_detection.txt`` (images where DensePose found nobody, one per line) and ``bad_files.txt`` (images skipped
because a file is bad, one ``<path><TAB><problem>`` per line). Neither kind gets a sidecar, so the next run
retries them.
"""
import contextlib
import os
import os.path as osp

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..utils.io import atomic_write
from .densepose_boxes import DEFAULT_MIN_SCORE, dump_entry_to_iuv
from .densepose_dump import load_dump
from .densepose_results import DensePoseDumpError
from .iuv import write_iuv
from .sidecar import SIDECAR_KINDS, sidecar_path, sidecar_root

__all__ = ["NO_DETECTION_FILE", "BAD_FILES_FILE", "IMAGE_EXTENSIONS", "BadImageError", "list_dataset_images",
           "read_image_size", "decode_image", "SidecarRun", "write_densepose_sidecars", "DensePoseImages",
           "same_size_batches", "extract_densepose_sidecars", "format_summary", "import_dump"]

NO_DETECTION_FILE = "no_detection.txt"
BAD_FILES_FILE = "bad_files.txt"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_IMAGE_HINT = "replace it with the original image or delete it, then run again (finished sidecars are kept)"


class BadImageError(ValueError):
    """A data-set image that cannot be read (empty, cut off, or not an image at all)."""


def list_dataset_images(dataset_dir):
    """Sorted paths of the ``.jpg``/``.jpeg``/``.png`` images under ``dataset_dir`` (sidecar folders excluded)."""
    dataset_dir = osp.abspath(os.fspath(dataset_dir))
    found = []
    for root, dirs, files in os.walk(dataset_dir):
        if root == dataset_dir:
            dirs[:] = [d for d in dirs if d not in SIDECAR_KINDS]
        dirs.sort()
        found.extend(osp.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


def _unreadable(path, error):
    """The :class:`BadImageError` for an image PIL could not read."""
    size = osp.getsize(path) if osp.isfile(path) else None
    what = "it is an empty file" if size == 0 else f"cannot read it as an image ({type(error).__name__}: {error})"
    return BadImageError(f"{what}; {_IMAGE_HINT}")


def read_image_size(path):
    """``(H, W)`` of an image as PIL (and torchreid) open it, after decoding it whole (a cut-off file is bad).

    Raises:
        BadImageError: the file is empty, cut off or not an image PIL can open.
    """
    try:
        with Image.open(path) as im:
            im.load()
            width, height = im.size
    except (OSError, ValueError, Image.DecompressionBombError) as e:  # UnidentifiedImageError is an OSError
        raise _unreadable(path, e) from None
    return height, width


def decode_image(path):
    """``[H, W, 3]`` uint8 RGB pixels exactly as torchreid reads the image (PIL ``convert("RGB")``, no EXIF turn),
    so that an IUV map computed on them lines up with the training images.

    Raises:
        BadImageError: the file is empty, cut off or not an image.
    """
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))  # a writable copy
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise _unreadable(path, e) from None


class SidecarRun:
    """Bookkeeping of one sidecar-writing run: which images are pending, what was written, found nobody or bad.

    Args:
        dataset_dir: the data set folder.
        image_paths: images under ``dataset_dir``.
        overwrite: also redo images whose sidecar exists (else they are skipped: runs are resumable).
    """

    def __init__(self, dataset_dir, image_paths, overwrite=False):
        self.dataset_dir = osp.abspath(os.fspath(dataset_dir))
        self.total = 0
        self.pending, self.skipped = [], 0
        for path in image_paths:
            self.total += 1
            if not overwrite and osp.exists(sidecar_path(self.dataset_dir, path, "densepose")):
                self.skipped += 1
            else:
                self.pending.append(path)
        self.written, self.no_detection, self.bad = 0, [], []

    def relative(self, image_path):
        """``image_path`` relative to the data set folder, with ``/`` separators."""
        return osp.relpath(osp.abspath(image_path), self.dataset_dir).replace(os.sep, "/")

    def record(self, image_path, iuv):
        """Write the sidecar of ``image_path`` atomically, or list it as a no-detection image when ``iuv`` is None."""
        out = sidecar_path(self.dataset_dir, image_path, "densepose")
        if iuv is None:
            self.no_detection.append(self.relative(image_path))
            with contextlib.suppress(FileNotFoundError):
                os.remove(out)  # a stale sidecar of an --overwrite run
            return
        write_iuv(out, iuv)
        self.written += 1

    def record_bad(self, image_path, problem):
        """List ``image_path`` as skipped because of ``problem`` (nothing is written for it)."""
        self.bad.append((self.relative(image_path), str(problem)))

    def finish(self):
        """Write ``no_detection.txt`` and ``bad_files.txt`` (atomically) and return the summary dict.

        Returns:
            dict with ``total``, ``written``, ``skipped`` (sidecar already there), ``no_detection`` (sorted relative
            paths), ``no_detection_file``, ``bad`` (sorted ``(relative path, problem)``) and ``bad_files_file``.
        """
        root = sidecar_root(self.dataset_dir, "densepose")
        no_detection, bad = sorted(self.no_detection), sorted(self.bad)
        listings = {NO_DETECTION_FILE: [p + "\n" for p in no_detection],
                    BAD_FILES_FILE: [f"{p}\t{' '.join(problem.split())}\n" for p, problem in bad]}
        for name, lines in listings.items():
            with atomic_write(osp.join(root, name), "w") as f:
                f.write("".join(lines))
        return {"total": self.total, "written": self.written, "skipped": self.skipped, "no_detection": no_detection,
                "no_detection_file": osp.join(root, NO_DETECTION_FILE), "bad": bad,
                "bad_files_file": osp.join(root, BAD_FILES_FILE)}


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


class DensePoseImages(torch.utils.data.Dataset):
    """The pending images of an extraction run, decoded (:func:`decode_image`) and prepared for the model.

    Item ``i`` is a dict with ``path``, ``height``, ``width`` (the decoded image's size) and ``image``
    (``prepare(rgb)``: the model's input tensor), or ``path`` and ``problem`` when the file is bad, so that
    one bad file never stops the DataLoader.

    Args:
        image_paths: the images.
        prepare: ``f([H, W, 3] uint8 RGB) -> tensor``; runs in the DataLoader workers, so it must be picklable.
    """

    def __init__(self, image_paths, prepare):
        self.image_paths = list(image_paths)
        self.prepare = prepare

    def __len__(self):
        return len(self.image_paths)

    def __getitem__(self, index):
        path = self.image_paths[index]
        try:
            rgb = decode_image(path)
        except BadImageError as e:
            return {"path": path, "problem": str(e)}
        return {"path": path, "height": rgb.shape[0], "width": rgb.shape[1], "image": self.prepare(rgb)}


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

    Same files as :func:`write_densepose_sidecars` (the module doc): images are decoded in ``workers``
    DataLoader processes, prepared with ``prepare``, grouped by :func:`same_size_batches` and given to
    ``predict_batch``; a bad image file is listed and skipped while the run goes on.

    Args:
        dataset_dir: the data set folder.
        image_paths: images under ``dataset_dir``.
        predict_batch: ``f(list of DensePoseImages items) -> list of [3, H, W] uint8 IUV or None``, in order.
        prepare: see :class:`DensePoseImages`.
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


def format_summary(summary, verb="imported"):
    """One human-readable paragraph for a :meth:`SidecarRun.finish` summary (``verb``: what the tool does)."""
    lines = [f"{summary['total']} images: {summary['written']} IUV maps written, {summary['skipped']} skipped "
             f"(already there), {len(summary['no_detection'])} with no detection"]
    if summary["no_detection"]:
        shown = summary["no_detection"][:10]
        more = len(summary["no_detection"]) - len(shown)
        lines += ["  " + p for p in shown] + ([f"  ... and {more} more"] if more else [])
        lines.append(f"the full list is in {summary['no_detection_file']}")
    if summary.get("bad"):
        lines.append(f"{len(summary['bad'])} images not {verb}, their files are bad (fix or delete them and run "
                     "again; finished sidecars are kept):")
        lines += [f"  {rel}: {problem}" for rel, problem in summary["bad"]]
        if summary.get("bad_files_file"):
            lines.append(f"this list is also in {summary['bad_files_file']}")
    return "\n".join(lines)


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
