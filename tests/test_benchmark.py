"""Benchmark suites (issue 6): suite files, the resumable runner, cost measurement, the report."""
import csv
import json
import math
import os
import os.path as osp
import statistics

import pytest
import torch
from PIL import Image
from torch import nn

from torchreid_dense import compat
from torchreid_dense.benchmark import cli
from torchreid_dense.benchmark.cost import count_flops, measure_cost, used_parameters
from torchreid_dense.benchmark.report import TABLE_COLUMNS, aggregate, load_results, summarize, write_report
from torchreid_dense.benchmark.job_dir import JOB_FILE, write_json
from torchreid_dense.benchmark.job_process import other_machine
from torchreid_dense.benchmark.runner import (
    CHECKPOINT_EVERY,
    FAILED_FILE,
    RESULT_FILE,
    STDOUT_FILE,
    BenchmarkError,
    plan_jobs,
    _resume_opts,
    run_job,
    run_suite,
)
from torchreid_dense.benchmark.suite import SuiteError, SuiteRun, load_suite

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def write(path, text):
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return str(path)


@pytest.fixture
def configs(tmp_path):
    a = write(tmp_path / "cfg" / "a.yaml", "model:\n  name: resnet18\n")
    b = write(tmp_path / "cfg" / "b.yaml", "model:\n  name: osnet_x0_25\n")
    return a, b


SUITE = """
name: demo
description: two runs
defaults:
  seeds: [0, 1, 2]
  opts: {{data.root: /data, train.max_epoch: 10}}
  target: tgt
runs:
  - name: main
    label: Main model
    config: {b}
    depends_on: [pre]
    opts: [san.init_weights, "{{pre.checkpoint}}", test.ranks, [1, 5]]
  - name: pre
    config: {a}
    report: false
    seeds: [7]
    opts: {{train.lr: 0.1, use_gpu: false}}
profiles:
  quick:
    seeds: [0]
    opts: {{train.max_epoch: 2}}
    runs:
      pre: {{opts: {{train.max_epoch: 1}}, seeds: [5]}}
"""


def test_load_suite_merges_opts_seeds_and_orders_dependencies(tmp_path, configs):
    a, b = configs
    path = write(tmp_path / "suite.yaml", SUITE.format(a=a, b=b))
    suite = load_suite(path)
    assert suite.name == "demo" and suite.description == "two runs" and suite.profiles == ("quick",)
    assert [r.name for r in suite.runs] == ["pre", "main"]  # dependency first
    pre, main = suite.runs
    assert pre.opts == ("data.root", "/data", "train.max_epoch", "10", "train.lr", "0.1", "use_gpu", "False")
    assert main.opts == ("data.root", "/data", "train.max_epoch", "10", "san.init_weights", "{pre.checkpoint}",
                         "test.ranks", "[1, 5]")
    assert (pre.seeds, main.seeds) == ((7,), (0, 1, 2))
    assert (pre.label, main.label, pre.report, main.report) == ("pre", "Main model", False, True)
    assert (pre.config, main.config, main.target, main.depends_on) == (a, b, "tgt", ("pre",))

    quick = load_suite(path, profile="quick")
    pre, main = quick.runs
    assert pre.opts[-4:] == ("train.max_epoch", "2", "train.max_epoch", "1")  # profile, then profile run
    assert main.opts[-2:] == ("train.max_epoch", "2") and (pre.seeds, main.seeds) == ((5,), (0,))

    jobs = plan_jobs(suite, "out")
    assert [j.key for j in jobs] == ["pre/seed7", "main/seed0", "main/seed1", "main/seed2"]
    assert all(dict(j.deps)["pre"] is jobs[0] for j in jobs[1:])  # seed 7 is pre's only seed
    assert jobs[1].argv()[-4:] == ["train.seed", "0", "data.save_dir", osp.join("out", "main", "seed0")]
    assert [j.key for j in plan_jobs(suite, "out", seeds=[3])] == ["pre/seed3", "main/seed3"]
    assert [r.name for r in suite.select(["main"]).runs] == ["pre", "main"]
    assert [r.name for r in suite.select(["pre"]).runs] == ["pre"]


