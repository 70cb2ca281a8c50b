"""The file check's cache: each file's result, keyed by path, size and modification time (and check parameter).

A second run only stats the files (:mod:`.file_check`). The cache is one JSON file per combination of data-set
directories, in ``data.check_cache`` or the user cache directory (:func:`default_cache_dir`), never inside a
data set. An entry is ``[[size, mtime_ns], problem or None, info, check parameter]``.
"""
import hashlib
import json
import logging
import os
import os.path as osp

from ..utils.io import atomic_write

__all__ = ["CACHE_VERSION", "default_cache_dir", "cache_file_for", "file_stat", "load_cache", "cached_result",
           "save_cache"]

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


def default_cache_dir():
    """``$TORCHREID_DENSE_CACHE`` or ``$XDG_CACHE_HOME/torchreid_dense`` (``~/.cache/torchreid_dense``), + ``file_check``."""
    base = os.environ.get("TORCHREID_DENSE_CACHE") or osp.join(
        os.environ.get("XDG_CACHE_HOME") or osp.join(osp.expanduser("~"), ".cache"), "torchreid_dense")
    return osp.join(base, "file_check")


def cache_file_for(datasets, cache_dir=None):
    """The cache file of a set of data sets: one per combination of their directories."""
    dirs = sorted({osp.abspath(d) for ds in datasets for d in _dataset_dirs(ds)})
    digest = hashlib.sha1("\n".join(dirs).encode()).hexdigest()[:16]
    return osp.join(cache_dir or default_cache_dir(), f"{digest}.json")


def _dataset_dirs(dataset):
    bases = getattr(dataset, "sidecar_bases", None)
    if bases:
        return bases
    return [getattr(dataset, "dataset_dir", "")] if getattr(dataset, "dataset_dir", "") else \
        sorted({osp.dirname(item[0]) for item in dataset.data})


def file_stat(path):
    """``[size, mtime_ns]`` of ``path``, or None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def load_cache(cache_file):
    """The entries of ``cache_file`` (empty when it is missing, unreadable or of another version)."""
    try:
        with open(cache_file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data.get("entries", {}) if data.get("version") == CACHE_VERSION else {}


def cached_result(entries, path, stat, param=None):
    """The cached ``(problem, info)`` of ``path`` when its size, mtime and check parameter are unchanged."""
    entry = entries.get(path)
    if entry is None or stat is None or entry[0] != stat or entry[3] != param:
        return None
    return entry[1], entry[2]


def save_cache(cache_file, entries):
    """Write the entries atomically; an unwritable cache is a warning, never the run's end."""
    try:
        with atomic_write(cache_file, "w") as f:
            json.dump({"version": CACHE_VERSION, "entries": entries}, f)
    except OSError as e:
        logger.warning("file check: cannot write its cache %s (%s); the next run checks every file again",
                       cache_file, e)
