"""benchmarks/render_docs.py: every table of measured numbers in README.md and docs/*.md is rendered from result files.

(a) the committed pages equal their rendering; (b) each renderer on a small hand-made result file gives the exact
markdown written out here; (c) ``--check`` finds a stale block (page:line, exit 1) and rewriting fixes it;
(d) errors name the page, the line and what to do.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, "benchmarks"))

import render_docs  # noqa: E402
from render_docs import RENDERERS, RenderError, main, render_page  # noqa: E402
from torchreid_dense.benchmark.micro_record import MicroRecord  # noqa: E402
from torchreid_dense.benchmark.report import aggregate, paired_deltas  # noqa: E402

M1 = {"cpu": "Test CPU", "cpu_capability": "AVX2", "cores": 2, "torch_threads": 1, "torch": "2.0", "python": "3.11"}
M2 = dict(M1, torch_threads=2)
MACHINE_1 = "Test CPU (AVX2), 1 torch thread, torch 2.0"


def _write(path, data):
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


def _page_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------------------------
# (a) the committed pages

def _committed_pages():
    return [osp.relpath(p, REPO) for p in render_docs.default_pages(REPO)]


def _has_marker(text):
    return any(render_docs.OPEN.match(line) for line in text.split("\n"))


@pytest.mark.parametrize("page", _committed_pages())
def test_committed_page_equals_its_rendering(page):
    text = _page_text(osp.join(REPO, page))
    new, stale = render_page(text, page, REPO)
    assert not stale, f"{page}: blocks {stale} differ from their rendering: run python benchmarks/render_docs.py"
    assert new == text


def test_the_pages_render_their_tables():
    """The tables of measured numbers are placed between markers, README.md's too."""
    assert _has_marker(_page_text(osp.join(REPO, "README.md")))
    assert any(_has_marker(_page_text(osp.join(REPO, p))) for p in _committed_pages() if p != "README.md")


# ---------------------------------------------------------------------------------------------------------------
# (b) each renderer on a small result file

def _job(run, seed, label, rank1, mAP, mINP=None, machine=None, report=True):
    metrics = {"rank1": rank1, "mAP": mAP, **({"mINP": mINP} if mINP is not None else {})}
    job = {"run": run, "seed": seed, "label": label, "target": "synthreid", "report": report,
           "metrics": {"synthreid": metrics}, "train_time_s": 60.0}
    if machine:
        job["machine"] = machine
    return job


@pytest.fixture
def suite_report(tmp_path):
    """``<tmp>/rep/results.json`` as write_report makes it (rows, deltas, results), without its chart."""
    pg = {"run": "pg", "seed": 0, "label": "PG net", "report": False, "target": "synthreid", "machine": M2,
          "metrics": {"pit_val": {"texture_l1": 0.8, "texture_l1_pixel": 0.1234}}}
    results = [_job("base", 0, "Base net", 0.50, 0.40, 0.10, M1), _job("base", 1, "Base net", 0.52, 0.44, 0.12, M1),
               _job("plus", 0, "Plus net", 0.55, 0.43, 0.11, M1), _job("plus", 1, "Plus net", 0.54, 0.48, 0.15, M1),
               _job("solo", 0, "Solo net", 0.3333, 0.25), pg]
    deltas = paired_deltas(results, [("better", "plus", "base")])
    _write(tmp_path / "rep" / "results.json", {"title": "t", "rows": aggregate(results, ["base", "plus", "solo"]),
                                               "deltas": deltas, "notes": [], "results": results})
    return tmp_path


