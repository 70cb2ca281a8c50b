"""Benchmark ``torchreid_dense.metrics.evaluate_rank`` against torchreid's Python evaluator and FastReID's Cython one.

Two synthetic problems with identity structure (features = identity centre + camera bias + noise,
squared Euclidean distances, float32 distance matrices):

* Market-1501 size: 3,368 queries x 15,913 gallery (751 identities plus 2,798 distractors, 6
  cameras), timed for torchreid's Python evaluator (``use_cython=False``), FastReID's compiled
  Cython evaluator (``rank_cy.evaluate_cy``) and ours in the same run, with the speed-ups and
  agreement checks (CMC and mAP to 1e-6; FastReID's float32 AP to 1e-5).
* MSMT17 size: 11,659 queries x 82,161 gallery (3,060 identities, 15 cameras): time and the
  evaluator's own peak memory.

Throughput is also given in MB/s of distance matrix read (its size over the time): reading it once
is the evaluator's lower bound.

FastReID's evaluator: ``rank_cy.pyx`` from the ``fastreid`` package on the package index (``pip
download fastreid --no-deps``, or ``--fastreid-wheel`` for a local wheel), compiled with Cython in
a temporary directory; skipped with a note when that fails (no index, Cython or compiler). Our
evaluator is called once on a small problem first, so the times exclude loading its compiled
kernel.

Memory: the resident set size (RSS) before the call is subtracted from the peak RSS during the call
(the kernel's high-water mark, reset just before the call through ``/proc/self/clear_refs``; where
that is unavailable, ``getrusage`` max RSS, which can only overstate the figure). The distance matrix
itself (e.g. 3.8 GB for MSMT17) is allocated and filled before the measurement and is not counted;
torch tensor memory is not seen by ``tracemalloc``, hence RSS.

Usage::

    python benchmarks/bench_eval.py                  # both problems, torchreid timed at Market size
    python benchmarks/bench_eval.py --skip-torchreid # ours only (quick)
    python benchmarks/bench_eval.py --skip-msmt
    python benchmarks/bench_eval.py --skip-fastreid  # no download or compilation
    python benchmarks/bench_eval.py --json benchmarks/results/micro/bench_eval.json  # also the figures as data

``--json FILE`` writes what is printed as data (``torchreid_dense.benchmark.micro_record.MicroRecord``: with the machine, the load average
and the commit), for ``python benchmarks/render_docs.py``.
"""
import argparse
import glob
import importlib.util
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import torch

from torchreid_dense.benchmark.micro_record import MicroRecord
from torchreid_dense.metrics import evaluate_rank

MARKET = dict(name="Market-1501", num_query=3368, num_gallery=15913, num_ids=751, num_distractors=2798,
              num_cams=6)
MSMT17 = dict(name="MSMT17", num_query=11659, num_gallery=82161, num_ids=3060, num_distractors=0, num_cams=15)


def synthetic_features(num_query, num_gallery, num_ids, num_distractors, num_cams, dim=64, noise=1.0,
                       cam_bias=0.5, seed=0, **_):
    """Float32 features and ids of a re-ID test split with identity and camera structure.

    Query identities are 1..num_ids, each with at least one query; the gallery holds every identity
    (randomly spread over cameras) plus ``num_distractors`` images of identity 0, which no query has.
    A feature is its identity's centre plus its camera's bias plus noise (distractors: wide noise).

    Returns:
        (qf ``[num_query, dim]``, gf ``[num_gallery, dim]`` float32 tensors, q_pids, g_pids, q_camids,
        g_camids numpy arrays).
    """
    rng = np.random.default_rng(seed)
    q_pids = np.concatenate([np.arange(1, num_ids + 1), rng.integers(1, num_ids + 1, num_query - num_ids)])
    num_id_gallery = num_gallery - num_distractors
    g_pids = np.concatenate([np.arange(1, num_ids + 1), rng.integers(1, num_ids + 1, num_id_gallery - num_ids),
                             np.zeros(num_distractors, dtype=np.int64)])
    q_camids = rng.integers(0, num_cams, num_query)
    g_camids = rng.integers(0, num_cams, num_gallery)
    centres = rng.standard_normal((num_ids + 1, dim)).astype(np.float32)
    biases = (cam_bias * rng.standard_normal((num_cams, dim))).astype(np.float32)

    def features(pids, camids):
        f = centres[pids] + biases[camids] + noise * rng.standard_normal((len(pids), dim)).astype(np.float32)
        f[pids == 0] = 2.0 * rng.standard_normal((int((pids == 0).sum()), dim)).astype(np.float32)
        return torch.from_numpy(f)

    qf, gf = features(q_pids, q_camids), features(g_pids, g_camids)
    return qf, gf, q_pids, g_pids, q_camids, g_camids


