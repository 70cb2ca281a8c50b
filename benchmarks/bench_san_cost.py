"""SAN cost: parameters and FLOPs of SA-Enc vs torchreid's ResNet-50, SA-Dec size, and CPU training step time.

Usage::

    python benchmarks/bench_san_cost.py [--threads 2] [--steps 3] [--batch 32] [--json out.json]

FLOPs are counted with ``torch.utils.flop_counter`` (a multiply-add counts as 2 FLOPs; GMAC = FLOPs/2)
for one 256x128 image. The step-time part trains ``san_r18`` (paper loss weights, texture 192x128 =
the SynthReID atlas with tile 32; also without L_TR and with a 96x64 texture) and torchreid's ``resnet18``
(stock, and with last stride 1 like the SA-Enc; label-smoothed cross entropy + batch-hard triplet, as
torchreid's triplet engine) on random 128x64 batches, SGD, CPU.

``--json FILE`` writes the printed figures as data: ``cost`` (per backbone) and ``step_time`` (per model, with
its ``setting``), plus the fields of ``torchreid_dense.benchmark.micro_record.MicroRecord`` (the machine, the load average, the command line
and the commit), for ``python benchmarks/render_docs.py``.
"""
import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import torchreid_dense  # noqa: F401  (registers the models)
from torchreid_dense.benchmark.micro_record import MicroRecord
from torchreid_dense import compat
from torchreid_dense.losses import SANLoss
from torchreid_dense.models.san import build_san


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def gmac(module, shape):
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.randn(*shape))
    return counter.get_total_flops() / 2e9


def torchreid_resnet(name, last_stride):
    """torchreid's ResNet of ``name`` (resnet18/resnet50) with the given last stride."""
    m = compat.models.resnet
    block, layers = {"resnet18": (m.BasicBlock, [2, 2, 2, 2]), "resnet50": (m.Bottleneck, [3, 4, 6, 3])}[name]
    return m.ResNet(num_classes=751, loss="softmax", block=block, layers=layers, last_stride=last_stride)


def cost_table():
    rows = {}
    for backbone, dim in (("resnet50", 2048), ("resnet18", 512)):
        san = build_san(751, backbone, pretrained=False)
        stock = compat.models.build_model(backbone, num_classes=751, pretrained=False)
        ls1 = torchreid_resnet(backbone, last_stride=1)
        stock_params = sum(p.numel() for n, p in stock.named_parameters() if not n.startswith("classifier."))
        enc, dec = n_params(san.encoder), n_params(san.decoder)
        fe4 = torch.randn(1, dim, 16, 8)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            san.decoder.eval()(fe4)
        rows[backbone] = {
            "sa_enc_params": enc,
            "torchreid_params_wo_classifier": stock_params,
            "inference_params_equal": n_params(san.inference_module()) == stock_params,
            "sa_dec_params": dec,
            "sa_dec_ratio": dec / enc,
            "sa_dec_widths": [b.conv1.out_channels for b in san.decoder.blocks],
            "sa_enc_gmac_256x128": gmac(san.inference_module(), (1, 3, 256, 128)),
            "torchreid_last_stride1_gmac": gmac(ls1, (1, 3, 256, 128)),
            "torchreid_stock_gmac": gmac(stock, (1, 3, 256, 128)),
            "sa_dec_gmac_texture_240x160": counter.get_total_flops() / 2e9,
        }
    return rows


def _time_steps(step, steps):
    step()  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), times