def test_fixed_seeds_run_keeps_its_seed_when_the_command_line_gives_others(tmp_path, configs):
    """A preprocessing run (SAN-PG) marked ``fixed_seeds`` is one model: ``--seeds 1`` trains seed 1 of the rows
    from it, the same job (same dependency) as seed 1 of a run without ``--seeds`` (issue 28: a job's result
    must not depend on how it is launched)."""
    a, b = configs
    text = SUITE.format(a=a, b=b).replace("    report: false\n", "    report: false\n    fixed_seeds: true\n")
    suite = load_suite(write(tmp_path / "suite.yaml", text))
    pre, main = suite.runs
    assert (pre.fixed_seeds, main.fixed_seeds) == (True, False)
    assert (pre.job_seeds([1, 2]), main.job_seeds([1, 2]), main.job_seeds(None)) == ((7,), (1, 2), (0, 1, 2))
    given = plan_jobs(suite, "out", seeds=[1])
    assert [j.key for j in given] == ["pre/seed7", "main/seed1"]
    default = {j.key: j for j in plan_jobs(suite, "out")}
    assert dict(given[1].deps)["pre"].key == dict(default["main/seed1"].deps)["pre"].key == "pre/seed7"
    assert given[1].argv() == default["main/seed1"].argv()
    several = SuiteRun(name="pg", label="pg", config=a, seeds=(0, 1, 2), fixed_seeds=True)
    assert (several.job_seeds([1]), several.job_seeds([1, 5]), several.job_seeds([5]), several.job_seeds(None)) == \
        ((1,), (1,), (0,), (0, 1, 2))


def test_train_threads_from_the_suite_reach_every_job(tmp_path, configs):
    """``train_threads`` (defaults, replaced by a profile, overridden by the caller) is in every job's spec; it is
    not part of the fingerprint: the finished jobs are the same jobs whatever the count."""
    a, b = configs
    text = (SUITE.format(a=a, b=b).replace("  target: tgt\n", "  target: tgt\n  train_threads: 1\n")
            .replace("  quick:\n    seeds: [0]\n", "  quick:\n    seeds: [0]\n    train_threads: 3\n"))
    path = write(tmp_path / "suite.yaml", text)
    suite = load_suite(path)
    assert (suite.train_threads, suite.select(["pre"]).train_threads) == (1, 1)
    assert load_suite(path, profile="quick").train_threads == 3
    assert load_suite(write(tmp_path / "plain.yaml", SUITE.format(a=a, b=b))).train_threads == 0
    specs, messages = [], []

    def fake_job(spec):
        specs.append(spec)
        return dict(fake_result(0.5, 0.4, 1.0), checkpoint=osp.join(spec["out_dir"], "model", "m.pth"))

    out = str(tmp_path / "out")
    run_suite(suite, out, job_fn=fake_job, log=messages.append)
    assert [s["train_threads"] for s in specs] == [1, 1, 1, 1]
    assert any(m.startswith("Every job trains with 1 torch thread (") for m in messages)
    specs.clear()
    run_suite(suite, str(tmp_path / "env"), job_fn=fake_job, train_threads=0, log=messages.append)
    assert [s["train_threads"] for s in specs] == [0, 0, 0, 0]
    again = run_suite(suite, out, job_fn=lambda spec: pytest.fail("a finished job ran again"), train_threads=2,
                      log=lambda *_: None)
    assert len(again["reused"]) == 4
    for bad, where in (("-1", "defaults"), ("two", "defaults"), ("true", "defaults")):
        wrong = write(tmp_path / "bad.yaml", text.replace("  train_threads: 1\n", f"  train_threads: {bad}\n"))
        with pytest.raises(SuiteError, match=rf"{where}: train_threads must be an integer >= 0"):
            load_suite(wrong)
    wrong = write(tmp_path / "bad.yaml", text.replace("    train_threads: 3\n", "    train_threads: -2\n"))
    with pytest.raises(SuiteError, match=r"profiles.quick: train_threads must be an integer >= 0 \(.*\), got -2"):
        load_suite(wrong, profile="quick")
    with pytest.raises(SystemExit) as err:
        cli.main(["--suite", path, "--train-threads", "-1"])
    assert err.value.code == 2


