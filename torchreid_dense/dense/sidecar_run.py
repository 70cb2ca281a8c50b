"""The bookkeeping of one run writing ``densepose`` sidecars: what is pending, written, found nobody or bad, and
the two listings it leaves in ``<dataset_dir>/densepose/`` (``no_detection.txt``, ``bad_files.txt``)."""
import contextlib
import os
import os.path as osp

from ..utils.io import atomic_write
from .iuv import write_iuv
from .sidecar import sidecar_path, sidecar_root

__all__ = ["NO_DETECTION_FILE", "BAD_FILES_FILE", "SidecarRun", "format_summary"]

NO_DETECTION_FILE = "no_detection.txt"
BAD_FILES_FILE = "bad_files.txt"


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
