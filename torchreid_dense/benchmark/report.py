"""Benchmark report: seeds aggregated per model into ``results.md``, ``.csv``, ``.json`` and ``.png``.

Metrics are shown in percent as ``mean ± std`` over seeds (sample standard deviation, ``ddof=1``;
only the mean for a single seed); min and max are kept in the CSV and JSON files. A metric the
launcher did not return shows as ``-``.
"""
import csv
import glob
import json
import math
import os
import os.path as osp

from ..utils.io import atomic_write
from .attempts import train_time_complete
from .runner import RESULT_FILE

__all__ = [
    "METRICS",
    "TABLE_METRICS",
    "summarize",
    "aggregate",
    "load_results",
    "format_table",
    "plot_results",
    "write_report",
    "paired_deltas",
    "format_deltas",
    "TABLE_COLUMNS",
    "REPORT_FILES",
]

METRICS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")  # keys of the launcher's result
TABLE_METRICS = (("rank1", "R1"), ("rank5", "R5"), ("rank10", "R10"), ("mAP", "mAP"), ("mINP", "mINP"))
REPORT_FILES = {"md": "results.md", "csv": "results.csv", "json": "results.json", "png": "results.png"}
_STATS = ("mean", "std", "min", "max")


def summarize(values):
    """``{'n', 'mean', 'std', 'min', 'max'}`` of a list of numbers (std: sample, ddof=1; 0 for one value).

    Returns None for an empty list.
    """
    values = [float(v) for v in values]
    if not values:
        return None
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return {"n": n, "mean": mean, "std": math.sqrt(var), "min": min(values), "max": max(values)}


def load_results(output):
    """Every ``<output>/<run>/seed<k>/result.json`` (sorted by path)."""
    results = []
    for path in sorted(glob.glob(osp.join(output, "*", "*", RESULT_FILE))):
        with open(path, encoding="utf-8") as f:
            results.append(json.load(f))
    return results


def _target_metrics(result):
    metrics = result.get("metrics") or {}
    target = result.get("target") or next(iter(metrics), "")
    return target, metrics.get(target, {})


def aggregate(results, order=None):
    """One row per reported run: cost, metrics (percent) and training time summarised over seeds.

    Args:
        results (list of dict): result.json contents (runs with ``report: false`` are left out).
        order (list of str, optional): run names in table order (default: first appearance).

    Returns:
        list of dict: ``run``, ``model``, ``target``, ``seeds``, ``params_m``, ``gflops``,
        ``gmacs``, ``input_size``, ``threads``, ``latency_ms_bs1`` / ``latency_ms_bs32``
        (summaries), one summary (or None) per name of :data:`METRICS`, ``train_time_min``.
    """
    groups = {}
    for result in results:
        if result.get("report", True):
            groups.setdefault(result["run"], []).append(result)
    names = [n for n in (order or []) if n in groups] + [n for n in groups if n not in (order or [])]
    rows = []
    for name in names:
        group = sorted(groups[name], key=lambda r: r.get("seed", 0))
        cost = group[0].get("cost") or {}
        target, _ = _target_metrics(group[0])
        row = {
            "run": name,
            "model": group[0].get("label") or name,
            "target": target,
            "seeds": [r.get("seed") for r in group],
            "params_m": cost.get("params_m"),
            "gflops": cost.get("gflops"),
            "gmacs": cost.get("gmacs"),
            "input_size": cost.get("input_size"),
            "threads": cost.get("threads"),
        }
        for bs in ("bs1", "bs32"):
            row[f"latency_ms_{bs}"] = summarize(
                [(r.get("cost") or {}).get("latency_ms", {}).get(bs) for r in group
                 if (r.get("cost") or {}).get("latency_ms", {}).get(bs) is not None])
        for metric in METRICS:
            row[metric] = summarize([100.0 * _target_metrics(r)[1][metric] for r in group
                                     if metric in _target_metrics(r)[1]])
        row["train_time_min"] = summarize([r["train_time_s"] / 60.0 for r in group if train_time_complete(r)])
        row["train_time_left_out"] = [r.get("seed") for r in group
                                      if "train_time_s" in r and not train_time_complete(r)]
        rows.append(row)
    return rows