def synthetic_problem(num_query, num_gallery, num_ids, num_distractors, num_cams, dim=64, noise=1.0,
                      cam_bias=0.5, seed=0, block=1024, **_):
    """Float32 squared-Euclidean distance matrix and ids of :func:`synthetic_features`' split.

    Returns:
        (distmat ``[num_query, num_gallery]`` float32, q_pids, g_pids, q_camids, g_camids) numpy arrays.
    """
    qf, gf, q_pids, g_pids, q_camids, g_camids = synthetic_features(
        num_query, num_gallery, num_ids, num_distractors, num_cams, dim=dim, noise=noise, cam_bias=cam_bias,
        seed=seed)
    g_sq = (gf * gf).sum(1)
    distmat = np.empty((num_query, num_gallery), dtype=np.float32)
    out = torch.from_numpy(distmat)
    for i in range(0, num_query, block):
        q = qf[i:i + block]
        torch.addmm(g_sq[None, :] + (q * q).sum(1, keepdim=True), q, gf.t(), beta=1.0, alpha=-2.0,
                    out=out[i:i + block])
    return distmat, q_pids, g_pids, q_camids, g_camids


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def measure(fn):
    """Run ``fn()``; returns (result, seconds, extra peak memory in bytes over the RSS before the call, method)."""
    try:
        rss_before = _status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS high-water mark to the current RSS
        method = "VmHWM"
    except OSError:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        method = "ru_maxrss (upper bound)"
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM") if method == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result, seconds, max(0, peak - rss_before) * 1024, method


def measure_ours(arrays, repeat):
    """``measure`` of our evaluator ``repeat`` times: (result, [seconds...], extra peak bytes of the first run, method)."""
    small = (arrays[0][:200], arrays[1][:200], arrays[2], arrays[3][:200], arrays[4])
    evaluate_rank(*small, return_minp=True)  # loads the compiled kernel
    result, seconds, extra, method = measure(lambda: evaluate_rank(*arrays, return_minp=True))
    times = [seconds]
    for _ in range(repeat - 1):
        times.append(measure(lambda: evaluate_rank(*arrays, return_minp=True))[1])
    return result, times, extra, method


_FASTREID_SETUP = """
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
setup(name="rank_cy", script_args=["build_ext", "--inplace", "-q"],
      ext_modules=cythonize([Extension("rank_cy", ["rank_cy.pyx"], include_dirs=[np.get_include()])],
                            compiler_directives={"language_level": 3}, quiet=True))
"""


def build_fastreid_cython(directory, wheel=""):
    """FastReID's ``rank_cy`` compiled in ``directory``: (module, "") or (None, why not)."""
    try:
        if not wheel:
            subprocess.run([sys.executable, "-m", "pip", "download", "fastreid", "--no-deps", "-q", "-d", directory],
                           check=True, capture_output=True, timeout=300)
            wheel = (glob.glob(osp.join(directory, "fastreid-*.whl")) or [""])[0]
        with zipfile.ZipFile(wheel) as archive:
            with open(osp.join(directory, "rank_cy.pyx"), "wb") as f:
                f.write(archive.read("fastreid/evaluation/rank_cylib/rank_cy.pyx"))
        subprocess.run([sys.executable, "-c", _FASTREID_SETUP], cwd=directory, check=True, capture_output=True,
                       timeout=600)
        built = glob.glob(osp.join(directory, "rank_cy*.so")) + glob.glob(osp.join(directory, "rank_cy*.pyd"))
        spec = importlib.util.spec_from_file_location("rank_cy", built[0])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module, osp.basename(wheel)
    except Exception as err:  # any failure: no index, no Cython, no compiler
        detail = getattr(err, "stderr", b"") or b""
        detail = detail.decode(errors="replace").strip().splitlines()[-1:] if detail else []
        return None, f"{type(err).__name__}: {err}" + (f" ({detail[0]})" if detail else "")


def _mb_per_s(distmat, seconds):
    return f"{distmat.nbytes / 1e6 / seconds:7.0f} MB/s"


def _times(times):
    if len(times) == 1:
        return f"{times[0]:8.3f} s"
    return f"{min(times):8.3f} s (best of {len(times)}; median {float(np.median(times)):.3f} s, " \
           f"all {', '.join(f'{t:.3f}' for t in times)})"


