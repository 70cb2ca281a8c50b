"""Render every table of measured numbers in README.md and docs/*.md from the committed result files.

A table is placed in a page between two markers::

    <!-- render: suite_table results=benchmarks/results/alignment_amd_avx2 rows=mf_alone,dsa_reid -->
    (generated: rewritten by this script, never edited by hand)
    <!-- /render -->

The first word is the renderer's name, then ``key=value`` arguments (a value with spaces in quotes:
``deltas="DSAG guidance;texture supervision"``). Paths are relative to the repository root. A marker may be
indented (inside a list item): the generated lines get the same indentation. Markers inside fenced code blocks are
ignored. Every block ends with a source line in italics: the result file, and the machine it was measured on (from
the ``machine`` record of each job's ``result.json`` or of the micro benchmark's file).

Usage::

    python benchmarks/render_docs.py                  # rewrite the blocks of README.md and docs/*.md in place
    python benchmarks/render_docs.py --check          # write nothing; exit 1 when a block is stale
    python benchmarks/render_docs.py --pages docs/san.md
    python benchmarks/render_docs.py --list           # the renderers and their keys

Renderers (:data:`RENDERERS`):

* ``suite_table results=DIR [rows=a,b,c] [metrics=R1,mAP,mINP]``: rows of a suite report ``DIR/results.json``
  (``torchreid_dense.benchmark.report.write_report``): model, metrics as mean ± std over seeds, seeds.
* ``suite_deltas results=DIR [deltas=NAME1;NAME2] [fallback=DIR]``: the report's paired deltas with their per-seed
  values; with ``fallback``, a delta not measured in ``results`` comes from that report (a CPU column says whose).
* ``regime results=DIR``: the regime study ``DIR/regime.json`` (``torchreid_dense.benchmark.regime``).
* ``demo results=DIR``: the ``make demo`` table (model, R1, mAP) and SAN-PG's held-out texture L1.
* ``synth_presets [presets=tiny,small,full] [seed=0]``: SynthReID's presets, counted from their image plans.
* ``bench_eval``, ``bench_rerank``, ``bench_dsap``, ``bench_dsa_cost``, ``bench_san_cost``, ``bench_file_check``,
  ``bench_synth``, each ``file=benchmarks/results/micro/<name>.json`` (``bench_dsa_cost`` and ``bench_san_cost``
  also ``[tables=...]``): the micro benchmarks' files, written by ``python benchmarks/<name>.py --json FILE``
  through :class:`torchreid_dense.benchmark.micro_record.MicroRecord`.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shlex
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from torchreid_dense.benchmark.job_process import cpu_name  # noqa: E402
from torchreid_dense.benchmark.regime import REGIME_FILES, _delta_cell, format_regime  # noqa: E402
from torchreid_dense.benchmark.report import (  # noqa: E402
    METRICS, REPORT_FILES, TABLE_METRICS, _pm, paired_deltas, summarize)

__all__ = ["RENDERERS", "RenderError", "render_page", "main"]

OPEN = re.compile(r"^(?P<indent>[ \t]*)<!--\s*render:(?P<spec>.*?)-->\s*$")
CLOSE = re.compile(r"^[ \t]*<!--\s*/render\s*-->\s*$")
FENCE = re.compile(r"^[ \t]*(```|~~~)")
HINT = "run python benchmarks/render_docs.py"


class RenderError(Exception):
    """A marker or result file the renderers cannot use; the message says where and what to do."""


# ---------------------------------------------------------------------------------------------------------------
# the registry

RENDERERS = {}


def renderer(name, required=(), optional=()):
    """Register ``fn(args, repo_root) -> markdown`` under ``name`` with its required and optional keys."""
    def register(fn):
        fn.required, fn.optional = tuple(required), tuple(optional)
        RENDERERS[name] = fn
        return fn
    return register


def _keys(fn):
    return ", ".join([*fn.required, *(f"[{k}]" for k in fn.optional)])


# ---------------------------------------------------------------------------------------------------------------
# reading result files and describing where they came from

def _path(value, root):
    return value if osp.isabs(value) else osp.join(root, value)


def _load_json(value, root, what):
    path = _path(value, root)
    if not osp.isfile(path):
        raise RenderError(f"{value} not found ({what}); commit the result file there or fix the path in the marker")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise RenderError(f"{value} cannot be read as JSON ({err}); regenerate it") from err


def _plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def describe_machine(machine):
    """``AMD EPYC (AVX2), 1 torch thread, torch 2.14.1`` from a :func:`~.job_process.machine_info` record."""
    if not machine:
        return None
    parts = [cpu_name(machine)]
    if machine.get("torch_threads") is not None:
        parts.append(_plural(machine["torch_threads"], "torch thread"))
    if machine.get("torch"):
        parts.append(f"torch {machine['torch']}")
    return ", ".join(parts)


def describe_machines(jobs):
    """One phrase for the machines of a list of job results (their ``machine`` fields)."""
    counts = {}
    for job in jobs:
        desc = describe_machine(job.get("machine")) or "machine not recorded"
        counts[desc] = counts.get(desc, 0) + 1
    if not counts:
        return "machine not recorded"
    if len(counts) == 1:
        return next(iter(counts))
    listed = "; ".join(f"{desc} ({_plural(n, 'job')})" for desc, n in counts.items())
    recorded = [desc for desc in counts if desc != "machine not recorded"]
    # one recorded machine beside unrecorded jobs is not evidence of two machines: list them without saying so
    return listed if len(recorded) < 2 else "jobs on different machines: " + listed


def source_line(path, jobs, extra=""):
    return f"_From {path}{extra}; {describe_machines(jobs)}._"


def _report(args, root):
    """``(display path, results.json content)`` of a suite report directory."""
    path = osp.join(args["results"], REPORT_FILES["json"]).replace(os.sep, "/")
    data = _load_json(path, root, "a suite report written by tools/benchmark.py or benchmarks/bench_alignment.py")
    if not isinstance(data, dict) or "rows" not in data:
        raise RenderError(f"{path} is not a suite report (no 'rows'); regenerate it with tools/benchmark.py")
    return path, data


def _split(value, sep=","):
    return [v.strip() for v in value.split(sep) if v.strip()]


def _table(head, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(head) - 1)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# suite reports, the regime study, the demo

METRIC_KEYS = {**{label: key for key, label in TABLE_METRICS}, "R20": "rank20", **{m: m for m in METRICS}}
METRIC_LABELS = {**{key: label for key, label in TABLE_METRICS}, "rank20": "R20"}


def _select_rows(data, path, names):
    rows = data["rows"]
    if not names:
        return rows
    by_run = {row["run"]: row for row in rows}
    missing = [n for n in names if n not in by_run]
    if missing:
        raise RenderError(f"rows {', '.join(missing)} not in {path} (its runs: {', '.join(by_run)}); "
                          "fix rows= in the marker")
    return [by_run[n] for n in names]


def _jobs_of(data, runs):
    return [r for r in data.get("results", []) if r.get("run") in set(runs)]


def _metric_keys(value):
    keys = []
    for name in _split(value):
        if name not in METRIC_KEYS:
            raise RenderError(f"unknown metric {name!r} (known: {', '.join(METRIC_LABELS.values())}); fix metrics=")
        keys.append(METRIC_KEYS[name])
    return keys


@renderer("suite_table", required=("results",), optional=("rows", "metrics"))
def render_suite_table(args, root):
    """Model, each metric as mean ± std over seeds (percent), seeds: rows of a suite report."""
    path, data = _report(args, root)
    rows = _select_rows(data, path, _split(args.get("rows", "")))
    metrics = _metric_keys(args.get("metrics", "R1,mAP,mINP"))
    head = ["Model", *(f"{METRIC_LABELS[m]} (%)" for m in metrics), "Seeds"]
    body = [[row["model"], *(_pm(row.get(m)) for m in metrics), str(len(row["seeds"]))] for row in rows]
    return _table(head, body) + "\n\n" + source_line(path, _jobs_of(data, [r["run"] for r in rows]))


@renderer("suite_deltas", required=("results",), optional=("deltas", "fallback"))
def render_suite_deltas(args, root):
    """A suite report's paired deltas: mAP mean ± std with the per-seed values, R1 mean ± std, seeds.

    ``fallback=DIR``: a delta with no paired seed in ``results`` comes from that report instead (an older
    measurement on another machine); the table then says each row's machine.
    """
    sources = [_report(args, root)] + ([_report({"results": args["fallback"]}, root)] if args.get("fallback") else [])
    known = {}  # delta name -> its spec in each source that defines it
    for path, data in sources:
        for d in data.get("deltas") or []:
            known.setdefault(d["name"], []).append(((d["name"], d["plus"], d["minus"]), path, data))
    if not known:
        raise RenderError(f"{sources[0][0]} has no paired deltas (its suite defines none); use suite_table instead")
    names = _split(args.get("deltas", ""), ";") or list(known)
    missing = [n for n in names if n not in known]
    if missing:
        raise RenderError(f"deltas {', '.join(missing)} not in {' or '.join(p for p, _ in sources)} "
                          f"(their deltas: {'; '.join(known)}); fix deltas= in the marker")
    body, used = [], {}
    for name in names:
        candidates = [(spec, path, data, paired_deltas(data.get("results", []), [spec])[0])
                      for spec, path, data in known[name]]
        spec, path, data, row = next((c for c in candidates if c[3]["seeds"]), candidates[0])
        results = data.get("results", [])
        jobs = _jobs_of(data, spec[1:])
        used.setdefault(path, {}).update({(job.get("run"), job.get("seed")): job for job in jobs})
        per_seed = [paired_deltas([r for r in results if r.get("seed") == s], [spec])[0]["mAP"] for s in row["seeds"]]
        body.append([row["name"], f"{row['plus']} - {row['minus']}", _delta_cell(row["mAP"]),
                     ", ".join(_delta_cell(s) for s in per_seed) or "-", _delta_cell(row["rank1"]),
                     ", ".join(map(str, row["seeds"])) or "-", _cpu_of(jobs)])
    head = ["Delta", "plus - minus", "mAP (pp)", "mAP per seed (pp)", "R1 (pp)", "Seeds", "CPU"]
    align = ["---", "---", "---:", "---:", "---:", "---", "---"]
    if len(used) == 1:  # one source: its machine is in the source line, no column
        head, align, body = head[:-1], align[:-1], [row[:-1] for row in body]
        path, jobs = next(iter(used.items()))
        return _table(head, body, align) + "\n\n" + source_line(
            path, list(jobs.values()), " (plus - minus seed by seed, then mean ± sample std)")
    origin = " and ".join(f"{path} ({describe_machines(list(jobs.values()))})" for path, jobs in used.items())
    return _table(head, body, align) + f"\n\n_From {origin}; plus - minus seed by seed, then mean ± sample std._"


def _cpu_of(jobs):
    """The CPU of a delta's jobs, short (``AMD EPYC (AVX2)``), or ``not recorded``."""
    cpus = sorted({cpu_name(job["machine"]) if job.get("machine") else "not recorded" for job in jobs})
    return " / ".join(cpus) or "not recorded"