@pytest.mark.parametrize("runs, message", [
    ("  - {name: x, config: A, color: red}", "unknown key(s) ['color']"),
    ("  - {name: x, config: A, opts: [train.lr]}", "odd number of items"),
    ("  - {name: x, config: A, opts: {train.seed: 3}}", "'train.seed' is set by the benchmark runner"),
    ("  - {name: x, config: A, opts: {data.save_dir: o}}", "'data.save_dir' is set by the benchmark runner"),
    ("  - {name: x, config: A, opts: {m: '{y.checkpoint}'}}\n  - {name: y, config: A}",
     "uses '{y.…}' in its opts but does not declare depends_on: [y]"),
    ("  - {name: x, config: A, depends_on: [y]}\n  - {name: y, config: A, depends_on: [x]}",
     "dependency cycle x -> y -> x"),
    ("  - {name: x, config: A, depends_on: [z]}", "depends on unknown run 'z'"),
    ("  - {name: x, config: A}\n  - {name: x, config: A}", "run name 'x' is used twice"),
    ("  - {name: x, config: nowhere.yaml}", "config file 'nowhere.yaml' not found"),
    ("  - {name: x, config: A, seeds: []}", "seeds must be a non-empty list of integers"),
    ("  - {name: 'a b', config: A}", "'name' must be a word"),
    ("  - {name: x, config: A, pinned: train.max_epoch}", "'pinned' must be a list of config keys"),
])
def test_suite_errors_name_the_file_and_the_fix(tmp_path, configs, runs, message):
    path = write(tmp_path / "bad.yaml", "runs:\n" + runs.replace("A", configs[0]) + "\n")
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert str(err.value).startswith(path) and message in str(err.value)


def test_suite_file_and_profile_errors(tmp_path, configs):
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite(str(tmp_path / "missing.yaml"))
    path = write(tmp_path / "s.yaml", f"runs:\n  - {{name: x, config: {configs[0]}}}\n")
    with pytest.raises(SuiteError, match=r"no profile 'quick'; profiles: none"):
        load_suite(path, profile="quick")
    assert load_suite(path).name == "s" and load_suite(path).runs[0].seeds == (0,)
    with pytest.raises(SuiteError, match=r"no run named \['y'\]"):
        load_suite(path).select(["y"])


def test_shipped_suites_load_from_the_repository(monkeypatch):
    monkeypatch.chdir(REPO)
    synth = load_suite("configs/suites/synth.yaml")
    assert [r.name for r in synth.runs if r.report] == ["resnet18", "osnet_x0_25", "dsa_reid_r18", "san_r18"]
    assert all(r.seeds == (0, 1, 2) for r in synth.runs)
    san = synth.run("san_r18")
    assert san.depends_on == ("san_pg_r18",) and "{san_pg_r18.checkpoint}" in san.opts
    assert not synth.run("san_pg_r18").report
    from torchreid_dense.engine.launch import load_config

    models = {r.name: load_config(r.config, list(r.opts)).model.name for r in synth.runs}
    assert models == {"resnet18": "resnet18", "osnet_x0_25": "osnet_x0_25", "dsa_reid_r18": "dsa_reid_r18",
                      "san_pg_r18": "san_pg_r18", "san_r18": "san_r18"}
    quick = load_suite("configs/suites/synth.yaml", profile="quick")
    assert all(r.seeds == (0,) for r in quick.runs)
    cfg = load_config(quick.run("dsa_reid_r18").config, list(quick.run("dsa_reid_r18").opts))
    assert (cfg.data.height, cfg.data.width, cfg.train.max_epoch, cfg.dense.dsap_size) == (64, 32, 1, 16)

    market = load_suite("configs/suites/market1501.yaml")
    models = {r.name: load_config(r.config, list(r.opts)).model.name for r in market.runs}
    assert models == {"resnet50": "resnet50", "osnet_x1_0": "osnet_x1_0", "pcb_p6": "pcb_p6",
                      "dsa_reid": "dsa_reid", "san_pg": "san_pg", "san": "san"}
    assert [r.name for r in market.runs if r.report] == ["resnet50", "osnet_x1_0", "pcb_p6", "dsa_reid", "san"]


def fake_result(rank1, mAP, time_s, **extra):
    metrics = {"rank1": rank1, "mAP": mAP, **extra}
    return {
        "metrics": {"tgt": metrics, "other": {"rank1": 0.0, "mAP": 0.0}},
        "train_time_s": time_s,
        "cost": {"params_m": 1.5, "gflops": 0.25, "gmacs": 0.125, "input_size": [64, 32], "threads": 1,
                 "latency_ms": {"bs1": 2.0 * time_s, "bs32": 0.5}},
        "checkpoint": "",
    }


