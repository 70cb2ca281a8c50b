"""Cold and warm time of the file check before training on a Market-1501-size tree (issue 12 target:
~33k files incl. sidecars in < 60 s cold on 2 cores, < 5 s warm).

Builds, in a temporary directory, a Market-1501 layout (torchreid's names and its split proportions,
12,936 : 3,368 : 15,913) of copies of SynthReID images (128x64, like Market-1501's) and of their estimated
IUV sidecars, loads it as ``market1501_dsap`` and times
:func:`~torchreid_dense.data.file_check.check_datasets` twice: with an empty cache (every file decoded)
and again (answered by the cache: one stat per file).

    python benchmarks/bench_file_check.py [--images 16500] [--workers 2] [--source SYNTHREID_DIR] [--hardlink]

``--images 32217`` is Market-1501's own image count (train + query + gallery without junk): 64,434 files
with the IUV maps. The files were just written, so "cold" means cold for the check (nothing cached by it),
with the file contents in the OS page cache; a first read from a slow disk adds its read time.
``--json FILE`` writes what is printed as data (``torchreid_dense.benchmark.micro_record.MicroRecord``: with the machine, the load average
and the commit), for ``python benchmarks/render_docs.py``.
"""
import argparse
import contextlib
import io
import os
import os.path as osp
import shutil
import tempfile
import time

from torchreid_dense.benchmark.micro_record import MicroRecord
from torchreid_dense.data import DenseImageDataManager
from torchreid_dense.data.file_check import check_datasets
from torchreid_dense.data.synth.generate import ensure_dataset
from torchreid_dense.dense import sidecar_path

MARKET_SPLITS = (("bounding_box_train", 12936, range(1, 752)), ("query", 3368, range(752, 1502)),
                 ("bounding_box_test", 15913, range(752, 1502)))


def source_pairs(source):
    """``(image, IUV sidecar)`` of every SynthReID re-ID image that has an estimated IUV map."""
    pairs = []
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        folder = osp.join(source, split)
        for name in sorted(os.listdir(folder)):
            image = osp.join(folder, name)
            iuv = sidecar_path(source, image, "densepose")
            if osp.exists(iuv):
                pairs.append((image, iuv))
    return pairs


def build_market_tree(root, pairs, num_images, hardlink=False):
    """``<root>/market1501`` with ``num_images`` images in Market-1501's proportions, each with its IUV map."""
    place = os.link if hardlink else shutil.copyfile
    ds_dir = osp.join(root, "market1501")
    total = sum(n for _, n, _ in MARKET_SPLITS)
    k = 0
    for split, count, pids in MARKET_SPLITS:
        folder = osp.join(ds_dir, "Market-1501-v15.09.15", split)
        os.makedirs(folder)
        for i in range(max(1, round(num_images * count / total))):
            image, iuv = pairs[k % len(pairs)]
            pid, cam = pids[i % len(pids)], 1 + (i // len(pids)) % 6
            path = osp.join(folder, f"{pid:04d}_c{cam}s1_{i:06d}_00.jpg")
            place(image, path)
            target = sidecar_path(ds_dir, path, "densepose")
            os.makedirs(osp.dirname(target), exist_ok=True)
            place(iuv, target)
            k += 1
    return ds_dir, k


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16500, help="images (each with an IUV map: 2x the files)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the check")
    parser.add_argument("--source", default="", help="a SynthReID directory to copy from (default: generate tiny)")
    parser.add_argument("--hardlink", action="store_true", help="hard-link instead of copying the files")
    parser.add_argument("--json", default="", metavar="FILE",
                        help="also write the results as data (for python benchmarks/render_docs.py)")
    args = parser.parse_args(argv)
    record = MicroRecord(args.json, "bench_file_check", None if argv is None else ["bench_file_check.py", *argv])
    checks = []

    with tempfile.TemporaryDirectory(prefix="bench_file_check_") as tmp:
        source = args.source or ensure_dataset(osp.join(tmp, "src"), "tiny", 0, progress=False)
        pairs = source_pairs(source)
        t0 = time.perf_counter()
        ds_dir, n = build_market_tree(osp.join(tmp, "data"), pairs, args.images, args.hardlink)
        build_s = time.perf_counter() - t0
        print(f"tree: {n} images + {n} IUV maps = {2 * n} files from {len(pairs)} SynthReID images "
              f"({'hard links' if args.hardlink else 'copies'}, {build_s:.1f} s to build)")
        tree = {"images": n, "files": 2 * n, "source_images": len(pairs), "hardlink": args.hardlink,
                "build_s": build_s}
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # torchreid's data-set tables
            dm = DenseImageDataManager(root=osp.join(tmp, "data"), sources="market1501_dsap",
                                       targets="market1501_dsap", height=128, width=64, workers=0, use_gpu=False,
                                       file_check=False)
        manager_s = time.perf_counter() - t0
        print(f"data manager (torchreid's parsing + sidecar lookup): {manager_s:.1f} s")
        cache = osp.join(tmp, "cache", "check.json")
        for label in ("cold", "warm"):
            report = check_datasets(dm.datasets(), workers=args.workers, cache_file=cache, progress=False)
            print(f"{label}: {report['seconds']:.2f} s for {report['files']} files ({report['decoded']} decoded, "
                  f"{len(report['bad'])} bad), {args.workers} worker processes, {os.cpu_count()} CPUs")
            checks.append({"label": label, "seconds": report["seconds"], "files": report["files"],
                           "decoded": report["decoded"], "bad": len(report["bad"])})
    record.write(settings={k: v for k, v in vars(args).items() if k != "json"}, tree=tree,
                 data_manager_s=manager_s, checks=checks)


if __name__ == "__main__":
    main()