@renderer("regime", required=("results",))
def render_regime(args, root):
    """The regime study's table (``format_regime``): per level and point the deltas and the rows' mAP.

    Rows whose jobs ran on different CPUs get a CPU column (each row's, from its jobs' ``machine`` records).
    """
    path = osp.join(args["results"], REGIME_FILES["json"]).replace(os.sep, "/")
    data = _load_json(path, root, "the regime study written by benchmarks/bench_regime.py")
    rows = data.get("rows") or []
    if not rows:
        raise RenderError(f"{path} has no rows; regenerate it with benchmarks/bench_regime.py")
    deltas = [(d["name"], d["plus"], d["minus"]) for d in rows[0]["deltas"]]
    runs = {r for _, plus, minus in deltas for r in (plus, minus)}
    seeds = data.get("seeds")
    jobs, cpus = [], []
    for row in rows:
        output = _path(row["output"], root)
        row_jobs = []
        for job_file in sorted(glob.glob(osp.join(output, "*", "*", "result.json"))):
            with open(job_file, encoding="utf-8") as f:
                job = json.load(f)
            if job.get("run") in runs and (seeds is None or job.get("seed") in seeds):
                row_jobs.append(job)
        jobs += row_jobs
        cpus.append(_cpu_of(row_jobs) if row_jobs else "-")
    seeds_note = f"training seeds {', '.join(map(str, seeds))}" if seeds else "every paired training seed"
    # rows measured on different CPUs (a study being re-measured): each row says its own
    extra = ("CPU", cpus) if len(set(cpus) - {"-"}) > 1 else None
    return (format_regime(rows, deltas, knob=data.get("knob") or "level", extra=extra) + "\n\n"
            + source_line(path, jobs, f" ({seeds_note}; deltas in pp, mAP in %)"))


