"""SynthReID throughput: images/s per CPU core of rendering with the exact IUV and atlas lookups.

Per-core figures use the process's CPU time, so they hold on a shared machine; wall-clock figures
are printed beside them. Line 1 is the renderer (pose, ray casting, z-buffer, exact IUV, atlas
lookup through the quantized IUV, lighting, background, occluder, camera degradation: the issue's
target of 200 images/s per core); line 2 adds the estimated (DensePose-like) IUV; line 3 adds the
identity atlases and encoding/writing every file of an image (JPEG, two IUV PNGs, the atlas) as
the generator does.

    python benchmarks/bench_synth.py [--images 400] [--height 128 --width 64] [--json FILE]

``--json FILE`` writes what is printed as data (``torchreid_dense.benchmark.micro_record.MicroRecord``: with the machine, the load average
and the commit), for ``python benchmarks/render_docs.py``.
"""
import argparse
import tempfile
import time

import numpy as np

from torchreid_dense.benchmark.micro_record import MicroRecord
from torchreid_dense.data.synth.body import build_body, sample_pose
from torchreid_dense.data.synth.cameras import CAMERAS, NUM_CAMERAS, sample_view
from torchreid_dense.data.synth.degrade import estimate_iuv
from torchreid_dense.data.synth.generate import _Renderer, identity, make_config
from torchreid_dense.data.synth.plan import plan_images
from torchreid_dense.data.synth.render import render


def _timed(fn, n):
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=400)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--ids", type=int, default=25, help="identities cycled through (atlases built once each)")
    p.add_argument("--json", default="", metavar="FILE",
                   help="also write the results as data (for python benchmarks/render_docs.py)")
    a = p.parse_args(argv)
    record = MicroRecord(a.json, "bench_synth", None if argv is None else ["bench_synth.py", *argv])
    stages = []
    config = make_config("small", height=a.height, width=a.width)
    people = [identity(0, "bounding_box_train", pid, config.tile) for pid in range(1, a.ids + 1)]

    def views(i):
        shape, _, atlas = people[i % len(people)]
        rng = np.random.default_rng([1, i])
        style = CAMERAS[i % NUM_CAMERAS]
        view = sample_view(rng, style, config.height, config.width, jitter=config.box_jitter)
        return shape, atlas, style, view, rng

    def rendered(i):
        shape, atlas, style, view, rng = views(i)
        return render(build_body(shape, sample_pose(rng), view.yaw), atlas, view, style, rng, config.height,
                      config.width, occluder_prob=config.occluder), rng

    def estimated(i):
        out, rng = rendered(i)
        estimate_iuv(out.iuv, rng, config.degrade)

    rendered(0)  # warm-up (imports, caches)
    for label, fn in (("render + exact IUV + atlas lookup", rendered), ("... + estimated IUV", estimated)):
        per_core, wall = _timed(fn, a.images)
        print(f"{label} {a.height}x{a.width}: {per_core:.0f} images/s per core (CPU time), {wall:.0f} images/s wall")
        stages.append({"label": label, "images": a.images, "per_core": per_core, "wall": wall})

    jobs = plan_images(config, 0)[: a.images]
    with tempfile.TemporaryDirectory() as tmp:
        writer = _Renderer(config, 0, tmp)
        per_core, wall = _timed(lambda i: writer(jobs[i]), len(jobs))
    print(f"... + identity atlases and writing all files: {per_core:.0f} images/s per core "
          f"(CPU time), {wall:.0f} images/s wall")
    stages.append({"label": "... + identity atlases and writing all files", "images": len(jobs), "per_core": per_core,
                   "wall": wall})
    record.write(settings={k: v for k, v in vars(a).items() if k != "json"}, stages=stages)


if __name__ == "__main__":
    main()
