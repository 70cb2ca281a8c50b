"""The SAN authors' published pseudo textures of CUHK03 (labeled) as ``textures`` sidecars of ``cuhk03``.

SAN (AAAI 2020) trains on CUHK03-labeled with pseudo ground-truth full textures (256x256 images)
predicted by their SAN-PG; the authors publish them on Google Drive
(``SAN_CUHK03_TEXTURES['file_id']``, from the README of
github.com/microsoft/Semantics-Aligned-Representation-Learning-for-Person-Re-identification, section
"Semantics-Aligned Full-texture Data Preparation").

Archive layout and name mapping: the archive extracts to ``texture_cuhk03_labeled/`` beside
``images_labeled/``, one texture per labeled image with the image's own file name (their loader
reads ``img_path.replace('images_labeled', 'texture_cuhk03_labeled')``). Both use the names that
torchreid's CUHK03 writes when it extracts ``cuhk-03.mat``: ``<campid>_<pid>_<viewid>_<imgid>.png``
formatted ``{:01d}_{:03d}_{:01d}_{:02d}`` (camera pair 1-5, person >= 1, view 1-2, image 1-10). So a
member ``.../<c>_<p>_<v>_<i>.<ext>`` becomes the ``textures`` sidecar of the image
``<root>/cuhk03/images_labeled/<c>_<ppp>_<v>_<ii>.png``, i.e.
``<root>/cuhk03/textures/images_labeled/<c>_<ppp>_<v>_<ii>.png`` (:func:`cuhk03_texture_target`);
other members (folders, ``__MACOSX`` entries, other names) are ignored.

``python tools/fetch_textures.py --root reid-data`` (downloads with gdown), or
``python tools/fetch_textures.py --root reid-data --archive texture_cuhk03_labeled.zip`` for an archive
downloaded by hand. Train with ``sources: ['cuhk03_texture']`` and ``cuhk03.labeled_images True``.
"""
import argparse
import hashlib
import io
import os
import os.path as osp
import re
import tarfile
import zipfile

import numpy as np
from PIL import Image

from .. import compat
from ..dense.sidecar import sidecar_path, sidecar_root
from ..utils.cli import exit_status
from ..utils.io import save_png

__all__ = [
    "SAN_CUHK03_TEXTURES",
    "CUHK03_IMAGE_DIR",
    "TextureFetchError",
    "drive_urls",
    "cuhk03_image_name",
    "cuhk03_texture_target",
    "download_archive",
    "archive_members",
    "layout_cuhk03_textures",
    "build_parser",
    "main",
    "cli",
]

# The SAN authors' Google Drive file "texture_cuhk03_labeled" (README of
# microsoft/Semantics-Aligned-Representation-Learning-for-Person-Re-identification); md5 not published (None = not
# checked). Override with --file-id when the authors move the file.
SAN_CUHK03_TEXTURES = {
    "file_id": "19-9WdlbqjD4n2usV-D2zyyzeUfjcXxlv",
    "md5": None,
    "archive_name": "texture_cuhk03_labeled.zip",
}

CUHK03_IMAGE_DIR = "images_labeled"  # torchreid's folder of the extracted labeled CUHK03 images

_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)$")
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")


class TextureFetchError(RuntimeError):
    """Downloading or laying out the published textures failed (the message says what to do)."""


def drive_urls(file_id):
    """``(page URL, direct download URL)`` of a Google Drive file."""
    return (f"https://drive.google.com/file/d/{file_id}/view", f"https://drive.google.com/uc?id={file_id}")


