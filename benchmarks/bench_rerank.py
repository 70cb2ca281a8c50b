"""Benchmark ``torchreid_dense.metrics.rerank`` / ``rerank_features`` against torchreid's ``re_ranking``.

Synthetic test splits with identity and camera structure (``bench_eval.synthetic_features``, 256-d
features, noise 1.6, squared Euclidean distances as torchreid's ``compute_distance_matrix``), k1=20, k2=6,
lambda=0.3:

* 1,000 x 6,000: torchreid and ours (dense distance matrices in, and features in), agreement.
* Market-1501 size, 3,368 x 15,913: the same (torchreid takes 10-15 minutes on 2 cores).
* MSMT17 size, 11,659 x 82,161: ours from features only (its dense distance matrices would take
  35 GB; torchreid cannot run here).

Agreement: the largest absolute difference of the re-ranked distances, and the CMC / mAP of both
re-ranked matrices under ``evaluate_rank``. Memory: peak resident set size during the call minus the
size before it (``bench_eval.measure``); the inputs (distance matrices or features) are built before
the measurement and not counted, the ``[q, g]`` output is.

Both entry points are called once on a tiny problem first, so the times exclude loading their
compiled kernels.

``--torchreid-cache DIR`` keeps torchreid's result and figures per problem in DIR (an ``.npy`` and a
``.json``), so that a later run compares against them without the 10-15 minutes; the report then
says when they were measured.

Usage::

    python benchmarks/bench_rerank.py                           # everything (about 20 minutes)
    python benchmarks/bench_rerank.py --skip-torchreid --skip-market
    python benchmarks/bench_rerank.py --torchreid-cache /tmp/rerank_ref --skip-msmt
    python benchmarks/bench_rerank.py --json benchmarks/results/micro/bench_rerank.json  # also the figures as data

``--json FILE`` writes what is printed as data (``torchreid_dense.benchmark.micro_record.MicroRecord``: with the machine, the load average
and the commit), for ``python benchmarks/render_docs.py``.
"""
import argparse
import datetime
import json
import os
import os.path as osp

import numpy as np
import torch

from bench_eval import (MARKET, MSMT17, json_argument, measure, parse_arguments, problem_arguments, settings_of,
                        synthetic_features)
from torchreid_dense.benchmark.micro_record import MicroRecord
from torchreid_dense import compat
from torchreid_dense.metrics import evaluate_rank, rerank, rerank_features

SMALL = dict(name="small", num_query=1000, num_gallery=6000, num_ids=300, num_distractors=1000, num_cams=6)
PARAMS = dict(k1=20, k2=6, lambda_value=0.3)


def _mib(nbytes):
    return f"{nbytes / 2 ** 20:8.1f} MiB"


def _metrics(distmat, ids):
    cmc, mAP = evaluate_rank(distmat, *ids)
    return cmc, mAP


def _torchreid(problem, args, dists):
    """torchreid's ``re_ranking`` on the dense matrices: (result, seconds, peak bytes, note), cached on request."""
    key = f"{problem['name']}_{problem['num_query']}x{problem['num_gallery']}_d{args.dim}_n{args.noise}_s{args.seed}"
    cache = osp.join(args.torchreid_cache, key) if args.torchreid_cache else None
    if cache and osp.exists(cache + ".json"):
        with open(cache + ".json") as f:
            meta = json.load(f)
        return np.load(cache + ".npy"), meta["seconds"], meta["peak_bytes"], f"cached, measured {meta['when']}"
    result, seconds, peak, _ = measure(lambda: compat.utils.re_ranking(*dists, **PARAMS))
    if cache:
        os.makedirs(args.torchreid_cache, exist_ok=True)
        np.save(cache + ".npy", result)
        with open(cache + ".json", "w") as f:
            json.dump({"seconds": seconds, "peak_bytes": peak, "threads": torch.get_num_threads(),
                       "when": datetime.datetime.now().isoformat(timespec="minutes")}, f)
    return result, seconds, peak, "this run"


def warm_up(device):
    """One small call of each entry point, so that the timings exclude loading the compiled kernels."""
    qf, gf = synthetic_features(**dict(SMALL, num_query=40, num_gallery=200, num_ids=20, num_distractors=0),
                                dim=8)[:2]
    dists = tuple(compat.metrics.compute_distance_matrix(a, b).numpy() for a, b in ((qf, gf), (qf, qf), (gf, gf)))
    rerank_features(qf.to(device), gf.to(device), **PARAMS, device=device)
    rerank(*dists, **PARAMS, device=device)