SUITE_CASES = {
    "chosen rows and metrics": ("suite_table", {"rows": "plus,base", "metrics": "R1,mAP"}, (
        "| Model | R1 (%) | mAP (%) | Seeds |\n"
        "|---|---:|---:|---:|\n"
        "| Plus net | 54.5 ± 0.7 | 45.5 ± 3.5 | 2 |\n"
        "| Base net | 51.0 ± 1.4 | 42.0 ± 2.8 | 2 |\n"
        "\n"
        f"_From rep/results.json; {MACHINE_1}._")),
    "default metrics, one seed, a job without machine": ("suite_table", {}, (
        "| Model | R1 (%) | mAP (%) | mINP (%) | Seeds |\n"
        "|---|---:|---:|---:|---:|\n"
        "| Base net | 51.0 ± 1.4 | 42.0 ± 2.8 | 11.0 ± 1.4 | 2 |\n"
        "| Plus net | 54.5 ± 0.7 | 45.5 ± 3.5 | 13.0 ± 2.8 | 2 |\n"
        "| Solo net | 33.3 | 25.0 | - | 1 |\n"
        "\n"
        f"_From rep/results.json; {MACHINE_1} (4 jobs); machine not recorded (1 job)._")),
    "deltas": ("suite_deltas", {}, (
        "| Delta | plus - minus | mAP (pp) | mAP per seed (pp) | R1 (pp) | Seeds |\n"
        "|---|---|---:|---:|---:|---|\n"
        "| better | plus - base | +3.5 ± 0.7 | +3.0, +4.0 | +3.5 ± 2.1 | 0, 1 |\n"
        "\n"
        f"_From rep/results.json (plus - minus seed by seed, then mean ± sample std); {MACHINE_1}._")),
    "demo, two recorded machines": ("demo", {}, (
        "| Model | R1 (%) | mAP (%) |\n"
        "|---|---:|---:|\n"
        "| Base net | 51.0 ± 1.4 | 42.0 ± 2.8 |\n"
        "| Plus net | 54.5 ± 0.7 | 45.5 ± 3.5 |\n"
        "| Solo net | 33.3 | 25.0 |\n"
        "\n"
        "PG net: held-out texture L1 0.123 ([0, 1] pixel units).\n"
        "\n"
        f"_From rep/results.json; jobs on different machines: {MACHINE_1} (4 jobs); machine not recorded (1 job); "
        "Test CPU (AVX2), 2 torch threads, torch 2.0 (1 job)._")),
}


@pytest.mark.parametrize("case", sorted(SUITE_CASES))
def test_suite_renderers(suite_report, case):
    name, args, expected = SUITE_CASES[case]
    assert RENDERERS[name]({"results": "rep", **args}, str(suite_report)) == expected


def test_suite_deltas_selected_by_name(suite_report):
    text = RENDERERS["suite_deltas"]({"results": "rep"}, str(suite_report))
    assert RENDERERS["suite_deltas"]({"results": "rep", "deltas": "better"}, str(suite_report)) == text


def test_suite_deltas_fallback_takes_the_deltas_the_report_lacks(suite_report):
    """fallback=DIR: a delta with no paired seed in the report comes from the older one, with each row's CPU."""
    old = [_job("base", 0, "Base net", 0.40, 0.30, 0.10), _job("plus", 0, "Plus net", 0.41, 0.32, 0.10),
           _job("solo", 0, "Solo net", 0.45, 0.37, 0.10)]
    _write(suite_report / "old" / "results.json", {
        "title": "t", "rows": aggregate(old), "notes": [], "results": old,
        "deltas": paired_deltas(old, [("better", "plus", "base"), ("alone", "solo", "base")])})
    text = RENDERERS["suite_deltas"]({"results": "rep", "fallback": "old", "deltas": "alone;better"},
                                     str(suite_report))
    assert text == (
        "| Delta | plus - minus | mAP (pp) | mAP per seed (pp) | R1 (pp) | Seeds | CPU |\n"
        "|---|---|---:|---:|---:|---|---|\n"
        "| alone | solo - base | +7.0 | +7.0 | +5.0 | 0 | not recorded |\n"
        "| better | plus - base | +3.5 ± 0.7 | +3.0, +4.0 | +3.5 ± 2.1 | 0, 1 | Test CPU (AVX2) |\n"
        "\n"
        f"_From old/results.json (machine not recorded) and rep/results.json ({MACHINE_1}); "
        "plus - minus seed by seed, then mean ± sample std._")
    # every delta measured in the report: the fallback is not used, the table is the report's own
    assert RENDERERS["suite_deltas"]({"results": "rep", "fallback": "old", "deltas": "better"}, str(suite_report)) \
        == RENDERERS["suite_deltas"]({"results": "rep"}, str(suite_report))
    with pytest.raises(RenderError, match="deltas nowhere not in rep/results.json or old/results.json"):
        RENDERERS["suite_deltas"]({"results": "rep", "fallback": "old", "deltas": "nowhere"}, str(suite_report))