def _describe(problem, distmat, q_pids, g_pids):
    """Print the problem; returns its record for ``--json``."""
    print(f"\n== {problem['name']}-sized problem: {distmat.shape[0]} queries x {distmat.shape[1]} gallery, "
          f"{problem['num_ids']} ids (+{problem['num_distractors']} distractors), {problem['num_cams']} cameras; "
          f"distmat float32 {distmat.nbytes / 1e9:.2f} GB")
    return {**{k: problem[k] for k in ("name", "num_ids", "num_distractors", "num_cams")},
            "num_query": int(distmat.shape[0]), "num_gallery": int(distmat.shape[1]),
            "distmat_bytes": int(distmat.nbytes), "evaluators": []}


def _metrics_record(cmc, mAP, mINP=None):
    out = {"R1": float(cmc[0]), "R5": float(cmc[4]), "R10": float(cmc[9]), "R20": float(cmc[19]), "mAP": float(mAP)}
    if mINP is not None:
        out["mINP"] = float(mINP)
    return out


def _print_metrics(tag, cmc, mAP, mINP=None):
    extra = f"  mINP {mINP:.4f}" if mINP is not None else ""
    print(f"  {tag:<10} R1 {cmc[0]:.4f}  R5 {cmc[4]:.4f}  R10 {cmc[9]:.4f}  R20 {cmc[19]:.4f}  mAP {mAP:.4f}{extra}")


def run_market(args, record=None):
    problem = MARKET
    arrays = synthetic_problem(**problem, dim=args.dim, seed=args.seed)
    rec = _describe(problem, arrays[0], arrays[1], arrays[2])
    if record is not None:
        record.append(rec)
    (cmc, mAP, mINP), times, mem_ours, method = measure_ours(arrays, args.repeat)
    rec["evaluators"].append({"name": "ours", "seconds": times, "extra_peak_bytes": mem_ours,
                              "memory_method": method, "metrics": _metrics_record(cmc, mAP, mINP)})
    t_ours = float(np.median(times))
    print(f"  ours:      {_times(times)}   {_mb_per_s(arrays[0], t_ours)} (median)   extra peak memory "
          f"{mem_ours / 2 ** 20:.1f} MiB ({method})")
    _print_metrics("ours", cmc, mAP, mINP)
    if not args.skip_fastreid:
        run_fastreid(args, arrays, (cmc, mAP, mINP), times, rec)
    if args.skip_torchreid:
        return
    from torchreid_dense import compat
    (cmc_t, mAP_t), t_ref, mem_ref, _ = measure(
        lambda: compat.metrics.evaluate_rank(*arrays, max_rank=50, use_cython=False))
    print(f"  torchreid: {t_ref:8.3f} s   {_mb_per_s(arrays[0], t_ref)}   extra peak memory {mem_ref / 2 ** 20:.1f} MiB "
          f"(Python evaluator)")
    _print_metrics("torchreid", cmc_t, mAP_t)
    cmc_diff = float(np.abs(cmc - cmc_t).max())
    map_diff = abs(mAP - float(mAP_t))
    agree = cmc.shape == cmc_t.shape and cmc_diff <= 1e-6 and map_diff <= 1e-6
    rec["evaluators"].append({"name": "torchreid", "implementation": "Python evaluator (use_cython=False)",
                              "seconds": [t_ref], "extra_peak_bytes": mem_ref,
                              "metrics": _metrics_record(cmc_t, mAP_t),
                              "agreement": {"max_abs_cmc": cmc_diff, "max_abs_map": map_diff, "ok": bool(agree)}})
    print(f"  speed-up:  {t_ref / t_ours:8.1f}x (torchreid time / our median; {t_ref / min(times):.1f}x "
          f"against our best)   agreement: max |dCMC| {cmc_diff:.2e}, |dmAP| {map_diff:.2e} -> "
          f"{'OK' if agree else 'MISMATCH'}")
    if not agree:
        raise SystemExit("bench_eval: results differ from torchreid's evaluator")