def run_problem(problem, args, with_torchreid, dense, record=None):
    qf, gf, *ids = synthetic_features(**problem, dim=args.dim, noise=args.noise, seed=args.seed)
    rec = {"name": problem["name"], "num_query": int(qf.shape[0]), "num_gallery": int(gf.shape[0]), "dim": args.dim,
           "dense_matrix_bytes": 4 * (qf.shape[0] + gf.shape[0]) ** 2, "entries": []}
    if record is not None:
        record.append(rec)
    print(f"\n== {problem['name']}-sized problem: {qf.shape[0]} queries x {gf.shape[0]} gallery, {args.dim}-d "
          f"features; dense (q+g)^2 float32 matrix {4 * (qf.shape[0] + gf.shape[0]) ** 2 / 1e9:.2f} GB")
    device = args.device
    feats = (qf.to(device), gf.to(device))
    ours_f, t_f, mem_f, _ = measure(lambda: rerank_features(*feats, **PARAMS, device=device))
    ours_f = ours_f.cpu().numpy()
    print(f"  ours (features):  {t_f:8.2f} s   peak {_mib(mem_f)} (output {_mib(ours_f.nbytes)} included)")
    cmc_f, map_f = _metrics(ours_f, ids)
    rec["entries"].append({"name": "ours (features)", "seconds": t_f, "peak_bytes": mem_f,
                           "output_bytes": int(ours_f.nbytes), "R1": float(cmc_f[0]), "mAP": float(map_f)})
    if not dense:
        print(f"  re-ranked: R1 {cmc_f[0]:.4f} mAP {map_f:.4f}")
        return
    dist = compat.metrics.compute_distance_matrix
    dists = tuple(dist(a, b).numpy() for a, b in ((qf, gf), (qf, qf), (gf, gf)))
    ours_d, t_d, mem_d, _ = measure(lambda: rerank(*dists, **PARAMS, device=device))
    print(f"  ours (distances): {t_d:8.2f} s   peak {_mib(mem_d)}")
    cmc_d, map_d = _metrics(ours_d, ids)
    cmc_0, map_0 = _metrics(dists[0], ids)
    rec["entries"].append({"name": "ours (distances)", "seconds": t_d, "peak_bytes": mem_d, "R1": float(cmc_d[0]),
                           "mAP": float(map_d)})
    rec["features_vs_distances_max_abs"] = float(np.abs(ours_f - ours_d).max())
    rec["before"] = {"R1": float(cmc_0[0]), "mAP": float(map_0)}
    print(f"  features vs distances: max |d| {np.abs(ours_f - ours_d).max():.1e}; R1 {cmc_d[0]:.4f} mAP {map_d:.4f} "
          f"(distances), R1 {cmc_f[0]:.4f} mAP {map_f:.4f} (features); before re-ranking R1 {cmc_0[0]:.4f} "
          f"mAP {map_0:.4f}")
    if not with_torchreid:
        return
    ref, t_ref, mem_ref, note = _torchreid(problem, args, dists)
    cmc_r, map_r = _metrics(ref, ids)
    diff = float(np.abs(ours_d - ref).max())
    same = np.array_equal(cmc_r, cmc_d) and map_r == map_d
    rec["entries"].append({"name": "torchreid", "seconds": t_ref, "peak_bytes": mem_ref, "R1": float(cmc_r[0]),
                           "mAP": float(map_r), **({"note": note} if note != "this run" else {})})
    rec["agreement"] = {"max_abs": diff, "identical_cmc_map": bool(same)}
    print(f"  torchreid:        {t_ref:8.2f} s   peak {_mib(mem_ref)} ({note})")
    print(f"  speed-up {t_ref / t_d:6.1f}x (distances), {t_ref / t_f:6.1f}x (features); memory "
          f"{mem_ref / max(mem_d, 1):.1f}x less")
    print(f"  agreement: max |ours - torchreid| {diff:.1e}{' (bit-identical)' if diff == 0 else ''}; R1 {cmc_r[0]:.4f} mAP {map_r:.6f} (torchreid) vs "
          f"R1 {cmc_d[0]:.4f} mAP {map_d:.6f} -> {'identical CMC and mAP' if same else 'CMC/mAP DIFFER'}")
    if diff > 1e-5:
        raise SystemExit("bench_rerank: results differ from torchreid's re_ranking by more than 1e-5")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    problem_arguments(parser, dim=256)
    parser.add_argument("--skip-small", action="store_true", help="skip the 1,000 x 6,000 problem")
    parser.add_argument("--torchreid-cache", default="", help="directory keeping torchreid's results per problem")
    parser.add_argument("--noise", type=float, default=1.6,
                        help="feature noise (1.6: mAP about 0.65 before re-ranking at 1,000 x 6,000)")
    parser.add_argument("--device", default="cpu", help="where ours computes (cpu, cuda)")
    json_argument(parser)
    args = parse_arguments(parser, argv)
    record = MicroRecord(args.json, "bench_rerank", None if argv is None else ["bench_rerank.py", *argv])
    print(f"torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} CPU threads, "
          f"{os.cpu_count()} CPUs, ours on {args.device}; k1={PARAMS['k1']} k2={PARAMS['k2']} "
          f"lambda={PARAMS['lambda_value']}")
    warm_up(args.device)
    problems = []
    if not args.skip_small:
        run_problem(SMALL, args, not args.skip_torchreid, dense=True, record=problems)
    if not args.skip_market:
        run_problem(MARKET, args, not args.skip_torchreid, dense=True, record=problems)
    if not args.skip_msmt:
        run_problem(MSMT17, args, False, dense=False, record=problems)
    record.write(settings={**settings_of(args), "params": PARAMS}, problems=problems)


if __name__ == "__main__":
    main()