def _summary(value):
    return {"n": 1, "mean": value, "std": 0.0, "min": value, "max": value}


def test_regime(tmp_path):
    delta = {"name": "better", "plus": "plus", "minus": "base", "seeds": [0], "mAP": _summary(3.0),
             "rank1": _summary(5.04)}
    none = {"name": "better", "plus": "plus", "minus": "base", "seeds": [], "mAP": None, "rank1": None}
    rows = [{"label": "1", "x": 1.0, "output": "lvl1", "deltas": [delta],
             "map": {"plus": _summary(43.0), "base": _summary(40.0)}},
            {"label": "long", "x": None, "output": "lvl2", "deltas": [none], "map": {}}]
    _write(tmp_path / "reg" / "regime.json", {"title": "t", "knob": "k", "seeds": [0], "goal": 3.0, "rows": rows})
    for run in ("plus", "base", "other"):  # the jobs of the level: their machine (other: not a delta row)
        _write(tmp_path / "lvl1" / run / "seed0" / "result.json",
               {"run": run, "seed": 0, "machine": M1 if run != "other" else M2})
    text = RENDERERS["regime"]({"results": "reg"}, str(tmp_path))
    assert text == (
        "| k | better: mAP (pp) | better: R1 (pp) | plus mAP | base mAP | better: seeds |\n"
        "|---|---:|---:|---:|---:|---:|\n"
        "| 1 | +3.0 | +5.0 | 43.0 | 40.0 | 0 |\n"
        "| long | - | - | - | - | - |\n"
        "\n"
        f"_From reg/regime.json (training seeds 0; deltas in pp, mAP in %); {MACHINE_1}._")
    # a row re-measured on another CPU: every row then says its own, and the source line counts the jobs of each
    for run in ("plus", "base"):
        _write(tmp_path / "lvl2" / run / "seed0" / "result.json", {"run": run, "seed": 0})
    text = RENDERERS["regime"]({"results": "reg"}, str(tmp_path))
    assert text == (
        "| k | better: mAP (pp) | better: R1 (pp) | plus mAP | base mAP | better: seeds | CPU |\n"
        "|---|---:|---:|---:|---:|---:|---|\n"
        "| 1 | +3.0 | +5.0 | 43.0 | 40.0 | 0 | Test CPU (AVX2) |\n"
        "| long | - | - | - | - | - | not recorded |\n"
        "\n"
        f"_From reg/regime.json (training seeds 0; deltas in pp, mAP in %); {MACHINE_1} (2 jobs); "
        "machine not recorded (2 jobs)._")


def _micro(tmp_path, name, argv, **fields):
    data = {"benchmark": name, "argv": argv, "commit": "0123456789abcdef", "started": "2026-01-02T03:04:05",
            "niceness": 5, "env": {}, "loadavg_start": [1.3, 1.0, 1.0], "finished": "2026-01-02T03:05:05",
            "wall_s": 60.0, "loadavg_end": [2.0, 1.0, 1.0], "machine": M2, **fields}
    _write(tmp_path / "m" / f"{name}.json", data)
    return {"file": f"m/{name}.json"}, str(tmp_path)


def _source(name, args=""):
    command = f"python benchmarks/{name}.py" + (f" {args}" if args else "")
    return (f"_From m/{name}.json (`{command}`, commit 0123456, 2026-01-02); Test CPU (AVX2), 2 torch threads, "
            "torch 2.0; load average 1.3 at start, 2.0 at end._")