def run_fastreid(args, arrays, ours, times, rec=None):
    """FastReID's Cython evaluator beside ours (same arrays), timed ``args.repeat`` times."""
    rec = rec if rec is not None else {"evaluators": []}
    with tempfile.TemporaryDirectory(prefix="bench_eval_fastreid_") as directory:
        rank_cy, note = build_fastreid_cython(directory, args.fastreid_wheel)
        if rank_cy is None:
            print(f"  FastReID:  skipped, its Cython evaluator could not be built ({note})")
            rec["evaluators"].append({"name": "FastReID",
                                      "skipped": f"its Cython evaluator could not be built ({note})"})
            return
        runs = [measure(lambda: rank_cy.evaluate_cy(*arrays, 50, False)) for _ in range(args.repeat)]
    (cmc_f, all_ap, all_inp), t_f = runs[0][0], float(np.median([r[1] for r in runs]))
    mAP_f, mINP_f = float(np.mean(all_ap)), float(np.mean(all_inp))
    print(f"  FastReID:  {_times([r[1] for r in runs])}   {_mb_per_s(arrays[0], t_f)} (median; rank_cy.evaluate_cy "
          f"from {note}, compiled here)")
    _print_metrics("FastReID", cmc_f, mAP_f, mINP_f)
    cmc_diff = float(np.abs(ours[0] - cmc_f).max())
    ap_diff = max(abs(ours[1] - mAP_f), abs(ours[2] - mINP_f))
    agree = cmc_diff <= 1e-6 and ap_diff <= 1e-5
    rec["evaluators"].append({"name": "FastReID", "implementation": f"rank_cy.evaluate_cy from {note}, compiled here",
                              "seconds": [r[1] for r in runs], "extra_peak_bytes": runs[0][2],
                              "metrics": _metrics_record(cmc_f, mAP_f, mINP_f),
                              "agreement": {"max_abs_cmc": cmc_diff, "max_abs_map": ap_diff, "ok": bool(agree)}})
    print(f"  speed-up:  {t_f / float(np.median(times)):8.1f}x (FastReID median / our median)   agreement: "
          f"max |dCMC| {cmc_diff:.2e}, |dmAP|, |dmINP| <= {ap_diff:.2e} (FastReID sums AP in float32) -> "
          f"{'OK' if agree else 'MISMATCH'}")
    if not agree:
        raise SystemExit("bench_eval: results differ from FastReID's evaluator")


def run_msmt(args, record=None):
    problem = MSMT17
    arrays = synthetic_problem(**problem, dim=args.dim, seed=args.seed)
    rec = _describe(problem, arrays[0], arrays[1], arrays[2])
    if record is not None:
        record.append(rec)
    (cmc, mAP, mINP), times, extra, method = measure_ours(arrays, args.repeat_msmt)
    rec["evaluators"].append({"name": "ours", "seconds": times, "extra_peak_bytes": extra, "memory_method": method,
                              "metrics": _metrics_record(cmc, mAP, mINP)})
    print(f"  ours:      {_times(times)}   {_mb_per_s(arrays[0], float(np.median(times)))}   extra peak memory "
          f"{extra / 2 ** 20:.1f} MiB ({method}, first run; "
          f"the {arrays[0].nbytes / 2 ** 30:.2f} GiB distmat excluded)")
    _print_metrics("ours", cmc, mAP, mINP)


def problem_arguments(parser, dim):
    """The options both evaluation benchmarks share: which problems and references to run, features, threads."""
    parser.add_argument("--skip-torchreid", action="store_true", help="do not run torchreid's implementation")
    parser.add_argument("--skip-market", action="store_true", help="skip the Market-1501-sized problem")
    parser.add_argument("--skip-msmt", action="store_true", help="skip the MSMT17-sized problem")
    parser.add_argument("--dim", type=int, default=dim, help="feature dimension of the synthetic features")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic problems")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def json_argument(parser):
    parser.add_argument("--json", default="", metavar="FILE",
                        help="also write the results as data (for python benchmarks/render_docs.py)")


def settings_of(args):
    """The options of a run for its ``--json`` record (without ``--json`` itself)."""
    return {k: v for k, v in vars(args).items() if k != "json"}


def parse_arguments(parser, argv):
    """Parse, then apply ``--threads``."""
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    problem_arguments(parser, dim=64)
    parser.add_argument("--skip-fastreid", action="store_true", help="do not build and time FastReID's Cython evaluator")
    parser.add_argument("--fastreid-wheel", default="", help="a local fastreid wheel instead of pip download")
    parser.add_argument("--repeat", type=int, default=3, help="runs of our evaluator (and FastReID's) at Market size")
    parser.add_argument("--repeat-msmt", type=int, default=1, help="runs of our evaluator at MSMT17 size")
    json_argument(parser)
    args = parse_arguments(parser, argv)
    record = MicroRecord(args.json, "bench_eval", None if argv is None else ["bench_eval.py", *argv])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {os.cpu_count()} CPUs")
    problems = []
    if not args.skip_market:
        run_market(args, problems)
    if not args.skip_msmt:
        run_msmt(args, problems)
    record.write(settings=settings_of(args), problems=problems)


if __name__ == "__main__":
    main()