def crafted_results():
    results = []
    for seed, (r1, mAP, minp) in enumerate([(0.5, 0.25, 0.1), (0.6, 0.25, 0.2), (0.7, 0.40, 0.6)]):
        res = fake_result(r1, mAP, 60.0 * (seed + 1), rank5=0.9, rank10=1.0, mINP=minp)
        res.update(run="dsa", label="DSA-reID", seed=seed, target="tgt", report=True)
        results.append(res)
    res = fake_result(0.8, 0.5, 30.0)  # rank1 and mAP only (the launcher's current keys)
    res.update(run="base", label="base", seed=0, target="", report=True)
    aux = fake_result(0.0, 0.0, 1.0)
    aux.update(run="aux", label="aux", seed=0, target="tgt", report=False)
    return results + [res, aux]


def test_summarize_is_mean_and_sample_std():
    values = [0.5, 0.6, 0.7, 1.3]
    s = summarize(values)
    assert s["n"] == 4 and s["min"] == 0.5 and s["max"] == 1.3
    assert s["mean"] == pytest.approx(statistics.mean(values), abs=1e-15)
    assert s["std"] == pytest.approx(statistics.stdev(values), abs=1e-15)
    assert summarize([2.0]) == {"n": 1, "mean": 2.0, "std": 0.0, "min": 2.0, "max": 2.0}
    assert summarize([]) is None


def test_aggregate_over_seeds_exact():
    rows = aggregate(crafted_results(), order=["base", "dsa"])
    assert [r["run"] for r in rows] == ["base", "dsa"]  # the report=False run is left out
    base, dsa = rows
    assert dsa["seeds"] == [0, 1, 2] and dsa["target"] == "tgt" and dsa["model"] == "DSA-reID"
    assert dsa["rank1"]["mean"] == pytest.approx(60.0, abs=1e-12)
    assert dsa["rank1"]["std"] == pytest.approx(10.0, abs=1e-12)
    assert dsa["mAP"]["mean"] == pytest.approx(30.0, abs=1e-12)
    assert dsa["mAP"]["std"] == pytest.approx(math.sqrt(75.0), abs=1e-12)  # deviations -5, -5, 10
    assert (dsa["mINP"]["min"], dsa["mINP"]["max"]) == pytest.approx((10.0, 60.0))
    assert dsa["rank5"]["std"] == 0.0 and dsa["rank20"] is None
    assert dsa["train_time_min"]["mean"] == pytest.approx(2.0) and dsa["train_time_min"]["std"] == pytest.approx(1.0)
    assert dsa["latency_ms_bs1"]["mean"] == pytest.approx(240.0)
    assert (dsa["params_m"], dsa["gflops"]) == (1.5, 0.25)
    assert base["target"] == "tgt"  # target '' = the first one the launcher returned
    assert base["rank1"]["mean"] == pytest.approx(80.0) and base["mINP"] is None and base["rank5"] is None


def test_report_files_have_the_right_columns(tmp_path):
    out = str(tmp_path / "report")
    report = write_report(out, crafted_results(), order=["dsa", "base"], title="Crafted")
    paths = report["paths"]
    assert sorted(osp.basename(p) for p in paths.values()) == ["results.csv", "results.json", "results.md",
                                                                "results.png"]
    md = open(paths["md"]).read().splitlines()
    assert md[0] == "# Crafted"
    header = [c.strip() for c in md[2].strip("|").split("|")]
    assert header == list(TABLE_COLUMNS) == [
        "Model", "Params (M)", "GFLOPs", "CPU ms/img (bs 1)", "CPU ms/img (bs 32)", "R1 (%)", "R5 (%)",
        "R10 (%)", "mAP (%)", "mINP (%)", "Train time (min)", "Seeds"]
    dsa = [c.strip() for c in md[4].strip("|").split("|")]
    assert dsa == ["DSA-reID", "1.50", "0.25", "240.0 ± 120.0", "0.5 ± 0.0", "60.0 ± 10.0", "90.0 ± 0.0",
                   "100.0 ± 0.0", "30.0 ± 8.7", "30.0 ± 26.5", "2.0 ± 1.0", "3"]
    base = [c.strip() for c in md[5].strip("|").split("|")]
    assert base == ["base", "1.50", "0.25", "60.0", "0.5", "80.0", "-", "-", "50.0", "-", "0.5", "1"]
    assert len([line for line in md if line.startswith("| ")]) == 3  # header + 2 models, no 'aux'

    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["DSA-reID", "base"]
    assert float(rows[0]["rank1_mean"]) == pytest.approx(60.0) and float(rows[0]["mAP_std"]) == pytest.approx(
        math.sqrt(75.0))
    assert rows[0]["seeds"] == "0 1 2" and rows[1]["mINP_mean"] == "" and rows[1]["rank1_std"] == "0.0"
    assert {"rank20_mean", "train_time_min_max", "latency_ms_bs32", "gflops", "params_m"} <= set(rows[0])

    saved = json.load(open(paths["json"]))
    assert [r["run"] for r in saved["rows"]] == ["dsa", "base"] and len(saved["results"]) == 5
    with Image.open(paths["png"]) as png:
        assert png.format == "PNG" and png.size[0] > 300