def test_bench_eval(tmp_path):
    market = {"name": "Tiny", "num_query": 10, "num_gallery": 1000, "distmat_bytes": 400_000_000, "evaluators": [
        {"name": "ours", "seconds": [0.02, 0.01, 0.03], "extra_peak_bytes": 1048576},
        {"name": "FastReID", "seconds": [0.1], "extra_peak_bytes": 0,
         "agreement": {"max_abs_cmc": 0.0, "max_abs_map": 2e-8, "ok": True}},
        {"name": "torchreid", "seconds": [1.0], "extra_peak_bytes": 2097152,
         "agreement": {"max_abs_cmc": 0.0, "max_abs_map": 3e-9, "ok": True}}]}
    msmt = {"name": "Big", "num_query": 11659, "num_gallery": 82161, "distmat_bytes": 3_800_000_000, "evaluators": [
        {"name": "ours", "seconds": [4.0], "extra_peak_bytes": 0},
        {"name": "FastReID", "skipped": "no compiler"}]}
    args, root = _micro(tmp_path, "bench_eval", ["--repeat", "3", "--json", "x.json"], problems=[market, msmt])
    assert RENDERERS["bench_eval"](args, root) == (
        "| problem | evaluator | time (s) | distance matrix read (MB/s) | extra peak memory (MiB) | time / ours "
        "| agreement with ours |\n"
        "|---|---|---:|---:|---:|---:|---|\n"
        "| Tiny, 10 × 1,000 | ours | 0.020 (median of 3) | 20,000 | 1.0 | - | - |\n"
        "| Tiny, 10 × 1,000 | FastReID | 0.100 | 4,000 | 0.0 | 5.0× "
        "| max \\|ΔCMC\\| 0.0e+00, \\|ΔmAP\\| 2.0e-08: OK |\n"
        "| Tiny, 10 × 1,000 | torchreid | 1.000 | 400 | 2.0 | 50.0× "
        "| max \\|ΔCMC\\| 0.0e+00, \\|ΔmAP\\| 3.0e-09: OK |\n"
        "| Big, 11,659 × 82,161 | ours | 4.000 | 950 | 0.0 | - | - |\n"
        "| Big, 11,659 × 82,161 | FastReID | skipped: no compiler | - | - | - | - |\n"
        "\n" + _source("bench_eval", "--repeat 3"))


def test_bench_rerank(tmp_path):
    problem = {"name": "small", "num_query": 100, "num_gallery": 600, "dim": 8, "entries": [
        {"name": "ours (features)", "seconds": 0.5, "peak_bytes": 10485760, "R1": 0.9, "mAP": 0.75},
        {"name": "ours (distances)", "seconds": 0.25, "peak_bytes": 5242880, "R1": 0.9, "mAP": 0.75},
        {"name": "torchreid", "seconds": 5.0, "peak_bytes": 104857600, "R1": 0.9, "mAP": 0.75,
         "note": "cached, measured 2026-01-01T00:00"}],
        "features_vs_distances_max_abs": 1e-7, "agreement": {"max_abs": 0.0, "identical_cmc_map": True}}
    settings = {"dim": 8, "noise": 1.6, "device": "cpu", "params": {"k1": 20, "k2": 6, "lambda_value": 0.3}}
    args, root = _micro(tmp_path, "bench_rerank", ["--json=x.json", "--skip-msmt"], settings=settings,
                        problems=[problem])
    assert RENDERERS["bench_rerank"](args, root) == (
        "| problem | re-ranking | time (s) | peak memory (MiB) | torchreid time / this | R1 (%) | mAP (%) "
        "| agreement |\n"
        "|---|---|---:|---:|---:|---:|---:|---|\n"
        "| small, 100 × 600, 8-d | ours (features) | 0.50 | 10 | 10.0× | 90.00 | 75.00 "
        "| max \\|Δ\\| to ours (distances) 1.0e-07 |\n"
        "| small, 100 × 600, 8-d | ours (distances) | 0.25 | 5 | 20.0× | 90.00 | 75.00 "
        "| max \\|Δ\\| to torchreid 0.0e+00; CMC and mAP identical |\n"
        "| small, 100 × 600, 8-d | torchreid (cached, measured 2026-01-01T00:00) | 5.00 | 100 | - | 90.00 | 75.00 "
        "| - |\n"
        "\n"
        "k1=20, k2=6, lambda=0.3; feature noise 1.6; ours on cpu. Peak memory: RSS growth during the call, inputs "
        "excluded, output included.\n"
        "\n" + _source("bench_rerank", "--skip-msmt"))