def step_times(batch, steps, height=128, width=64, texture=(192, 128), num_classes=100):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    imgs = torch.randn(batch, 3, height, width, generator=g)
    pids = torch.arange(batch // 4).repeat_interleave(4)

    ce = compat.losses.CrossEntropyLoss(num_classes=num_classes, use_gpu=False, label_smooth=True)
    tri = compat.losses.TripletLoss(margin=0.3)
    results = {}
    baselines = (
        ("baseline_resnet18", compat.models.build_model("resnet18", num_classes, loss="triplet", pretrained=False)),
        ("baseline_resnet18_last_stride1", torchreid_resnet("resnet18", last_stride=1)),
    )
    for name, base in baselines:
        base.loss = "triplet"
        base.classifier = torch.nn.Linear(base.feature_dim, num_classes)
        base.train()
        opt_b = torch.optim.SGD(base.parameters(), lr=1e-4)

        def base_step():
            logits, f = base(imgs)
            loss = ce(logits, pids) + tri(f, pids)
            opt_b.zero_grad()
            loss.backward()
            opt_b.step()

        results[name] = _time_steps(base_step, steps)
    small_tex = (texture[0] // 2, texture[1] // 2)
    variants = (
        ("san_r18", 1.0, texture),
        ("san_r18_basic_no_tr", 0.0, texture),
        (f"san_r18_texture{small_tex[0]}x{small_tex[1]}", 1.0, small_tex),
    )
    for name, weight_tr, tex in variants:
        san = build_san(num_classes, "resnet18", pretrained=False, texture_size=tex).train()
        opt_s = torch.optim.SGD(san.parameters(), lr=1e-4)
        crit = SANLoss(num_classes, weight_tr=weight_tr)
        tgt = torch.randn(batch, 3, *tex, generator=g)
        val = torch.ones(batch, 1, *tex, dtype=torch.bool)

        def san_step():
            loss, _ = crit(san(imgs), pids, tgt, val)
            opt_s.zero_grad()
            loss.backward()
            opt_s.step()

        results[name] = _time_steps(san_step, steps)
    return {k: {"min_s": v[0], "median_s": v[1], "all_s": v[2]} for k, v in results.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--skip-time", action="store_true", help="only parameters and FLOPs")
    parser.add_argument("--json", default="", metavar="FILE",
                        help="also write the results to this file (for python benchmarks/render_docs.py)")
    args = parser.parse_args(argv)
    record = MicroRecord(args.json, "bench_san_cost", None if argv is None else ["bench_san_cost.py", *argv])
    torch.set_num_threads(args.threads)

    out = {"cost": cost_table()}
    for backbone, r in out["cost"].items():
        print(f"[{backbone}] SA-Enc params {r['sa_enc_params']:,} | torchreid {backbone} w/o classifier "
              f"{r['torchreid_params_wo_classifier']:,} | equal: {r['inference_params_equal']}")
        print(f"[{backbone}] SA-Dec params {r['sa_dec_params']:,} (widths {r['sa_dec_widths']}) "
              f"= {r['sa_dec_ratio']:.4f} x SA-Enc")
        print(f"[{backbone}] GMAC @256x128: SA-Enc (inference) {r['sa_enc_gmac_256x128']:.3f} | torchreid "
              f"last stride 1 {r['torchreid_last_stride1_gmac']:.3f} | torchreid stock (stride 2) "
              f"{r['torchreid_stock_gmac']:.3f} | SA-Dec (training only, texture 240x160) "
              f"{r['sa_dec_gmac_texture_240x160']:.3f}")
    if not args.skip_time:
        out["step_time"] = step_times(args.batch, args.steps)
        out["step_time"]["setting"] = {"batch": args.batch, "input": "128x64", "texture": "192x128",
                                       "threads": args.threads, "steps": args.steps}
        # the minimum is the least disturbed by other processes on a shared machine
        base = out["step_time"]["baseline_resnet18"]["min_s"]
        for name, r in out["step_time"].items():
            if name != "setting":
                print(f"[step] {name}: min {r['min_s']:.3f} s/step (x{r['min_s'] / base:.2f} stock baseline), "
                      f"median {r['median_s']:.3f}, runs {[round(t, 3) for t in r['all_s']]}")
    record.write(settings={k: v for k, v in vars(args).items() if k != "json"}, **out)


if __name__ == "__main__":
    main()
