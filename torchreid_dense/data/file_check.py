"""Find bad files before training, all at once: every image of the splits and every sidecar it will read.

A truncated JPEG or a garbage IUV PNG otherwise surfaces only when the sampler first draws it, which in
a long run can be days in. :func:`check_datasets` reads, before the first epoch, each file the loaders
will read, exactly as they read it (images with :func:`~torchreid_dense.compat.read_image`, IUV maps with
:func:`~torchreid_dense.dense.iuv.read_iuv` at their image's size, textures with
:func:`~torchreid_dense.data.texture_io.load_texture` at the texture size, the DSAP cache's arrays by
their header), in a pool of worker processes. Sidecars that do not exist are the wrappers' counted
fallback and are not read.

Results are kept in a JSON cache (:mod:`.file_check_cache`) keyed by path, file size and modification time
(and, for an IUV map, the image size it was checked against), so a second run only stats the files.

All bad files are reported in one :class:`BadFilesError` (path and problem each), or, with
``skip_bad``, their images are dropped from the splits and counted.
"""
import logging
import multiprocessing
import os.path as osp
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from tqdm import tqdm

from .. import compat
from ..dense.iuv import IUVFormatError, read_iuv
from .file_check_cache import (CACHE_VERSION, cache_file_for, cached_result, default_cache_dir, file_stat, load_cache,
                               save_cache)
from .texture_io import TextureReadError, load_texture

__all__ = ["BadFilesError", "check_datasets", "default_cache_dir", "cache_file_for", "CACHE_VERSION"]

logger = logging.getLogger(__name__)

_CHUNK = 256  # items per worker task


class BadFilesError(ValueError):
    """Files of the data sets that cannot be read as training would read them (all of them, one per line)."""


# ------------------------------------------------------------------------------------------------
# What is read, and how (the loaders' own readers)
# ------------------------------------------------------------------------------------------------


def _check_image(path):
    """``(problem or None, [H, W])`` of an image, decoded as the loaders decode it."""
    try:
        image = compat.read_image(path)
    except compat.ImageReadError as e:
        return str(e), None
    return None, [image.height, image.width]


def _check_iuv(path, image_hw):
    try:
        read_iuv(path, size=tuple(image_hw))
    except (IUVFormatError, OSError) as e:
        return str(e), None
    return None, None


def _check_texture(path, texture_size):
    try:
        load_texture(path, tuple(texture_size))
    except (TextureReadError, OSError, ValueError) as e:
        return str(e), None
    return None, None


# sidecar kind -> (reader, how its parameter is obtained from the image size and the data set's options)
_SIDECAR_CHECKS = {
    "densepose": (_check_iuv, lambda hw, options: hw),
    "densepose_gt": (_check_iuv, lambda hw, options: hw),
    "textures": (_check_texture, lambda hw, options: list(options.get("texture_size", (240, 160)))),
}


def _sidecars_of(dataset, path):
    """The ``(kind, sidecar path)`` a data set's item reads (existing files only: others are the fallback)."""
    if not hasattr(dataset, "sidecar_of"):
        return []
    side = dataset.sidecar_of(path)
    return [(dataset.kind, side)] if dataset.kind in _SIDECAR_CHECKS and osp.exists(side) else []


def _check_item(task):
    """Worker: check one image (unless its cached result is given) and its sidecars."""
    image, cached, sidecars, options = task
    out = {}
    if cached is None:
        cached = _check_image(image)
        out[image] = cached
    problem, hw = cached
    for kind, path in sidecars:
        if hw is None:  # the image itself is bad: its sidecars are not reachable
            continue
        reader, param_of = _SIDECAR_CHECKS[kind]
        param = param_of(hw, options)
        out[path] = reader(path, param) + (param,)
    return out


def _check_chunk(tasks):
    results = {}
    for task in tasks:
        results.update(_check_item(task))
    return results


# ------------------------------------------------------------------------------------------------
# The check
# ------------------------------------------------------------------------------------------------


def _dsap_cache_problems(dataset):
    """Problems of a DSAP data set's existing memory-mapped cache arrays (header and size only)."""
    if not (getattr(dataset, "options", {}).get("cache") and hasattr(dataset, "_cache_paths")):
        return []
    dsap_file, valid_file, paths = dataset._cache_paths()
    s = dataset.options["size"]
    problems = []
    for path, shape, dtype in ((dsap_file, (len(paths), 24, 3, s, s), np.uint8), (valid_file, (len(paths), 24), bool)):
        if not osp.exists(path):
            continue  # built from the (checked) images and IUV maps on first use
        try:
            arr = np.load(path, mmap_mode="r")
            ok = arr.shape == shape and arr.dtype == dtype
        except (OSError, ValueError) as e:
            ok, arr = False, e
        if not ok:
            got = f"{arr.shape} {arr.dtype}" if isinstance(arr, np.ndarray) else f"unreadable ({arr})"
            problems.append((path, f"{path}: DSAP cache array is {got}, expected {shape} {np.dtype(dtype)}; delete "
                                   "it and it is rebuilt from the images and IUV maps"))
    return problems


