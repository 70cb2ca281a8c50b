"""Writing ``densepose`` sidecars (IUV PNGs): one resumable, atomic loop for both tools (``import_densepose``
from a dump, ``extract_densepose`` from a running model)."""
import contextlib
import os
import os.path as osp

from PIL import Image
from tqdm import tqdm

from ..utils.io import atomic_write
from .densepose_boxes import dump_entry_to_iuv
from .densepose_dump import load_dump
from .densepose_results import DensePoseDumpError
from .iuv import write_iuv
from .sidecar import SIDECAR_KINDS, sidecar_path, sidecar_root

__all__ = ["NO_DETECTION_FILE", "IMAGE_EXTENSIONS", "list_dataset_images", "write_densepose_sidecars",
           "format_summary", "import_dump"]

NO_DETECTION_FILE = "no_detection.txt"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


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


def write_densepose_sidecars(dataset_dir, image_paths, estimate_iuv, overwrite=False, progress=True,
                             desc="densepose", errors=()):
    """Write the ``densepose`` sidecar (IUV PNG) of every image; resumable and atomic.

    Images whose sidecar exists are skipped unless ``overwrite``. Images with no detection get no
    file (a stale one is removed when overwriting) and are listed, relative to ``dataset_dir``, in
    ``<dataset_dir>/densepose/no_detection.txt`` (rewritten by every run; they are retried next run).

    Args:
        dataset_dir: the data set folder.
        image_paths: images under ``dataset_dir``.
        estimate_iuv: ``f(image_path, (H, W)) -> [3, H, W] uint8 IUV or None`` (no detection).
        overwrite: rewrite existing sidecars.
        progress: show a tqdm progress bar.
        errors: exception classes of ``estimate_iuv`` that mark one image's input as bad: recorded and
            skipped (nothing written for it), the others still written.

    Returns:
        dict with ``total``, ``written``, ``skipped``, ``no_detection`` (list of relative paths),
        ``no_detection_file`` and ``bad`` (list of ``(relative path, problem)``).
    """
    dataset_dir = osp.abspath(os.fspath(dataset_dir))
    image_paths = list(image_paths)
    written, skipped, no_detection, bad = 0, 0, [], []
    for image_path in tqdm(image_paths, desc=desc, unit="img", disable=not progress):
        out = sidecar_path(dataset_dir, image_path, "densepose")
        if not overwrite and osp.exists(out):
            skipped += 1
            continue
        with Image.open(image_path) as im:
            width, height = im.size
        rel = osp.relpath(osp.abspath(image_path), dataset_dir).replace(os.sep, "/")
        try:
            iuv = estimate_iuv(image_path, (height, width))
        except tuple(errors) as e:
            bad.append((rel, str(e)))
            continue
        if iuv is None:
            no_detection.append(rel)
            with contextlib.suppress(FileNotFoundError):
                os.remove(out)
            continue
        write_iuv(out, iuv)
        written += 1
    listing = osp.join(sidecar_root(dataset_dir, "densepose"), NO_DETECTION_FILE)
    with atomic_write(listing, "w") as f:
        f.write("".join(p + "\n" for p in no_detection))
    return {"total": len(image_paths), "written": written, "skipped": skipped, "no_detection": no_detection,
            "no_detection_file": listing, "bad": bad}


def format_summary(summary):
    """One human-readable paragraph for a :func:`write_densepose_sidecars` summary."""
    lines = [f"{summary['total']} images: {summary['written']} IUV maps written, {summary['skipped']} skipped "
             f"(already there), {len(summary['no_detection'])} with no detection"]
    if summary["no_detection"]:
        shown = summary["no_detection"][:10]
        more = len(summary["no_detection"]) - len(shown)
        lines += ["  " + p for p in shown] + ([f"  ... and {more} more"] if more else [])
        lines.append(f"the full list is in {summary['no_detection_file']}")
    if summary.get("bad"):
        lines.append(f"{len(summary['bad'])} images not imported, their DensePose files are bad (fix or delete them "
                     "and run again; finished sidecars are kept):")
        lines += [f"  {rel}: {problem}" for rel, problem in summary["bad"]]
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


def import_dump(dump_path, dataset_dir, images_root=None, overwrite=False, progress=True, min_score=0.0):
    """Write one IUV sidecar per image of an ``apply_net.py dump`` file (the ``import_densepose`` tool).

    Each entry's ``file_name`` is used as is when absolute, else joined to ``images_root`` (default
    ``dataset_dir``: the folder apply_net.py was run from for relative inputs); the image must lie
    under ``dataset_dir``. Every entry is checked before anything is written.

    Returns:
        the summary dict of :func:`write_densepose_sidecars`.
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