def test_bench_dsap(tmp_path):
    settings = {"batch": 64, "height": 256, "width": 128, "size": 32, "iters": 20, "threads": 2, "naive_images": 3}
    rates = [{"backend": "kernel", "reduce": "last", "images_per_s": 3000.4, "images_per_s_per_core": 3000.4},
             {"backend": "torch", "reduce": "mean", "images_per_s": 1000.0, "images_per_s_per_core": 500.0}]
    args, root = _micro(tmp_path, "bench_dsap", [], settings=settings, rates=rates, naive_images_per_s=22.04,
                        agree_with_naive=True)
    assert RENDERERS["bench_dsap"](args, root) == (
        "| warp_dsap, batch 64 of 256×128, S = 32 | reduce | images/s | images/s per core |\n"
        "|---|---|---:|---:|\n"
        "| fused Numba kernel (`backend='kernel'`) | `last` | 3,000 | 3,000 |\n"
        "| pure torch (`backend='torch'`) | `mean` | 1,000 | 500 |\n"
        "| naive per-pixel Python loop | `last` | 22.0 | 22.0 |\n"
        "\n"
        "2 threads; the kernel is serial (its rate is per core); all paths agree with the naive loop "
        "(`reduce='last'`).\n"
        "\n" + _source("bench_dsap"))


def test_bench_dsa_cost(tmp_path):
    cost = {"height": 256, "width": 128, "mf_over_resnet50_ls1": 1.0594,
            "rows": [{"name": "inference", "params": 25_400_000, "flops": 8_580_000_000},
                     {"name": "training graph", "params": 195_870_000, "flops": None}]}
    steps = {"batch": 32, "height": 128, "width": 64, "threads": 2, "steps": 5, "dsa_reid_r18_ms": 1234.56,
             "resnet18_ms": 400.0}
    streams = {"rows": [{"name": "MF-Stream", "gflop": 7.234, "ms": 367.26, "gflops_per_s": 19.7}],
               "dsag_over_mf": 2.444}
    args, root = _micro(tmp_path, "bench_dsa_cost", [], settings={}, cost=cost, steps=steps, streams=streams)
    assert RENDERERS["bench_dsa_cost"](args, root) == (
        "| graph (256×128, batch 1) | params (M) | GMAC |\n"
        "|---|---:|---:|\n"
        "| inference | 25.40 | 4.29 |\n"
        "| training graph | 195.87 | - |\n"
        "\n"
        "MF-Stream / ResNet-50 last stride 1: 1.06× GMAC.\n"
        "\n"
        "| training step, batch 32 at 128×64, 2 threads | median of 5 (ms) | / resnet18 |\n"
        "|---|---:|---:|\n"
        "| `dsa_reid_r18` | 1,234.6 | 3.09× |\n"
        "| torchreid `resnet18` (softmax + triplet) | 400.0 | 1.00× |\n"
        "\n"
        "| stream, forward + backward | GFLOP | ms | GFLOP/s |\n"
        "|---|---:|---:|---:|\n"
        "| MF-Stream | 7.23 | 367.3 | 19.7 |\n"
        "\n"
        "DSAG-Stream / MF-Stream achieved FLOP/s: 2.44.\n"
        "\n" + _source("bench_dsa_cost"))
    only = RENDERERS["bench_dsa_cost"](dict(args, tables="steps"), root)
    assert only.startswith("| training step, batch 32") and "GMAC" not in only and "GFLOP/s" not in only