def check_datasets(datasets, skip_bad=False, workers=2, cache_file=None, progress=True):
    """Check every file the ``datasets`` will read; raise on bad ones or, with ``skip_bad``, drop their items.

    Args:
        datasets (iterable): torchreid data sets (``.data`` lists of ``(path, pid, camid, dsetid)``), sidecar
            wrappers included; a data set listed twice is checked once.
        skip_bad (bool): drop items whose image or sidecar is bad (in place, from ``dataset.data``) instead
            of raising.
        workers (int): worker processes (0 or 1: in this process).
        cache_file (str): JSON cache of the results (default: :func:`cache_file_for` in
            :func:`default_cache_dir`); ``False``: no cache.
        progress (bool): a progress bar while files are decoded.

    Returns:
        dict: ``files`` (checked), ``decoded`` (not answered by the cache), ``bad`` (list of
        ``(path, problem)``), ``dropped`` (``{split label: count}``), ``seconds``, ``cache_file``.

    Raises:
        BadFilesError: listing every bad file, when ``skip_bad`` is False (or a DSAP cache array is bad).
    """
    start = time.perf_counter()
    unique = list({id(ds): ds for ds in datasets}.values())
    if cache_file is None:
        cache_file = cache_file_for(unique)
    entries = load_cache(cache_file) if cache_file else {}
    stats, tasks = {}, {}
    item_files = [_plan(ds, entries, stats, tasks) for ds in unique]
    fresh = _decode(list(tasks.values()), workers, progress)
    for path, result in fresh.items():
        if stats.get(path) is not None:
            entries[path] = [stats[path], result[0], result[1], result[2] if len(result) > 2 else None]
    bad, dropped = _collect(unique, item_files, fresh, entries, stats, skip_bad)
    cache_problems = [p for ds in unique for p in _dsap_cache_problems(ds)]
    if cache_file and (fresh or not osp.exists(cache_file)):
        save_cache(cache_file, entries)

    report = {"files": len(stats), "decoded": len(fresh), "bad": bad + cache_problems, "dropped": dropped,
              "seconds": time.perf_counter() - start, "cache_file": cache_file or None}
    if cache_problems or (bad and not skip_bad):
        listed = bad + cache_problems
        raise BadFilesError(
            f"{len(listed)} bad file(s) found before training (of {len(stats)} images and sidecars checked); "
            "fix or delete them, or set data.skip_bad True to drop their images and train on the rest:\n"
            + "\n".join(f"  {problem}" for _, problem in listed))
    logger.info("Checked %d images and sidecars in %.1f s (%d decoded, the rest unchanged since %s)%s",
                len(stats), report["seconds"], len(fresh), cache_file or "(no cache)",
                f"; data.skip_bad dropped {sum(dropped.values())} images whose files are bad: "
                + ", ".join(f"{k} {v}" for k, v in dropped.items()) if dropped else "")
    for _, problem in bad:
        logger.warning("  dropped: %s", problem)
    return report


def _plan(ds, entries, stats, tasks):
    """The files of each item of ``ds`` (image first); adds to ``tasks`` what the cache does not answer."""
    options = dict(getattr(ds, "options", {}))
    files = []
    for item in ds.data:
        image = item[0]
        sidecars = _sidecars_of(ds, image)
        files.append([image] + [p for _, p in sidecars])
        for p in files[-1]:
            if p not in stats:
                stats[p] = file_stat(p)
        image_result = cached_result(entries, image, stats[image])
        hw = image_result[1] if image_result else None
        pending = [(kind, p) for kind, p in sidecars
                   if hw is None or cached_result(entries, p, stats[p], _SIDECAR_CHECKS[kind][1](hw, options)) is None]
        if image_result is None or pending:
            tasks.setdefault((image, tuple(pending)), (image, image_result, pending, options))
    return files


def _decode(task_list, workers, progress):
    """Run the tasks (in ``workers`` processes when there is more than one chunk); ``{path: result}``."""
    fresh = {}
    chunks = [task_list[i:i + _CHUNK] for i in range(0, len(task_list), _CHUNK)]
    with tqdm(total=len(task_list), desc="checking files", unit="img", disable=not progress or not task_list) as bar:
        if int(workers) > 1 and len(chunks) > 1:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            with ProcessPoolExecutor(max_workers=int(workers), mp_context=context) as pool:
                for chunk, result in zip(chunks, pool.map(_check_chunk, chunks)):
                    fresh.update(result)
                    bar.update(len(chunk))
        else:
            for chunk in chunks:
                fresh.update(_check_chunk(chunk))
                bar.update(len(chunk))
    return fresh


def _collect(datasets, item_files, fresh, entries, stats, skip_bad):
    """``(bad, dropped)``: every bad file once with its problem; with ``skip_bad`` the items reading one dropped."""
    def problem_of(path):
        if path in fresh:
            return fresh[path][0]
        entry = entries.get(path)
        if entry is not None and entry[0] == stats.get(path):
            return entry[1]
        return None if stats.get(path) is not None else f"{path}: the file does not exist"

    bad, seen, dropped = [], set(), {}
    for ds, files in zip(datasets, item_files):
        keep = []
        for paths in files:
            problems = [(p, problem) for p, problem in ((p, problem_of(p)) for p in paths) if problem]
            bad += [(p, problem) for p, problem in problems if p not in seen]
            seen.update(p for p, _ in problems)
            keep.append(not problems)
        if skip_bad and not all(keep):
            dropped[f"{type(ds).__name__} ({getattr(ds, 'mode', '?')})"] = keep.count(False)
            ds.data[:] = [item for item, k in zip(ds.data, keep) if k]
    return bad, dropped
