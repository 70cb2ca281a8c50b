"""Cost of DSA-reID (CVPR 2019): parameters, FLOPs, training-step time and achieved FLOP/s per stream.

Prints:

1. parameters and multiply-accumulates (``torch.utils.flop_counter``, 256x128 input, DSAP 24x3x32x32) of the
   inference graph (MF-Stream), the DSAG-Stream, torchreid's stock ``resnet50`` and ResNet-50 with the last
   down-sampling removed (REFERENCE: 2.67 / 4.05 GMAC; MF-Stream ~1.06x the latter; DSAG ~11 GMAC);
2. the time of one training step (forward, loss, backward, Adam) of ``dsa_reid_r18`` against torchreid's
   ``resnet18`` trained with softmax + triplet (batch 32 at 128x64 by default);
3. the DSAG-Stream's achieved FLOP/s relative to the MF-Stream's (forward + backward of each stream alone,
   target >= 0.7: the 24/13/8 branches are grouped convolutions, not a loop).

Usage::

    python benchmarks/bench_dsa_cost.py --threads 2 --batch 32 --steps 5

Timings on a shared machine are noisy: the median of ``--steps`` timed steps (after 2 warm-up steps).
``--json FILE`` writes what is printed as data (``torchreid_dense.benchmark.micro_record.MicroRecord``: with the machine, the load average
and the commit), for ``python benchmarks/render_docs.py``.
"""
import argparse
import statistics
import time

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import torchreid_dense  # noqa: F401  (registers the models into torchreid)
from torchreid_dense.benchmark.micro_record import MicroRecord
from torchreid_dense import compat
from torchreid_dense.losses.dsa_loss import DSALoss
from torchreid_dense.models.dsa_reid import remove_last_stride


def count_flops(fn):
    """FLOPs (2 per multiply-accumulate) of ``fn()`` as counted by ``torch.utils.flop_counter``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def stock_resnet50_feature_params(model):
    """Parameters of torchreid's resnet50 used at inference (without its ID classifier)."""
    return num_params(model) - num_params(model.classifier)


def torchvision_resnet50_last_stride1():
    net = torchvision.models.resnet50(weights=None)
    remove_last_stride(net.layer4)
    net.fc = torch.nn.Identity()
    return net.eval()