def test_bench_san_cost(tmp_path):
    cost = {"resnet50": {"sa_enc_params": 23_508_032, "torchreid_params_wo_classifier": 23_508_032,
                         "inference_params_equal": True, "sa_dec_params": 7_440_000, "sa_dec_ratio": 0.3165,
                         "sa_dec_widths": [1024, 512, 256, 128], "sa_enc_gmac_256x128": 4.054,
                         "torchreid_last_stride1_gmac": 4.054, "torchreid_stock_gmac": 2.67,
                         "sa_dec_gmac_texture_240x160": 8.352}}
    step_time = {"baseline_resnet18": {"min_s": 0.5, "median_s": 0.6, "all_s": [0.5, 0.6, 0.7]},
                 "san_r18": {"min_s": 1.0, "median_s": 1.1, "all_s": [1.0, 1.1, 1.2]},
                 "setting": {"batch": 32, "input": "128x64", "texture": "192x128", "threads": 2, "steps": 3}}
    args, root = _micro(tmp_path, "bench_san_cost", ["--threads", "2"], settings={}, cost=cost, step_time=step_time)
    assert RENDERERS["bench_san_cost"](args, root) == (
        "| backbone | SA-Enc params (M) | = torchreid's without classifier | SA-Dec params (M) | SA-Dec / SA-Enc "
        "| SA-Enc GMAC | torchreid last stride 1 GMAC | torchreid stock GMAC | SA-Dec GMAC (training only) |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|---:|\n"
        "| `resnet50` | 23.51 | yes | 7.44 | 0.317× | 4.05 | 4.05 | 2.67 | 8.35 |\n"
        "\n"
        "GMAC per 256×128 image (SA-Dec: from the 16×8 fe4 map to the 240×160 texture).\n"
        "\n"
        "| training step, batch 32 at 128x64, texture 192x128, 2 threads | min of 3 (s) | median (s) "
        "| min / stock resnet18 |\n"
        "|---|---:|---:|---:|\n"
        "| `baseline_resnet18` | 0.500 | 0.600 | 1.00× |\n"
        "| `san_r18` | 1.000 | 1.100 | 2.00× |\n"
        "\n" + _source("bench_san_cost", "--threads 2"))


def test_bench_file_check(tmp_path):
    checks = [{"label": "cold", "seconds": 18.523, "files": 33000, "decoded": 33000, "bad": 0},
              {"label": "warm", "seconds": 1.1, "files": 33000, "decoded": 0, "bad": 0}]
    args, root = _micro(tmp_path, "bench_file_check", [], settings={"workers": 2},
                        tree={"images": 16500, "files": 33000}, checks=checks)
    assert RENDERERS["bench_file_check"](args, root) == (
        "| file check, 16,500 images + IUV maps, 2 workers | files | decoded | bad | time (s) |\n"
        "|---|---:|---:|---:|---:|\n"
        "| cold | 33,000 | 33,000 | 0 | 18.52 |\n"
        "| warm | 33,000 | 0 | 0 | 1.10 |\n"
        "\n" + _source("bench_file_check"))


def test_bench_synth(tmp_path):
    stages = [{"label": "render", "images": 400, "per_core": 255.4, "wall": 233.6},
              {"label": "... + files", "images": 400, "per_core": 118.0, "wall": 93.2}]
    args, root = _micro(tmp_path, "bench_synth", [], settings={"images": 400, "height": 128, "width": 64},
                        stages=stages)
    assert RENDERERS["bench_synth"](args, root) == (
        "| SynthReID, 128×64, 400 images | images/s per core (CPU time) | images/s (wall) |\n"
        "|---|---:|---:|\n"
        "| render | 255 | 234 |\n"
        "| ... + files | 118 | 93 |\n"
        "\n"
        "_From m/bench_synth.json (`python benchmarks/bench_synth.py`, commit 0123456, 2026-01-02); Test CPU (AVX2), "
        "2 torch threads, torch 2.0; load average 1.3 at start, 2.0 at end._")