def cuhk03_image_name(member):
    """torchreid's CUHK03 image name of an archive member, or None when it is no CUHK03 texture.

    ``'texture_cuhk03_labeled/1_001_1_01.png'`` -> ``'1_001_1_01.png'``; unpadded numbers are padded
    (``'2_7_2_9.jpg'`` -> ``'2_007_2_09.png'``); folders, ``__MACOSX`` entries, hidden files, other
    extensions and out-of-range numbers (camera pair 1-5, view 1-2, image 1-10, person >= 1) give None.
    """
    parts = [p for p in re.split(r"[\\/]", member) if p]
    if not parts or "__MACOSX" in parts or member.endswith(("/", "\\")):
        return None
    stem, ext = osp.splitext(parts[-1])
    match = _NAME.match(stem)
    if ext.lower() not in _IMAGE_EXTS or match is None:
        return None
    campid, pid, viewid, imgid = (int(g) for g in match.groups())
    if not (1 <= campid <= 5 and pid >= 1 and viewid in (1, 2) and 1 <= imgid <= 10):
        return None
    return f"{campid:01d}_{pid:03d}_{viewid:01d}_{imgid:02d}.png"


def cuhk03_texture_target(member, dataset_dir):
    """The ``textures`` sidecar path for archive member ``member`` in torchreid's CUHK03 ``dataset_dir``, or None.

    Example: ``cuhk03_texture_target('texture_cuhk03_labeled/1_001_1_01.png', '/data/cuhk03')`` ->
    ``'/data/cuhk03/textures/images_labeled/1_001_1_01.png'``.
    """
    name = cuhk03_image_name(member)
    if name is None:
        return None
    return sidecar_path(dataset_dir, osp.join(osp.abspath(dataset_dir), CUHK03_IMAGE_DIR, name), "textures")


def _md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manual_steps(file_id, output, root):
    page, direct = drive_urls(file_id)
    return (f"\n  URL: {page} (direct: {direct})\n  Download the file by hand in a browser, save it (e.g. as "
            f"'{output}') and run:\n  python tools/fetch_textures.py --root {root} --archive {output}")


def download_archive(file_id, output, md5=None, quiet=False, root="reid-data"):
    """Download a Google Drive file with gdown to ``output`` (kept; an existing file is reused).

    Raises:
        TextureFetchError: no network, Drive refused, or an md5 mismatch; the message gives the URL
        and the manual route (``--archive``).
    """
    if osp.isfile(output):
        print(f"=> using the archive already at {output} (delete it to download again)")
    else:
        import gdown

        os.makedirs(osp.dirname(osp.abspath(output)), exist_ok=True)
        try:
            got = gdown.download(id=file_id, output=output, quiet=quiet)
        except Exception as exc:  # gdown raises many types (requests, Drive quota/permission errors)
            raise TextureFetchError(
                f"downloading the SAN CUHK03 textures (Google Drive file id {file_id}) failed: "
                f"{type(exc).__name__}: {exc}" + _manual_steps(file_id, output, root)
            ) from exc
        if got is None or not osp.isfile(output):
            raise TextureFetchError(
                f"downloading the SAN CUHK03 textures (Google Drive file id {file_id}) produced no file"
                + _manual_steps(file_id, output, root)
            )
    if md5:
        found = _md5(output)
        if found != md5:
            raise TextureFetchError(
                f"'{output}' has md5 {found}, expected {md5}: the download is damaged or the file changed; "
                "delete it and try again" + _manual_steps(file_id, output, root)
            )
    return output


def archive_members(path):
    """Yield ``(member name, bytes)`` of every file in a zip or tar archive (format found from the content)."""
    if not osp.isfile(path):
        raise TextureFetchError(f"archive '{path}' does not exist")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, zf.read(info)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as tf:
            for member in tf:
                if member.isfile():
                    yield member.name, tf.extractfile(member).read()
    else:
        raise TextureFetchError(
            f"'{path}' is neither a zip nor a tar archive (an HTML page from Drive instead of the file?); "
            "download it again by hand and pass it with --archive"
        )