def test_runner_resumes_and_feeds_dependencies(tmp_path, configs):
    a, b = configs
    path = write(tmp_path / "suite.yaml", SUITE.format(a=a, b=b))
    suite = load_suite(path)
    out = str(tmp_path / "out")
    calls = []

    def fake_job(spec):
        calls.append(spec)
        os.makedirs(spec["out_dir"], exist_ok=True)
        seed = int(spec["argv"][spec["argv"].index("train.seed") + 1])
        res = fake_result(0.1 * (seed + 1), 0.05 * (seed + 1), 10.0)
        res["checkpoint"] = osp.join(spec["out_dir"], "model", "model.pth.tar-3")
        return res

    summary = run_suite(suite, out, job_fn=fake_job, log=lambda *_: None)
    assert [c["out_dir"] for c in calls] == [osp.join(out, "pre", "seed7")] + [
        osp.join(out, "main", f"seed{s}") for s in (0, 1, 2)]
    pre_ckpt = osp.join(out, "pre", "seed7", "model", "model.pth.tar-3")
    main_argv = calls[1]["argv"]
    assert main_argv[:2] == ["--config-file", b]
    assert main_argv[main_argv.index("san.init_weights") + 1] == pre_ckpt  # placeholder resolved
    assert calls[0]["threads"] == 1 and calls[0]["latency"] is True
    assert summary["failed"] == {} and summary["reused"] == [] and len(summary["results"]) == 4

    saved = json.load(open(osp.join(out, "main", "seed2", RESULT_FILE)))
    assert (saved["run"], saved["seed"], saved["suite"], saved["report"]) == ("main", 2, "demo", True)
    assert saved["metrics"]["tgt"]["rank1"] == pytest.approx(0.3) and saved["argv"] == calls[3]["argv"]

    calls.clear()
    again = run_suite(suite, out, job_fn=fake_job, log=lambda *_: None)
    assert calls == [] and len(again["reused"]) == 4  # nothing reruns
    assert [r["seed"] for r in again["results"]] == [7, 0, 1, 2]
    assert len(load_results(out)) == 4

    with pytest.raises(BenchmarkError, match="produced by another setting"):
        run_suite(suite, out, job_fn=fake_job, extra_opts=["train.lr", "0.5"], log=lambda *_: None)


def test_resuming_on_another_cpu_kind_names_each_finished_job_from_the_other_machine(tmp_path, configs):
    a, b = configs
    suite = load_suite(write(tmp_path / "suite.yaml", SUITE.format(a=a, b=b)))
    out = str(tmp_path / "out")
    avx2 = {"cpu": "AMD EPYC", "cpu_capability": "AVX2", "torch_threads": 1}
    avx512 = {"cpu": "AMD EPYC", "cpu_capability": "AVX512", "torch_threads": 2}

    def fake_job(spec):
        res = fake_result(0.5, 0.25, 1.0)
        res["checkpoint"] = osp.join(spec["out_dir"], "model", "model.pth.tar-3")
        seed = int(spec["argv"][spec["argv"].index("train.seed") + 1])
        if seed != 1:  # main/seed1 records no machine (as jobs did before result.json had one): never flagged
            res["machine"] = avx2
        return res

    assert len(run_suite(suite, out, job_fn=fake_job, log=lambda *_: None, machine=avx2)["results"]) == 4
    lines = []
    run_suite(suite, out, job_fn=fake_job, log=lines.append, machine=dict(avx2, torch_threads=4))
    assert not [line for line in lines if "note:" in line]  # same CPU kind: the thread count is the suite's business
    lines = []
    run_suite(suite, out, job_fn=fake_job, log=lines.append, machine=avx512)
    notes = [line for line in lines if "note:" in line]
    assert [n.split(":")[0] for n in notes] == ["[1/4] pre/seed7", "[2/4] main/seed0", "[4/4] main/seed2"]
    assert "ran on AMD EPYC (AVX2), this machine is AMD EPYC (AVX512)" in notes[0]
    assert other_machine({"machine": avx2}, {"cpu": "Intel Xeon", "cpu_capability": "AVX2"}).startswith(
        "ran on AMD EPYC (AVX2), this machine is Intel Xeon (AVX2)")
    assert other_machine({"machine": {"cpu": "AMD EPYC"}}, {"cpu": "AMD EPYC"}) is None