@torch.no_grad()
def cost_table(height, width):
    print(f"== parameters and GMAC at {height}x{width} (batch 1; DSAP 24x3x32x32) ==")
    rows = []
    img = torch.rand(1, 3, height, width)
    dsap = torch.rand(1, 24, 3, 32, 32)
    model = compat.models.build_model("dsa_reid", num_classes=751, pretrained=False, use_gpu=False).eval()
    inference = model.inference_module().eval()
    rows.append(("dsa_reid inference graph (MF-Stream)", num_params(inference), count_flops(lambda: inference(img))))
    rows.append(("dsa_reid DSAG-Stream", num_params(model.dsag_stream),
                 count_flops(lambda: model.dsag_stream(dsap))))
    rows.append(("dsa_reid training graph (all, incl. classifiers)", num_params(model), None))
    stock = compat.models.build_model("resnet50", num_classes=751, pretrained=False, use_gpu=False).eval()
    rows.append(("torchreid resnet50 (stock, feature)", stock_resnet50_feature_params(stock),
                 count_flops(lambda: stock(img))))
    ls1 = torchvision_resnet50_last_stride1()
    rows.append(("ResNet-50 last stride 1 (feature)", num_params(ls1), count_flops(lambda: ls1(img))))
    r18 = compat.models.build_model("dsa_reid_r18", num_classes=751, pretrained=False, use_gpu=False).eval()
    small = torch.rand(1, 3, height // 2, width // 2)
    inf18 = r18.inference_module().eval()
    rows.append((f"dsa_reid_r18 inference graph at {height // 2}x{width // 2}", num_params(inf18),
                 count_flops(lambda: inf18(small))))
    rows.append(("dsa_reid_r18 DSAG-Stream", num_params(r18.dsag_stream), count_flops(lambda: r18.dsag_stream(dsap))))
    for name, p, f in rows:
        gmac = "" if f is None else f"{f / 2e9:8.3f} GMAC"
        print(f"{name:52s} {p / 1e6:8.2f} M params  {gmac}")
    ref = dict((n, f) for n, _, f in rows)
    ratio = ref["dsa_reid inference graph (MF-Stream)"] / ref["ResNet-50 last stride 1 (feature)"]
    print(f"MF-Stream / ResNet-50 last stride 1: {ratio:.3f}x")
    mf_p = num_params(inference)
    assert not {id(p) for p in inference.parameters()} & {id(p) for p in model.dsag_stream.parameters()}
    print(f"inference graph holds no DSAG-Stream parameter ({mf_p:,} params, all in mf_stream)")
    return {"height": height, "width": width, "rows": [{"name": n, "params": p, "flops": f} for n, p, f in rows],
            "mf_over_resnet50_ls1": ratio, "inference_params": mf_p, "inference_holds_no_dsag_parameter": True}


def _median_time(step, steps):
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _batch(batch, height, width, num_ids):
    pids = torch.arange(num_ids).repeat_interleave(batch // num_ids)
    return torch.randn(len(pids), 3, height, width), torch.randn(len(pids), 24, 3, 32, 32), pids


def step_times(batch, height, width, steps):
    print(f"== training step, batch {batch} at {height}x{width}, {torch.get_num_threads()} threads ==")
    num_ids = batch // 4
    imgs, dsap, pids = _batch(batch, height, width, num_ids)

    dsa = compat.models.build_model("dsa_reid_r18", num_classes=num_ids, pretrained=False, use_gpu=False).train()
    crit = DSALoss(num_ids)
    opt = torch.optim.Adam(dsa.parameters(), lr=3e-4)

    def dsa_step():
        total, _ = crit(dsa(imgs, dsap), pids)
        opt.zero_grad()
        total.backward()
        opt.step()

    base = compat.models.build_model("resnet18", num_classes=num_ids, loss="triplet", pretrained=False,
                                     use_gpu=False).train()
    ce = compat.losses.CrossEntropyLoss(num_ids, use_gpu=False, label_smooth=True)
    tri = compat.losses.TripletLoss(margin=0.3)
    opt_b = torch.optim.Adam(base.parameters(), lr=3e-4)

    def base_step():
        logits, feats = base(imgs)
        loss = ce(logits, pids) + tri(feats, pids)
        opt_b.zero_grad()
        loss.backward()
        opt_b.step()

    t_dsa = _median_time(dsa_step, steps)
    t_base = _median_time(base_step, steps)
    print(f"dsa_reid_r18 step  {t_dsa * 1000:8.1f} ms")
    print(f"resnet18 baseline  {t_base * 1000:8.1f} ms   (dsa / baseline = {t_dsa / t_base:.2f}x)")

    # achieved FLOP/s of each stream alone (forward + backward)
    def stream_step(stream, x):
        def run():
            out = stream(x)
            sum(v.float().sum() for v in out.values()).backward()
        return run

    results, rows = {}, []
    for name, stream, x in (("MF-Stream", dsa.mf_stream, imgs), ("DSAG-Stream", dsa.dsag_stream, dsap)):
        run = stream_step(stream, x)
        flops = count_flops(run)
        t = _median_time(run, steps)
        results[name] = flops / t
        print(f"{name:12s} fwd+bwd {flops / 1e9:8.2f} GFLOP  {t * 1000:8.1f} ms  {flops / t / 1e9:7.1f} GFLOP/s")
        rows.append({"name": name, "gflop": flops / 1e9, "ms": t * 1000, "gflops_per_s": flops / t / 1e9})
    print(f"DSAG-Stream / MF-Stream achieved FLOP/s: {results['DSAG-Stream'] / results['MF-Stream']:.2f} "
          "(target >= 0.7)")
    return ({"batch": batch, "height": height, "width": width, "threads": torch.get_num_threads(), "steps": steps,
             "dsa_reid_r18_ms": t_dsa * 1000, "resnet18_ms": t_base * 1000},
            {"rows": rows, "dsag_over_mf": results["DSAG-Stream"] / results["MF-Stream"]})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=32, help="training batch (P x 4 images)")
    parser.add_argument("--height", type=int, default=256, help="image height for the cost table")
    parser.add_argument("--width", type=int, default=128, help="image width for the cost table")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median)")
    parser.add_argument("--skip-cost", action="store_true", help="only time the training steps")
    parser.add_argument("--json", default="", metavar="FILE",
                        help="also write the results as data (for python benchmarks/render_docs.py)")
    args = parser.parse_args(argv)
    record = MicroRecord(args.json, "bench_dsa_cost", None if argv is None else ["bench_dsa_cost.py", *argv])
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cost = None if args.skip_cost else cost_table(args.height, args.width)
    steps, streams = step_times(args.batch, args.height // 2, args.width // 2, args.steps)
    record.write(settings={k: v for k, v in vars(args).items() if k != "json"}, cost=cost, steps=steps,
                 streams=streams)


if __name__ == "__main__":
    main()