def _pm(summary, digits=1):
    if summary is None:
        return "-"
    if summary["n"] == 1:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def _num(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


TABLE_COLUMNS = ("Model", "Params (M)", "GFLOPs", "CPU ms/img (bs 1)", "CPU ms/img (bs 32)",
                 *(f"{label} (%)" for _, label in TABLE_METRICS), "Train time (min)", "Seeds")


def format_table(rows):
    """The Markdown table of :func:`aggregate`'s rows (columns :data:`TABLE_COLUMNS`)."""
    rule = "|" + "|".join(["---"] + ["---:"] * (len(TABLE_COLUMNS) - 1)) + "|"
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", rule]
    for row in rows:
        cells = [
            row["model"], _num(row["params_m"], 2), _num(row["gflops"], 2),
            _pm(row["latency_ms_bs1"]), _pm(row["latency_ms_bs32"]),
            *(_pm(row[metric]) for metric, _ in TABLE_METRICS),
            _pm(row["train_time_min"]), str(len(row["seeds"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _notes(rows):
    sizes = sorted({f"{r['input_size'][0]}x{r['input_size'][1]}" for r in rows if r.get("input_size")})
    threads = sorted({str(r["threads"]) for r in rows if r.get("threads")})
    targets = sorted({r["target"] for r in rows if r.get("target")})
    return [
        f"Metrics on {', '.join(targets) or 'the evaluation target'} (query vs gallery), in percent: "
        "mean ± sample std over seeds (ddof=1; one seed: the value). '-': not reported by the engine.",
        "Params and GFLOPs: inference graph only (DSA-reID: MF-Stream; SAN: encoder; stock models without "
        f"their ID classifier), per image at {', '.join(sizes) or 'the config size'}; GFLOPs from "
        "torch.utils.flop_counter (2 FLOPs per multiply-accumulate).",
        f"CPU latency: median wall time per image of the inference graph, {', '.join(threads) or '?'} "
        "thread(s), batch 1 and batch 32 (per image).",
        "Train time: wall time of the whole tools/main.py job (training and the final evaluation).",
    ] + _left_out_note(rows)


def _left_out_note(rows):
    left_out = [f"{r['run']} seed {s}" for r in rows for s in r.get("train_time_left_out") or []]
    if not left_out:
        return []
    return ["Train time leaves out resumed jobs whose earlier attempts were not recorded (an older runner): "
            + ", ".join(left_out) + "."]


def _csv_rows(rows):
    header = ["model", "run", "target", "seeds", "params_m", "gflops", "gmacs", "latency_ms_bs1", "latency_ms_bs32"]
    header += [f"{m}_{s}" for m in (*METRICS, "train_time_min") for s in _STATS]
    out = [header]
    for row in rows:
        line = [row["model"], row["run"], row["target"], " ".join(str(s) for s in row["seeds"]),
                row["params_m"], row["gflops"], row["gmacs"],
                (row["latency_ms_bs1"] or {}).get("mean"), (row["latency_ms_bs32"] or {}).get("mean")]
        for metric in (*METRICS, "train_time_min"):
            line += [(row[metric] or {}).get(s) for s in _STATS]
        out.append(["" if v is None else v for v in line])
    return out


def plot_results(rows, path, title=""):
    """Bar chart of R1 and mAP per model with ± std error bars (matplotlib, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 1.4 * len(rows) + 2), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.38
    xs = list(range(len(rows)))
    for k, (metric, label) in enumerate((("rank1", "R1"), ("mAP", "mAP"))):
        means = [(r[metric] or {}).get("mean", 0.0) for r in rows]
        errs = [(r[metric] or {}).get("std", 0.0) for r in rows]
        bars = ax.bar([x + (k - 0.5) * width for x in xs], means, width, yerr=errs, capsize=3, label=label)
        for bar, mean, row in zip(bars, means, rows):
            if row[metric] is not None:
                ax.annotate(f"{mean:.1f}", (bar.get_x() + bar.get_width() / 2, mean), ha="center",
                            va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(xs)
    ax.set_xticklabels([r["model"] for r in rows], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(title or "R1 and mAP (mean ± std over seeds)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)


def paired_deltas(results, deltas, metrics=("mAP", "rank1")):
    """Per delta ``(name, plus, minus)``: ``plus - minus`` seed by seed (seeds both finished), summarised.

    Returns:
        list of dict: ``name``, ``plus``, ``minus``, ``seeds`` (paired), and per metric a :func:`summarize` of
        the paired differences in percentage points (None without a common seed).
    """
    by_run = {}
    for result in results:
        by_run.setdefault(result.get("run"), {})[result.get("seed")] = _target_metrics(result)[1]
    out = []
    for name, plus, minus in deltas:
        a, b = by_run.get(plus, {}), by_run.get(minus, {})
        seeds = sorted(s for s in a if s in b)
        row = {"name": name, "plus": plus, "minus": minus, "seeds": seeds}
        for metric in metrics:
            row[metric] = summarize([100.0 * (a[s][metric] - b[s][metric]) for s in seeds
                                     if metric in a[s] and metric in b[s]])
        out.append(row)
    return out


def format_deltas(rows, metrics=(("mAP", "mAP"), ("rank1", "R1"))):
    """Markdown table of :func:`paired_deltas` (mean ± sample std over the paired seeds, percentage points)."""
    lines = ["| Delta | plus - minus | " + " | ".join(f"{label} (pp)" for _, label in metrics) + " | Seeds |",
             "|---|---|" + "---:|" * len(metrics) + "---|"]
    for row in rows:
        cells = []
        for metric, _ in metrics:
            s = row[metric]
            cells.append("-" if s is None else f"{s['mean']:+.1f}" + (f" ± {s['std']:.1f}" if s["n"] > 1 else ""))
        lines.append(f"| {row['name']} | {row['plus']} - {row['minus']} | " + " | ".join(cells)
                     + f" | {', '.join(map(str, row['seeds'])) or '-'} |")
    return "\n".join(lines)


def write_report(output, results, order=None, title="", deltas=()):
    """Write ``results.md``, ``results.csv``, ``results.json`` and ``results.png`` into ``output``.

    Args:
        output (str): directory to write to.
        results (list of dict): result.json contents (see :func:`load_results`).
        order (list of str, optional): run names in table order.
        title (str): heading of the Markdown file and the chart.
        deltas: the suite's ``(name, plus, minus)`` deltas, tabulated under the main table.

    Returns:
        dict: ``rows`` (:func:`aggregate`), ``table`` (Markdown) and the written ``paths`` by kind.
    """
    os.makedirs(output, exist_ok=True)
    rows = aggregate(results, order)
    table = format_table(rows)
    delta_rows = paired_deltas(results, deltas) if deltas else []
    if delta_rows:
        table += "\n\nPaired deltas (per seed, then mean ± std over the paired seeds):\n\n" + format_deltas(delta_rows)
    notes = _notes(rows)
    paths = {kind: osp.join(output, name) for kind, name in REPORT_FILES.items()}
    with atomic_write(paths["md"], "w") as f:
        f.write(f"# {title or 'Benchmark'}\n\n{table}\n\n" + "".join(f"- {n}\n" for n in notes))
    with atomic_write(paths["csv"], "w") as f:
        csv.writer(f, lineterminator="\n").writerows(_csv_rows(rows))
    with atomic_write(paths["json"], "w") as f:
        json.dump({"title": title, "rows": rows, "deltas": delta_rows, "notes": notes, "results": results}, f, indent=1)
        f.write("\n")
    plot_results(rows, paths["png"], title)
    return {"rows": rows, "table": table, "paths": paths}
