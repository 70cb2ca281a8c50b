"""Images per second of ``tools/extract_densepose.py`` per ``--batch-size`` (issue 25), on the CPU by default.

Runs the extractor's own loop (DataLoader decoding, same-size batches, DensePose, main-box pasting, atomic PNG
writes) on 128x64 re-ID crops of SynthReID tiny (generated into a temporary folder unless --source is given)
with a randomly initialised DensePose R50-FPN built from densepose_rcnn_R_50_FPN_s1x.yaml: no weights are
downloaded. Every ResNet bottleneck block's last norm scale (``block.conv3.norm.weight``) is zeroed, so the
blocks start as identities and the detector gives person-sized boxes; ``--detections-per-image`` (default 2:
a crop's person plus a fragment, as real DensePose finds on re-ID crops) bounds the boxes the DensePose head
runs on, and the coarse segmentation leans to "person" so that box pixels get charts and UVs (a random head
marks almost none). After the timings it says whether every batch size wrote the same bytes as the first.

    python benchmarks/bench_extract.py [--batch-sizes 1 8] [--images 16] [--workers 2] [--device cpu]

Needs detectron2 and DensePose; without them it prints how to install them and exits with status 2 (nothing
was measured). Timings on a shared machine are noisy: compare batch sizes within one run.
"""
import argparse
import importlib.util
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

import torch

from torchreid_dense.dense.densepose import extract_densepose_sidecars, list_dataset_images

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_NAME = "densepose_rcnn_R_50_FPN_s1x.yaml"


def load_extract_tool():
    """``tools/extract_densepose.py`` as a module (tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("extract_densepose", osp.join(REPO, "tools", "extract_densepose.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_detectron2(tool):
    """Exit with status 2 and the install commands when detectron2 or DensePose is missing."""
    try:
        tool.import_detectron2()
    except SystemExit as e:
        print(f"bench_extract needs detectron2 and DensePose; nothing was measured.\n{e.code}", file=sys.stderr)
        raise SystemExit(2) from None


def default_config():
    """DensePose's R50-FPN config beside its package (a from-source install), or None."""
    import densepose
    path = osp.join(osp.dirname(osp.dirname(densepose.__file__)), "configs", CONFIG_NAME)
    return path if osp.isfile(path) else None


def random_densepose(tool, config, device, detections_per_image, min_score):
    """``(predict_batch, prepare)`` of a random DensePose R50-FPN with identity-start bottleneck blocks."""
    torch.manual_seed(0)
    cfg = tool.densepose_config(config, device=device, min_score=min_score,
                                opts=["TEST.DETECTIONS_PER_IMAGE", str(detections_per_image)])
    model = tool.build_densepose_model(cfg, weights=None)
    for module in model.backbone.bottom_up.modules():
        if hasattr(module, "conv3"):  # a ResNet bottleneck block
            module.conv3.norm.weight.zero_()
    with torch.no_grad():  # coarse segmentation leaning to "person": every box pixel gets a chart and UV
        model.roi_heads.densepose_predictor.ann_index_lowres.bias[1] += 10
    return tool.DensePoseBatchPredictor(model, min_score=min_score), tool.DensePoseInput(cfg)


def copy_images(source, target, count):
    """The first ``count`` images of ``source`` copied to ``target`` (sidecar folders left out)."""
    images = list_dataset_images(source)[:count]
    for path in images:
        out = osp.join(target, osp.relpath(path, source))
        os.makedirs(osp.dirname(out), exist_ok=True)
        shutil.copyfile(path, out)
    return list_dataset_images(target)


def sidecar_bytes(dataset_dir):
    """Relative path -> bytes of every file under ``<dataset_dir>/densepose``."""
    folder = osp.join(dataset_dir, "densepose")
    return {osp.relpath(osp.join(d, f), folder): open(osp.join(d, f), "rb").read()
            for d, _, files in os.walk(folder) for f in files}


def build_parser():
    """Command-line arguments of the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="batch sizes to time (default 1 8)")
    p.add_argument("--images", type=int, default=16, help="images per timing (default 16)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader decoding processes (default 2)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--detections-per-image", type=int, default=2, help="boxes kept per image (default 2)")
    p.add_argument("--min-score", type=float, default=0.05, help="score threshold (default 0.05: random scores)")
    p.add_argument("--config", default=None, help=f"DensePose config (default: {CONFIG_NAME} beside the package)")
    p.add_argument("--source", default=None, help="folder of images to use (default: SynthReID tiny, generated)")
    return p


def main(argv=None):
    """Time the extractor at each batch size; prints images/s and whether the outputs agree."""
    args = build_parser().parse_args(argv)
    tool = load_extract_tool()
    require_detectron2(tool)
    config = args.config or default_config()
    if config is None:
        raise SystemExit(f"bench_extract: error: {CONFIG_NAME} not found beside the densepose package; pass --config "
                         f"detectron2/projects/DensePose/configs/{CONFIG_NAME}")
    if args.threads:
        torch.set_num_threads(args.threads)
    predict, prepare = random_densepose(tool, config, args.device, args.detections_per_image, args.min_score)
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        source = args.source
        if source is None:
            from torchreid_dense.data.synth.generate import ensure_dataset
            source = ensure_dataset(tmp, "tiny", 0, progress=False)
        warm = copy_images(source, osp.join(tmp, "warm"), 1)
        extract_densepose_sidecars(osp.join(tmp, "warm"), warm, predict, prepare, batch_size=1, workers=0,
                                   progress=False)
        print(f"DensePose R50-FPN (random, identity-start blocks) on {args.device}, {torch.get_num_threads()} "
              f"threads, {args.workers} workers, {args.images} images")
        outputs = {}
        for batch_size in args.batch_sizes:
            target = osp.join(tmp, f"b{batch_size}")
            images = copy_images(source, target, args.images)
            start = time.perf_counter()
            summary = extract_densepose_sidecars(target, images, predict, prepare, batch_size=batch_size,
                                                 workers=args.workers, progress=False)
            seconds = time.perf_counter() - start
            outputs[batch_size] = sidecar_bytes(target)
            print(f"--batch-size {batch_size:3d}: {len(images) / seconds:7.3f} images/s ({seconds:.1f} s, "
                  f"{summary['written']} IUV maps, {len(summary['no_detection'])} without detection)", flush=True)
        first = args.batch_sizes[0]
        for batch_size in args.batch_sizes[1:]:
            same = outputs[batch_size] == outputs[first]
            print(f"--batch-size {batch_size} wrote {'the same bytes as' if same else 'OTHER bytes than'} "
                  f"--batch-size {first}")


if __name__ == "__main__":
    main(sys.argv[1:])