def test_pinned_keys_keep_a_runs_own_values_against_command_line_opts(tmp_path, configs):
    a, b = configs
    path = write(tmp_path / "suite.yaml", (
        f"runs:\n  - {{name: pre, config: {a}, report: false, opts: {{train.max_epoch: 20}},"
        f" pinned: [train.max_epoch, train.stepsize]}}\n"
        f"  - {{name: main, config: {b}, depends_on: [pre], opts: {{m.w: '{{pre.checkpoint}}'}}}}\n"))
    suite = load_suite(path)
    assert suite.run("pre").pinned == ("train.max_epoch", "train.stepsize")
    extra = ["train.max_epoch", "24", "data.root", "/d", "train.stepsize", "[12]"]
    assert suite.run("pre").command_line_opts(extra) == ["data.root", "/d"]
    assert suite.run("main").command_line_opts(extra) == extra
    out, calls, messages = str(tmp_path / "out"), [], []

    def fake_job(spec):
        calls.append(spec["argv"])
        return dict(fake_result(0.5, 0.4, 1.0), checkpoint=osp.join(spec["out_dir"], "model", "m.pth"))

    run_suite(suite, out, job_fn=fake_job, extra_opts=extra, log=messages.append)
    pre, main = calls
    assert pre[pre.index("train.max_epoch") + 1] == "20" and "train.stepsize" not in pre and "/d" in pre
    assert main[-8:-4] == ["train.stepsize", "[12]", "train.checkpoint_every", str(CHECKPOINT_EVERY)]
    assert main[main.index("train.max_epoch") + 1] == "24"
    assert any("pre/seed0: keeps its own train.max_epoch, train.stepsize (pinned" in m for m in messages)
    saved = json.load(open(osp.join(out, "pre", "seed0", RESULT_FILE)))
    assert saved["fingerprint"]["opts"] == ["train.max_epoch", "20", "data.root", "/d"]
    # the pinned run's finished job is the same job with or without the schedule overrides
    again = run_suite(suite.select(["pre"]), out, job_fn=fake_job, extra_opts=["data.root", "/d"],
                      log=lambda *_: None)
    assert again["reused"] == ["pre/seed0"] and len(calls) == 2


def test_runner_checkpoints_and_resumes_an_interrupted_job(tmp_path, configs):
    """Every job writes checkpoint_last.pth; a rerun of an interrupted one resumes from it, unless it ran another command."""
    a, b = configs
    suite = load_suite(write(tmp_path / "suite.yaml", SUITE.format(a=a, b=b)))
    out = str(tmp_path / "out")
    job = plan_jobs(suite, out)[0]
    calls = []

    def record(spec):
        calls.append(list(spec["argv"]))
        return fake_result(0.1, 0.05, 1.0)

    run_job(job, record)
    fresh = calls[-1]
    assert fresh[fresh.index("train.checkpoint_every") + 1] == str(CHECKPOINT_EVERY) and "model.resume" not in fresh
    assert fresh[-4:] == ["train.seed", "7", "data.save_dir", job.out_dir]

    os.remove(osp.join(job.out_dir, RESULT_FILE))  # interrupted: a checkpoint, no result
    last = osp.join(job.out_dir, "model", "checkpoint_last.pth")
    os.makedirs(osp.dirname(last))
    open(last, "wb").close()
    write_json(osp.join(job.out_dir, JOB_FILE), {"argv": fresh})
    run_job(job, record)
    resumed = calls[-1]
    assert resumed[resumed.index("model.resume") + 1] == last
    assert [v for i, v in enumerate(resumed) if i not in (resumed.index("model.resume"), resumed.index(last))] == fresh

    # a suite that sets train.checkpoint_every keeps its value (a job with no checkpoint yet)
    other = plan_jobs(suite, out)[1]
    assert _resume_opts(other, ["train.checkpoint_every", "5"]) == []
    assert _resume_opts(other, []) == ["train.checkpoint_every", str(CHECKPOINT_EVERY)]
    # the interrupted attempt ran another command: its checkpoint is not this job's
    write_json(osp.join(job.out_dir, JOB_FILE), {"argv": fresh[:-4] + ["train.lr", "0.5"] + fresh[-4:]})
    with pytest.raises(BenchmarkError, match="interrupted attempt of another command"):
        run_job(job, record)