def layout_cuhk03_textures(archive, dataset_dir, overwrite=False, progress=True):
    """Write the textures of ``archive`` as ``textures`` sidecars of torchreid's CUHK03 at ``dataset_dir``.

    Every member named like a CUHK03 image (see :func:`cuhk03_image_name`) is decoded and written
    (RGB PNG, atomically) to :func:`cuhk03_texture_target`; existing sidecars are kept unless
    ``overwrite``.

    Returns:
        dict: ``written``, ``skipped`` (already there), ``ignored`` (members that are no texture),
        ``textures_dir``, and when ``<dataset_dir>/images_labeled`` exists ``images`` (labeled images)
        and ``images_without_texture``.
    """
    from tqdm import tqdm

    written = skipped = ignored = 0
    with tqdm(desc="textures", unit="img", disable=not progress) as bar:
        for name, data in archive_members(archive):
            target = cuhk03_texture_target(name, dataset_dir)
            if target is None:
                ignored += 1
                continue
            if osp.exists(target) and not overwrite:
                skipped += 1
                continue
            try:
                with Image.open(io.BytesIO(data)) as im:
                    rgb = np.asarray(im.convert("RGB"))
            except (OSError, ValueError, SyntaxError) as exc:
                raise TextureFetchError(f"member '{name}' of '{archive}' is not a readable image ({exc})") from exc
            save_png(target, rgb)
            written += 1
            bar.update(1)
    summary = {"written": written, "skipped": skipped, "ignored": ignored,
               "textures_dir": sidecar_root(osp.abspath(dataset_dir), "textures")}
    image_dir = osp.join(dataset_dir, CUHK03_IMAGE_DIR)
    if osp.isdir(image_dir):
        images = [osp.join(image_dir, f) for f in os.listdir(image_dir) if f.lower().endswith(".png")]
        summary["images"] = len(images)
        summary["images_without_texture"] = sum(
            not osp.exists(sidecar_path(dataset_dir, p, "textures")) for p in images)
    return summary


_DESCRIPTION = ("Download the SAN authors' CUHK03 (labeled) pseudo textures and lay them out as textures/ sidecars of "
                "torchreid's cuhk03 data set.")


def build_parser():
    """The command-line parser of ``tools/fetch_textures.py``."""
    parser = argparse.ArgumentParser(description=_DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--root", required=True, help="data root holding cuhk03/ (torchreid's data.root)")
    parser.add_argument("--file-id", default=SAN_CUHK03_TEXTURES["file_id"], help="Google Drive file id")
    parser.add_argument("--md5", default=SAN_CUHK03_TEXTURES["md5"], help="expected md5 of the archive (optional)")
    parser.add_argument("--output", default=None,
                        help="where the downloaded archive is saved (default: <root>/cuhk03/"
                             f"{SAN_CUHK03_TEXTURES['archive_name']}); an existing file is reused")
    parser.add_argument("--archive", default=None, help="an archive downloaded by hand: lay it out, no download")
    parser.add_argument("--overwrite", action="store_true", help="rewrite textures that already exist")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    """Run ``tools/fetch_textures.py``; returns the summary of :func:`layout_cuhk03_textures`."""
    args = build_parser().parse_args(argv)
    root = osp.abspath(osp.expanduser(args.root))
    dataset_dir = osp.join(root, compat.STOCK_IMAGE_DATASETS["cuhk03"].dataset_dir)
    archive = args.archive
    if archive is None:
        output = args.output or osp.join(dataset_dir, SAN_CUHK03_TEXTURES["archive_name"])
        archive = download_archive(args.file_id, output, md5=args.md5, quiet=args.no_progress, root=args.root)
    summary = layout_cuhk03_textures(archive, dataset_dir, overwrite=args.overwrite, progress=not args.no_progress)
    line = (f"=> cuhk03 textures from {archive}: {summary['written']} written, {summary['skipped']} skipped (already "
            f"there), {summary['ignored']} archive entries ignored, under {summary['textures_dir']}")
    if "images" in summary:
        line += (f"; {summary['images'] - summary['images_without_texture']} of {summary['images']} labeled "
                 "images have a texture")
    print(line)
    if summary["written"] + summary["skipped"] == 0:
        raise TextureFetchError(f"'{archive}' holds no CUHK03 texture (expected names like "
                                "texture_cuhk03_labeled/1_001_1_01.png)")
    return summary


def cli(argv=None):
    """``tools/fetch_textures.py``: :func:`main` with errors printed as ``error: ...`` (exit status 2)."""
    return exit_status(main, argv, (TextureFetchError,))