@renderer("demo", required=("results",))
def render_demo(args, root):
    """The ``make demo`` table: model, R1, mAP (percent), and SAN-PG's held-out texture L1 when it ran."""
    path, data = _report(args, root)
    head = ["Model", "R1 (%)", "mAP (%)"]
    body = [[row["model"], _pm(row.get("rank1")), _pm(row.get("mAP"))] for row in data["rows"]]
    text = _table(head, body)
    pg = {}
    for job in data.get("results", []):
        pit = (job.get("metrics") or {}).get("pit_val") or {}
        if "texture_l1_pixel" in pit:
            pg.setdefault((job.get("label") or job["run"]), []).append(pit["texture_l1_pixel"])
    for label, values in pg.items():
        text += f"\n\n{label}: held-out texture L1 {_pm(summarize(values), 3)} ([0, 1] pixel units)."
    return text + "\n\n" + source_line(path, data.get("results", []))


@renderer("synth_presets", optional=("presets", "seed"))
def render_synth_presets(args, root):
    """SynthReID's presets: identities and images per split, counted from their image plans (not measured)."""
    from torchreid_dense.data.synth.presets import PRESETS
    from torchreid_dense.data.synth.plan import plan_images

    names = _split(args.get("presets", ",".join(PRESETS)))
    bad = [n for n in names if n not in PRESETS]
    if bad:
        raise RenderError(f"unknown presets {', '.join(bad)} (known: {', '.join(PRESETS)}); fix presets=")
    seed = int(args.get("seed", "0"))
    body = []
    for name in names:
        config = PRESETS[name]
        splits = {}
        for rel, (kind, _), _, _ in plan_images(config, seed):
            key = "distractor" if kind == "distractor" else rel.split("/", 1)[0]
            splits[key] = splits.get(key, 0) + 1
        gallery = splits.get("bounding_box_test", 0) + splits.get("distractor", 0)
        body.append([name, f"{config.num_train_ids:,} / {splits.get('bounding_box_train', 0):,}",
                     f"{config.num_test_ids:,}",
                     f"{splits.get('query', 0):,} / {gallery:,} ({config.distractors:,} distractors)",
                     f"{config.pit_textures:,} × {config.pit_views} = {splits.get('pit', 0):,}",
                     f"{config.height}×{config.width}"])
    head = ["preset", "train ids / images", "test ids", "query / gallery", "PIT textures × views = pairs", "image"]
    return (_table(head, body, ["---"] * len(head)) + "\n\n"
            f"_Counted from the presets' image plans (torchreid_dense/data/synth/presets.py, plan.py), seed {seed}._")