def test_runner_isolates_failures_and_retries_them(tmp_path, configs):
    a, b = configs
    suite = load_suite(write(tmp_path / "suite.yaml", SUITE.format(a=a, b=b)))
    out = str(tmp_path / "out")

    def broken(spec):
        raise RuntimeError("out of memory")

    summary = run_suite(suite, out, job_fn=broken, log=lambda *_: None)
    assert summary["failed"] == {"pre/seed7": "RuntimeError: out of memory"}
    assert summary["skipped"] == ["main/seed0", "main/seed1", "main/seed2"]
    assert json.load(open(osp.join(out, "pre", "seed7", FAILED_FILE)))["error"] == "RuntimeError: out of memory"
    assert not osp.exists(osp.join(out, "pre", "seed7", RESULT_FILE))

    calls = []

    def works(spec, checkpoint="ckpt"):
        calls.append(spec["out_dir"])
        return dict(fake_result(0.5, 0.5, 1.0), checkpoint=checkpoint)

    summary = run_suite(suite, out, job_fn=works, log=lambda *_: None)
    assert summary["failed"] == {} and len(calls) == 4 and summary["reused"] == []
    assert not osp.exists(osp.join(out, "pre", "seed7", FAILED_FILE))
    main_argv = json.load(open(osp.join(out, "main", "seed0", RESULT_FILE)))["argv"]
    assert main_argv[main_argv.index("san.init_weights") + 1] == "ckpt"

    fresh = str(tmp_path / "fresh")  # a dependency that saved no checkpoint fails its dependents clearly
    summary = run_suite(suite, fresh, job_fn=lambda spec: works(spec, ""), log=lambda *_: None)
    assert list(summary["failed"]) == ["main/seed0", "main/seed1", "main/seed2"]
    assert "dependency 'pre/seed7' finished without a checkpoint" in summary["failed"]["main/seed0"]


def test_dry_run_prints_commands_and_runs_nothing(tmp_path, configs, capsys):
    a, b = configs
    path = write(tmp_path / "suite.yaml", SUITE.format(a=a, b=b))
    out = str(tmp_path / "out")
    assert cli.main(["--suite", path, "--output", out, "--dry-run", "--profile", "quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (f"[1/2] pre/seed5: python tools/main.py --config-file {a} data.root /data train.max_epoch 10 "
                        f"train.lr 0.1 use_gpu False train.max_epoch 2 train.max_epoch 1 train.seed 5 "
                        f"data.save_dir {osp.join(out, 'pre', 'seed5')}")
    assert "san.init_weights {pre.checkpoint}" in lines[2]
    assert not osp.exists(out)
    assert cli.main(["--suite", path, "--output", out, "--opts", "train.seed", "1"]) == 2
    assert "'train.seed' is set by the benchmark runner" in capsys.readouterr().err


def test_cost_counts_the_inference_graph():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 6))
    cost = measure_cost(net, 8, 4, threads=1, batch_sizes=(1, 2))
    assert cost["params"] == sum(p.numel() for p in net.parameters()) == 3 * 4 * 9 + 4 + 4 * 6 + 6
    assert cost["flops"] == 2 * (4 * 8 * 4) * (3 * 9) + 2 * 4 * 6  # conv + linear multiply-accumulates x 2
    assert cost["gmacs"] == cost["flops"] / 2e9 and cost["input_size"] == [8, 4] and cost["threads"] == 1
    assert set(cost["latency_ms"]) == {"bs1", "bs2"} and all(v > 0 for v in cost["latency_ms"].values())
    assert torch.get_num_threads() == max(1, min(2, os.cpu_count() or 1))  # restored (conftest's setting)

    stock = compat.models.build_model("resnet18", num_classes=10, pretrained=False)
    cost = measure_cost(stock, 64, 32, latency=False)
    total = sum(p.numel() for p in stock.parameters())
    assert cost["params"] == total - sum(p.numel() for p in stock.classifier.parameters())  # unused in eval
    assert cost["params_all_m"] == total / 1e6 and cost["latency_ms"] == {}
    image = (torch.randn(1, 3, 64, 32),)
    assert count_flops(stock.eval(), image) == cost["flops"]
    assert used_parameters(stock.classifier, (torch.randn(1, 512),)) == 512 * 10 + 10