def test_synth_presets():
    """Counted from the presets' image plans (the tiny preset: the numbers of a generated tiny data set)."""
    assert RENDERERS["synth_presets"]({"presets": "tiny"}, REPO) == (
        "| preset | train ids / images | test ids | query / gallery | PIT textures × views = pairs | image |\n"
        "|---|---|---|---|---|---|\n"
        "| tiny | 20 / 141 | 20 | 52 / 90 (10 distractors) | 8 × 3 = 24 | 128×64 |\n"
        "\n"
        "_Counted from the presets' image plans (torchreid_dense/data/synth/presets.py, plan.py), seed 0._")


def test_every_micro_benchmark_has_a_renderer():
    for name in ("bench_eval", "bench_rerank", "bench_dsap", "bench_dsa_cost", "bench_san_cost", "bench_file_check",
                 "bench_synth"):
        assert RENDERERS[name].required == ("file",)


def test_a_micro_benchmark_writes_what_its_renderer_reads(tmp_path):
    """bench_synth --json (a few images): the record's fields, then its table."""
    import bench_synth

    out = tmp_path / "m" / "bench_synth.json"
    bench_synth.main(["--images", "2", "--ids", "2", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["benchmark"] == "bench_synth" and data["argv"] == ["--images", "2", "--ids", "2", "--json", str(out)]
    assert set(data["machine"]) >= {"cpu", "cpu_capability", "torch_threads", "torch"}
    assert len(data["loadavg_start"]) == len(data["loadavg_end"]) == 3 and data["wall_s"] >= 0
    assert [s["label"] for s in data["stages"]][0] == "render + exact IUV + atlas lookup"
    text = RENDERERS["bench_synth"]({"file": "m/bench_synth.json"}, str(tmp_path))
    assert text.startswith("| SynthReID, 128×64, 2 images |")
    assert "(`python benchmarks/bench_synth.py --images 2 --ids 2`" in text


def test_micro_record_without_a_path_writes_nothing(tmp_path):
    assert MicroRecord("", "x", ["x.py"]).write(a=1) is None
    with pytest.raises(ValueError, match="reserved"):
        MicroRecord(str(tmp_path / "x.json"), "x", ["x.py"]).write(machine=1)


# ---------------------------------------------------------------------------------------------------------------
# (c) stale blocks, rewriting, pages

PAGE = """# Page

<!-- render: suite_table results=rep rows=solo metrics=R1 -->
| stale | table |
<!-- /render -->

- in a list:

  <!-- render: suite_deltas results=rep deltas=better -->
  <!-- /render -->

```markdown
<!-- render: not_a_renderer -->
```
"""


def test_check_finds_a_stale_block_and_rewriting_fixes_it(suite_report, capsys):
    root = str(suite_report)
    (suite_report / "docs").mkdir()
    (suite_report / "README.md").write_text(PAGE)
    (suite_report / "docs" / "other.md").write_text("# no markers\n")
    assert main(["--check"], root=root) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["README.md:3: suite_table differs from its rendering (run python benchmarks/render_docs.py)",
                   "README.md:9: suite_deltas differs from its rendering (run python benchmarks/render_docs.py)"]
    assert (suite_report / "README.md").read_text() == PAGE  # --check writes nothing
    assert main([], root=root) == 0
    capsys.readouterr()
    assert main(["--check"], root=root) == 0
    assert capsys.readouterr().out == ""
    text = (suite_report / "README.md").read_text()
    assert text.startswith("# Page\n\n<!-- render: suite_table results=rep rows=solo metrics=R1 -->\n\n"
                           "| Model | R1 (%) | Seeds |\n|---|---:|---:|\n| Solo net | 33.3 | 1 |\n\n"
                           "_From rep/results.json; machine not recorded._\n\n<!-- /render -->\n")
    # indented like its marker, inside the list item; the marker in the code block is left alone
    assert "\n  | better | plus - base | +3.5 ± 0.7 | +3.0, +4.0 | +3.5 ± 2.1 | 0, 1 |\n" in text
    assert text.endswith("```markdown\n<!-- render: not_a_renderer -->\n```\n")
    assert (suite_report / "docs" / "other.md").read_text() == "# no markers\n"


def test_pages_option_restricts_the_pages(suite_report, capsys):
    (suite_report / "docs").mkdir()
    (suite_report / "README.md").write_text(PAGE)
    (suite_report / "docs" / "a.md").write_text(PAGE)
    assert main(["--pages", "docs/a.md"], root=str(suite_report)) == 0
    assert capsys.readouterr().out.startswith("docs/a.md:3: suite_table rewritten")
    assert (suite_report / "README.md").read_text() == PAGE
    assert main(["--check", "--pages", "docs/a.md"], root=str(suite_report)) == 0


def test_check_command_line_exit_status(suite_report):
    page = suite_report / "page.md"
    page.write_text(f"<!-- render: suite_table results={suite_report / 'rep'} -->\n<!-- /render -->\n")
    cmd = [sys.executable, osp.join(REPO, "benchmarks", "render_docs.py"), "--check", "--pages", str(page)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip().endswith(".md:1: suite_table differs from its rendering "
                                        "(run python benchmarks/render_docs.py)")


# ---------------------------------------------------------------------------------------------------------------
# (d) errors name the page, the line and what to do

@pytest.mark.parametrize("text, message", [
    ("x\n<!-- render: no_such_table results=rep -->\n<!-- /render -->\n",
     r"p\.md:2: unknown renderer 'no_such_table' \(known: suite_table, .*\); fix the marker's name"),
    ("<!-- render: suite_table results=missing_dir -->\n<!-- /render -->\n",
     r"p\.md:1: suite_table: missing_dir/results\.json not found .*commit the result file there or fix the path"),
    ("<!-- render: bench_eval file=m/none.json -->\n<!-- /render -->\n",
     r"p\.md:1: bench_eval: m/none\.json not found"),
    ("a\n\n<!-- render: suite_table results=rep -->\n| old |\n",
     r"p\.md:3: suite_table: not closed; add a line <!-- /render --> after its generated block"),
    ("<!-- render: suite_table results=rep -->\n<!-- render: demo results=rep -->\n<!-- /render -->\n",
     r"p\.md:1: suite_table: not closed before the next marker at line 2"),
    ("text\n<!-- /render -->\n", r"p\.md:2: <!-- /render --> without an opening"),
    ("<!-- render: suite_table -->\n<!-- /render -->\n",
     r"p\.md:1: suite_table: missing key results \(its keys: results, \[rows\], \[metrics\]\); fix the marker"),
    ("<!-- render: suite_table results=rep colour=red -->\n<!-- /render -->\n",
     r"p\.md:1: suite_table: unknown key colour .*fix the marker"),
    ("<!-- render: suite_table results=rep rows=nope -->\n<!-- /render -->\n",
     r"p\.md:1: suite_table: rows nope not in rep/results\.json \(its runs: base, plus, solo\); fix rows="),
    ("<!-- render: suite_deltas results=rep deltas=worse -->\n<!-- /render -->\n",
     r"p\.md:1: suite_deltas: deltas worse not in rep/results\.json"),
    ("<!-- render: bench_eval file=rep/results.json -->\n<!-- /render -->\n",
     r"p\.md:1: bench_eval: rep/results\.json is not a bench_eval result .*regenerate it with python "
     r"benchmarks/bench_eval\.py --json"),
])
def test_errors_name_page_line_and_remedy(suite_report, text, message):
    with pytest.raises(RenderError, match=message):
        render_page(text, "p.md", str(suite_report))


def test_an_error_stops_before_any_page_is_written(suite_report, capsys):
    (suite_report / "docs").mkdir()
    (suite_report / "README.md").write_text(PAGE)
    (suite_report / "docs" / "bad.md").write_text("<!-- render: suite_table results=rep -->\n")
    assert main([], root=str(suite_report)) == 2
    err = capsys.readouterr().err
    assert "error: docs/bad.md:1: suite_table: not closed" in err and "nothing written" in err
    assert (suite_report / "README.md").read_text() == PAGE