# ---------------------------------------------------------------------------------------------------------------
# micro benchmarks: the file format (written by MicroRecord) and one renderer each

def _command(data):
    """The benchmark's command line as run, without its ``--json FILE``."""
    argv, out, skip = list(data.get("argv") or []), [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif not arg.startswith("--json="):
            out.append(arg)
    return " ".join(["python", f"benchmarks/{data.get('benchmark', '?')}.py", *map(shlex.quote, out)])


def micro_source(path, data):
    """``_From FILE (`command`, commit abc1234, 2026-12-06); machine; load average 2.4 at start, 2.6 at end._``"""
    when = [f"`{_command(data)}`"]
    if data.get("commit"):
        when.append(f"commit {data['commit'][:7]}")
    if data.get("started"):
        when.append(data["started"][:10])
    load = ""
    if data.get("loadavg_start") and data.get("loadavg_end"):
        load = f"; load average {data['loadavg_start'][0]:.1f} at start, {data['loadavg_end'][0]:.1f} at end"
    machine = describe_machine(data.get("machine")) or "machine not recorded"
    return f"_From {path} ({', '.join(when)}); {machine}{load}._"


def _micro(args, root, name):
    path = args["file"]
    data = _load_json(path, root, f"written by python benchmarks/{name}.py --json {path}")
    if not isinstance(data, dict) or data.get("benchmark") != name:
        raise RenderError(f"{path} is not a {name} result (benchmark {data.get('benchmark')!r}); "
                          f"regenerate it with python benchmarks/{name}.py --json {path}")
    return path, data


def _f(value, digits=1, sign=False, default="-"):
    if value is None:
        return default
    return f"{value:{'+' if sign else ''},.{digits}f}"


def _mib(nbytes, digits=1):
    return "-" if nbytes is None else _f(nbytes / 2 ** 20, digits)


def _tables(args, known):
    names = _split(args.get("tables", ",".join(known)))
    bad = [n for n in names if n not in known]
    if bad:
        raise RenderError(f"unknown tables {', '.join(bad)} (known: {', '.join(known)}); fix tables=")
    return names


def _median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def _problem(p):
    return f"{p['name']}, {p['num_query']:,} × {p['num_gallery']:,}"


@renderer("bench_eval", required=("file",))
def render_bench_eval(args, root):
    """Per problem and evaluator: median time, MB/s of distance matrix, extra peak memory, ratio, agreement."""
    path, data = _micro(args, root, "bench_eval")
    head = ["problem", "evaluator", "time (s)", "distance matrix read (MB/s)", "extra peak memory (MiB)",
            "time / ours", "agreement with ours"]
    body = []
    for p in data["problems"]:
        ours = next((e for e in p["evaluators"] if e["name"] == "ours"), None)
        t_ours = _median(ours["seconds"]) if ours else None
        for e in p["evaluators"]:
            if e.get("skipped"):
                body.append([_problem(p), e["name"], f"skipped: {e['skipped']}", "-", "-", "-", "-"])
                continue
            t = _median(e["seconds"])
            runs = len(e["seconds"])
            agree = e.get("agreement")
            body.append([
                _problem(p), e["name"], f"{t:.3f}" + (f" (median of {runs})" if runs > 1 else ""),
                _f(p["distmat_bytes"] / 1e6 / t, 0), _mib(e.get("extra_peak_bytes")),
                "-" if e["name"] == "ours" or not t_ours else f"{t / t_ours:,.1f}×",
                "-" if not agree else (f"max \\|ΔCMC\\| {agree['max_abs_cmc']:.1e}, \\|ΔmAP\\| "
                                       f"{agree['max_abs_map']:.1e}: {'OK' if agree['ok'] else 'MISMATCH'}"),
            ])
    return _table(head, body, ["---", "---", "---:", "---:", "---:", "---:", "---"]) + "\n\n" + micro_source(path, data)


@renderer("bench_rerank", required=("file",))
def render_bench_rerank(args, root):
    """Per problem and entry point: time, peak memory, torchreid's time over it, R1 / mAP, agreement."""
    path, data = _micro(args, root, "bench_rerank")
    head = ["problem", "re-ranking", "time (s)", "peak memory (MiB)", "torchreid time / this", "R1 (%)", "mAP (%)",
            "agreement"]
    body = []
    for p in data["problems"]:
        ref = next((e for e in p["entries"] if e["name"] == "torchreid"), None)
        for e in p["entries"]:
            if e["name"] == "ours (distances)" and p.get("agreement"):
                a = p["agreement"]
                agree = (f"max \\|Δ\\| to torchreid {a['max_abs']:.1e}; CMC and mAP "
                         f"{'identical' if a['identical_cmc_map'] else 'DIFFER'}")
            elif e["name"] == "ours (features)" and p.get("features_vs_distances_max_abs") is not None:
                agree = f"max \\|Δ\\| to ours (distances) {p['features_vs_distances_max_abs']:.1e}"
            else:
                agree = "-"
            body.append([
                f"{_problem(p)}, {p['dim']}-d", e["name"] + (f" ({e['note']})" if e.get("note") else ""),
                _f(e["seconds"], 2), _mib(e.get("peak_bytes"), 0),
                "-" if ref is None or e is ref else f"{ref['seconds'] / e['seconds']:,.1f}×",
                _f(100 * e["R1"], 2), _f(100 * e["mAP"], 2), agree,
            ])
    table = _table(head, body, ["---", "---", "---:", "---:", "---:", "---:", "---:", "---"])
    s = data.get("settings", {})
    params = s.get("params", {})
    note = (f"k1={params.get('k1')}, k2={params.get('k2')}, lambda={params.get('lambda_value')}; feature noise "
            f"{s.get('noise')}; ours on {s.get('device', 'cpu')}. Peak memory: RSS growth during the call, inputs "
            "excluded, output included.")
    return table + "\n\n" + note + "\n\n" + micro_source(path, data)


@renderer("bench_dsap", required=("file",))
def render_bench_dsap(args, root):
    """DSAP warping: images/s and per core of each backend and reduction, and the naive per-pixel loop."""
    path, data = _micro(args, root, "bench_dsap")
    s = data["settings"]
    backends = {"kernel": "fused Numba kernel (`backend='kernel'`)", "torch": "pure torch (`backend='torch'`)"}
    body = [[backends.get(r["backend"], r["backend"]), f"`{r['reduce']}`", _f(r["images_per_s"], 0),
             _f(r["images_per_s_per_core"], 0)] for r in data["rates"]]
    body.append(["naive per-pixel Python loop", "`last`", _f(data["naive_images_per_s"], 1),
                 _f(data["naive_images_per_s"], 1)])
    head = [f"warp_dsap, batch {s['batch']} of {s['height']}×{s['width']}, S = {s['size']}", "reduce", "images/s",
            "images/s per core"]
    agree = ("all paths agree with the naive loop (`reduce='last'`)" if data.get("agree_with_naive")
             else "the paths DISAGREE with the naive loop")
    return (_table(head, body, ["---", "---", "---:", "---:"]) + f"\n\n{_plural(s['threads'], 'thread')}; "
            f"the kernel is serial (its rate is per core); {agree}.\n\n" + micro_source(path, data))


@renderer("bench_dsa_cost", required=("file",), optional=("tables",))
def render_bench_dsa_cost(args, root):
    """DSA-reID's cost: ``cost`` params / GMAC, ``steps`` step times, ``streams`` FLOP/s (``tables=``; all)."""
    path, data = _micro(args, root, "bench_dsa_cost")
    parts = []
    for name in _tables(args, ("cost", "steps", "streams")):
        if name == "cost" and data.get("cost"):
            c = data["cost"]
            body = [[r["name"], _f(r["params"] / 1e6, 2), "-" if r["flops"] is None else _f(r["flops"] / 2e9, 2)]
                    for r in c["rows"]]
            parts.append(_table([f"graph ({c['height']}×{c['width']}, batch 1)", "params (M)", "GMAC"], body)
                         + f"\n\nMF-Stream / ResNet-50 last stride 1: {c['mf_over_resnet50_ls1']:.2f}× GMAC.")
        elif name == "steps":
            s = data["steps"]
            body = [["`dsa_reid_r18`", _f(s["dsa_reid_r18_ms"], 1), f"{s['dsa_reid_r18_ms'] / s['resnet18_ms']:.2f}×"],
                    ["torchreid `resnet18` (softmax + triplet)", _f(s["resnet18_ms"], 1), "1.00×"]]
            parts.append(_table([f"training step, batch {s['batch']} at {s['height']}×{s['width']}, "
                                 f"{_plural(s['threads'], 'thread')}", f"median of {s['steps']} (ms)",
                                 "/ resnet18"], body))
        elif name == "streams":
            st = data["streams"]
            body = [[r["name"], _f(r["gflop"], 2), _f(r["ms"], 1), _f(r["gflops_per_s"], 1)] for r in st["rows"]]
            parts.append(_table(["stream, forward + backward", "GFLOP", "ms", "GFLOP/s"], body)
                         + f"\n\nDSAG-Stream / MF-Stream achieved FLOP/s: {st['dsag_over_mf']:.2f}.")
    return "\n\n".join(parts + [micro_source(path, data)])


@renderer("bench_san_cost", required=("file",), optional=("tables",))
def render_bench_san_cost(args, root):
    """SAN's cost: ``tables=cost`` params / GMAC per backbone, ``steps`` training step times (default: both)."""
    path, data = _micro(args, root, "bench_san_cost")
    parts = []
    for name in _tables(args, ("cost", "steps")):
        if name == "cost":
            head = ["backbone", "SA-Enc params (M)", "= torchreid's without classifier", "SA-Dec params (M)",
                    "SA-Dec / SA-Enc", "SA-Enc GMAC", "torchreid last stride 1 GMAC", "torchreid stock GMAC",
                    "SA-Dec GMAC (training only)"]
            body = [[f"`{b}`", _f(r["sa_enc_params"] / 1e6, 2), "yes" if r["inference_params_equal"] else "NO",
                     _f(r["sa_dec_params"] / 1e6, 2), f"{r['sa_dec_ratio']:.3f}×", _f(r["sa_enc_gmac_256x128"], 2),
                     _f(r["torchreid_last_stride1_gmac"], 2), _f(r["torchreid_stock_gmac"], 2),
                     _f(r["sa_dec_gmac_texture_240x160"], 2)] for b, r in data["cost"].items()]
            parts.append(_table(head, body, ["---", "---:", "---", "---:", "---:", "---:", "---:", "---:", "---:"])
                         + "\n\nGMAC per 256×128 image (SA-Dec: from the 16×8 fe4 map to the 240×160 texture).")
        elif name == "steps" and data.get("step_time"):
            st = {k: v for k, v in data["step_time"].items() if k != "setting"}
            s = data["step_time"].get("setting", {})
            base = st.get("baseline_resnet18", {}).get("min_s")
            body = [[f"`{k}`", _f(v["min_s"], 3), _f(v["median_s"], 3),
                     "-" if not base else f"{v['min_s'] / base:.2f}×"] for k, v in st.items()]
            head = [f"training step, batch {s.get('batch')} at {s.get('input')}, texture {s.get('texture')}, "
                    f"{_plural(s.get('threads', 0), 'thread')}", f"min of {s.get('steps')} (s)", "median (s)",
                    "min / stock resnet18"]
            parts.append(_table(head, body))
    return "\n\n".join(parts + [micro_source(path, data)])


@renderer("bench_file_check", required=("file",))
def render_bench_file_check(args, root):
    """The file check on a Market-1501-size tree: cold and warm times."""
    path, data = _micro(args, root, "bench_file_check")
    t = data["tree"]
    body = [[c["label"], f"{c['files']:,}", f"{c['decoded']:,}", str(c["bad"]), _f(c["seconds"], 2)]
            for c in data["checks"]]
    head = [f"file check, {t['images']:,} images + IUV maps, {_plural(data['settings']['workers'], 'worker')}",
            "files", "decoded", "bad", "time (s)"]
    return _table(head, body) + "\n\n" + micro_source(path, data)


@renderer("bench_synth", required=("file",))
def render_bench_synth(args, root):
    """SynthReID throughput per stage: images/s per core (CPU time) and wall."""
    path, data = _micro(args, root, "bench_synth")
    s = data["settings"]
    body = [[r["label"], _f(r["per_core"], 0), _f(r["wall"], 0)] for r in data["stages"]]
    head = [f"SynthReID, {s['height']}×{s['width']}, {s['images']} images", "images/s per core (CPU time)",
            "images/s (wall)"]
    return _table(head, body) + "\n\n" + micro_source(path, data)


# ---------------------------------------------------------------------------------------------------------------
# pages

def parse_marker(spec, where):
    """``(name, {key: value})`` of a marker's text after ``render:``."""
    try:
        words = shlex.split(spec)
    except ValueError as err:
        raise RenderError(f"{where}: cannot parse the marker ({err}); write <!-- render: NAME key=value ... -->") \
            from err
    if not words:
        raise RenderError(f"{where}: marker without a renderer name; write <!-- render: NAME key=value ... --> "
                          f"(names: {', '.join(RENDERERS)})")
    name, args = words[0], {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise RenderError(f"{where}: {name}: argument {word!r} is not key=value")
        args[key] = value
    return name, args


def render_block(name, args, root, where):
    """The markdown of one marker (key checks, then the renderer); errors name the page and line."""
    fn = RENDERERS.get(name)
    if fn is None:
        raise RenderError(f"{where}: unknown renderer {name!r} (known: {', '.join(RENDERERS)}); fix the marker's name")
    unknown = [k for k in args if k not in fn.required + fn.optional]
    missing = [k for k in fn.required if k not in args]
    if unknown or missing:
        what = "; ".join([f"unknown key {', '.join(unknown)}"] * bool(unknown)
                         + [f"missing key {', '.join(missing)}"] * bool(missing))
        raise RenderError(f"{where}: {name}: {what} (its keys: {_keys(fn)}); fix the marker")
    try:
        return fn(args, root)
    except RenderError as err:
        raise RenderError(f"{where}: {name}: {err}") from None
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as err:
        raise RenderError(f"{where}: {name}: the result file lacks or mangles a field ({type(err).__name__}: "
                          f"{err}); regenerate it with the command of its source line") from err


def render_page(text, page, root=REPO):
    """``(new text, [(line, name), ...] of the blocks that changed)`` of one page's text."""
    lines = text.split("\n")
    out, stale, i, fence = [], [], 0, None
    while i < len(lines):
        line = lines[i]
        out.append(line)
        fenced = FENCE.match(line)
        if fenced:
            fence = None if fence == fenced.group(1) else (fence or fenced.group(1))
        if fence:
            i += 1
            continue
        where = f"{page}:{i + 1}"
        if CLOSE.match(line):
            raise RenderError(f"{where}: <!-- /render --> without an opening <!-- render: NAME ... --> above it; "
                              "remove it or add the opening marker")
        match = OPEN.match(line)
        if not match:
            i += 1
            continue
        name, args = parse_marker(match.group("spec"), where)
        end = i + 1
        while end < len(lines) and not CLOSE.match(lines[end]):
            if OPEN.match(lines[end]):
                raise RenderError(f"{where}: {name}: not closed before the next marker at line {end + 1}; add "
                                  "<!-- /render --> after its generated block")
            end += 1
        if end == len(lines):
            raise RenderError(f"{where}: {name}: not closed; add a line <!-- /render --> after its generated block")
        indent = match.group("indent")
        body = render_block(name, args, root, where)
        block = [""] + [indent + b if b else "" for b in body.split("\n")] + [""]
        if lines[i + 1:end] != block:
            stale.append((i + 1, name))
        out.extend(block)
        out.append(lines[end])
        i = end + 1
    return "\n".join(out), stale


def default_pages(root=REPO):
    return [p for p in [osp.join(root, "README.md"), *sorted(glob.glob(osp.join(root, "docs", "*.md")))]
            if osp.isfile(p)]


def main(argv=None, root=REPO):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a block is stale")
    parser.add_argument("--pages", nargs="+", metavar="FILE", help="only these pages (default: README.md, docs/*.md)")
    parser.add_argument("--list", action="store_true", help="list the renderers and their keys")
    args = parser.parse_args(argv)
    if args.list:
        for name, fn in RENDERERS.items():
            print(f"{name} {_keys(fn)}: {(fn.__doc__ or '').strip().splitlines()[0]}")
        return 0
    pages = [_path(p, root) for p in args.pages] if args.pages else default_pages(root)
    rendered, errors = [], []
    for page in pages:  # every page first: an error anywhere leaves every page as it is
        rel = osp.relpath(page, root).replace(os.sep, "/")
        try:
            with open(page, encoding="utf-8") as f:
                text = f.read()
            rendered.append((page, rel, *render_page(text, rel, root)))
        except (OSError, RenderError) as err:
            errors.append(str(err))
    stale_count = 0
    for page, rel, new, stale in rendered:
        if errors and not args.check:
            break
        for line, name in stale:
            print(f"{rel}:{line}: {name} " + (f"differs from its rendering ({HINT})" if args.check else "rewritten"))
        stale_count += len(stale)
        if stale and not args.check:
            from torchreid_dense.utils.io import atomic_write

            with atomic_write(page, "w") as f:
                f.write(new)
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    if errors:
        print("nothing written: fix the errors above first" if not args.check else
              "a page with an error was checked up to it only", file=sys.stderr)
        return 2
    return 1 if args.check and stale_count else 0


if __name__ == "__main__":
    sys.exit(main())