def test_cost_of_dsa_counts_the_mf_stream_only():
    from torchreid_dense.models import build_model_from_config
    from torchreid_dense.engine.launch import load_config

    cfg = load_config(osp.join(REPO, "configs", "dsa_synth.yaml"), ["data.height", "64", "data.width", "32"])
    model, _ = build_model_from_config(cfg, 10)
    cost = measure_cost(model, 64, 32, latency=False)
    mf = sum(p.numel() for p in model.mf_stream.parameters())
    dsag = sum(p.numel() for p in model.dsag_stream.parameters())
    assert 0 < cost["params"] <= mf and dsag > 0
    assert cost["params"] + dsag < sum(p.numel() for p in model.parameters())


def test_end_to_end_tiny_run_through_a_child_process(tmp_path, monkeypatch):
    """One real job: resnet18 on synthreid_tiny, 1 epoch at 64x32, in its own process (with the suite's one torch
    thread, whatever the environment says), then the report."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    root, out = str(tmp_path / "data"), str(tmp_path / "bench")
    suite_path = write(tmp_path / "tiny.yaml", f"""
name: tiny
defaults:
  train_threads: 1
runs:
  - name: resnet18
    config: {osp.join(REPO, 'configs', 'baseline_synth.yaml')}
    seeds: [3]
    opts:
      data.root: {root}
      data.sources: ['synthreid_tiny']
      data.targets: ['synthreid_tiny']
      synth.preset: tiny
      data.height: 64
      data.width: 32
      data.workers: 0
      train.max_epoch: 1
      train.warmup_epochs: 0
      train.batch_size: 32
      test.batch_size: 64
""")
    suite = load_suite(suite_path)
    summary = cli.benchmark(suite, out, threads=1, log=lambda *_: None)
    assert summary["failed"] == {}, summary["failed"]
    job_dir = osp.join(out, "resnet18", "seed3")
    result = json.load(open(osp.join(job_dir, RESULT_FILE)))
    metrics = result["metrics"]["synthreid_tiny"]
    assert 0.0 <= metrics["rank1"] <= 1.0 and 0.0 < metrics["mAP"] <= 1.0
    assert result["checkpoint"] == osp.join(job_dir, "model", "model.pth.tar-1") and osp.isfile(result["checkpoint"])
    assert result["train_time_s"] > 0 and result["argv"][-4:] == ["train.seed", "3", "data.save_dir", job_dir]
    stock = compat.models.build_model("resnet18", num_classes=20, pretrained=False)
    used = sum(p.numel() for n, p in stock.named_parameters() if not n.startswith("classifier."))
    assert result["cost"]["params"] == used and result["cost"]["input_size"] == [64, 32]
    assert set(result["cost"]["latency_ms"]) == {"bs1", "bs32"} and result["cost"]["threads"] == 1
    assert result["machine"]["torch_threads"] == 1  # the suite's, not the environment's 2
    assert "Rank-1" in open(osp.join(job_dir, STDOUT_FILE)).read()  # the child's console output
    assert osp.isfile(osp.join(job_dir, "log.txt"))

    md = open(summary["report"]["paths"]["md"]).read()
    assert f"| resnet18 | {used / 1e6:.2f} |" in md and f"{100 * metrics['mAP']:.1f}" in md
    again = run_suite(suite, out, job_fn=lambda spec: pytest.fail("a finished job ran again"),
                      log=lambda *_: None)
    assert again["reused"] == ["resnet18/seed3"]
