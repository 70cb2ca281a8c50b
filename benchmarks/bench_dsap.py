"""DSAP-warping throughput on this machine's CPU (issue 2 target: >= 2,000 images/s per core).

Warps batches of 256x128 images with S = 32, through the fused single-pass Numba kernel (what
``warp_dsap`` uses for CPU tensors) and through the pure-torch path (GPU and fallback), and compares
with a naive per-pixel Python loop measured in the same run on a few images.

    python benchmarks/bench_dsap.py [--batch 64] [--threads N] [--iters 20] [--json FILE]

``--json FILE`` writes what is printed as data (``torchreid_dense.benchmark.micro_record.MicroRecord``: with the machine, the load average
and the commit), for ``python benchmarks/render_docs.py``.
"""
import argparse
import os
import time

import numpy as np
import torch

from torchreid_dense.benchmark.micro_record import MicroRecord
from torchreid_dense.dense import NUM_CHARTS, warp_dsap


def synthetic_batch(batch, h, w, seed=0):
    """Person-like IUV maps: ~55% body pixels spread over all charts, smooth U/V."""
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, size=(batch, 3, h, w), dtype=np.uint8))
    yy, xx = np.mgrid[0:h, 0:w]
    labels = (1 + (yy * 6 // h) * 4 + (xx * 4 // w)) % (NUM_CHARTS + 1)
    body = np.abs(xx - w / 2) < w * 0.3
    labels = np.where(body, np.maximum(labels, 1), 0)
    iuv = np.stack([labels, (xx * 255 // w), (yy * 255 // h)]).astype(np.uint8)
    return images, torch.from_numpy(np.broadcast_to(iuv, (batch, 3, h, w)).copy())


def naive_warp(image, iuv, size):
    """One image, one pixel at a time (the obvious implementation)."""
    c, h, w = image.shape
    out = np.empty((NUM_CHARTS, c, size, size), dtype=np.float32)
    out[:] = image.reshape(c, -1).mean(axis=1)[None, :, None, None]
    for y in range(h):
        for x in range(w):
            part = iuv[0, y, x]
            if part:
                r = min(iuv[1, y, x] * size // 255, size - 1)
                col = min(iuv[2, y, x] * size // 255, size - 1)
                out[part - 1, :, r, col] = image[:, y, x]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--naive-images", type=int, default=3)
    parser.add_argument("--json", default="", metavar="FILE",
                        help="also write the results as data (for python benchmarks/render_docs.py)")
    args = parser.parse_args(argv)
    record = MicroRecord(args.json, "bench_dsap", None if argv is None else ["bench_dsap.py", *argv])
    rates = []
    torch.set_num_threads(args.threads)
    images, iuv = synthetic_batch(args.batch, args.height, args.width)
    print(f"DSAP warping: batch {args.batch} of {args.height}x{args.width}, S={args.size}, "
          f"{args.threads} thread(s), {os.cpu_count()} core(s) on this machine")
    for backend in ("kernel", "torch"):
        for reduce in ("last", "mean"):
            warp_dsap(images, iuv, size=args.size, reduce=reduce, backend=backend)  # warm-up (and JIT compile)
            t0 = time.perf_counter()
            for _ in range(args.iters):
                warp_dsap(images, iuv, size=args.size, reduce=reduce, backend=backend)
            dt = time.perf_counter() - t0
            rate = args.iters * args.batch / dt
            # the kernel is serial: its rate is per core whatever --threads says
            per_core = rate if backend == "kernel" else rate / args.threads
            print(f"  warp_dsap(reduce={reduce!r}, backend={backend!r}): {rate:8.0f} images/s  "
                  f"({per_core:6.0f} per core)")
            rates.append({"backend": backend, "reduce": reduce, "images_per_s": rate,
                          "images_per_s_per_core": per_core})
    img_np, iuv_np = images.numpy().astype(np.float32), iuv.numpy().astype(np.int64)
    t0 = time.perf_counter()
    for i in range(args.naive_images):
        naive_warp(img_np[i], iuv_np[i], args.size)
    naive = args.naive_images / (time.perf_counter() - t0)
    print(f"  naive per-pixel loop:        {naive:8.1f} images/s")
    for backend in ("kernel", "torch"):
        d, _ = warp_dsap(images[:1], iuv[:1], size=args.size, reduce="last", backend=backend)
        assert np.allclose(d[0].numpy(), naive_warp(img_np[0], iuv_np[0], args.size)), f"{backend}: mismatch"
    print("  both backends agree with the naive loop (reduce='last')")
    record.write(settings={k: v for k, v in vars(args).items() if k != "json"}, rates=rates,
                 naive_images_per_s=naive, agree_with_naive=True)


if __name__ == "__main__":
    main()
