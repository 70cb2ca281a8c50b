"""The regime study of a suite (issue 11, point 4): its alignment deltas at several levels of one knob, as a curve.

Each *level* is one suite output directory run with a value of a knob (e.g. ``synth.misalignment`` 0.5, 1.0,
2.0); each *point* is one more directory off that axis (twice the epochs, a larger input). Both are read with
:func:`.report.load_results` and compared with :func:`.report.paired_deltas`, seed by seed, so a level reads the
same way as the suite's own delta table.
"""
import json
import os
import os.path as osp

from ..utils.io import atomic_write
from .report import aggregate, load_results, paired_deltas

__all__ = ["regime_rows", "format_regime", "plot_regime", "write_regime", "REGIME_FILES"]

REGIME_FILES = {"md": "regime.md", "json": "regime.json", "png": "regime.png"}


def regime_rows(levels, points, deltas, seeds=None):
    """One row per level and per point: each delta's paired mAP / R1 summary and each delta row's mAP.

    Args:
        levels (list of (float, str)): ``(knob value, suite output directory)``, plotted as the curve; their rows
            come in increasing knob value, whatever the order given.
        points (list of (str, str)): ``(label, suite output directory)``, shown beside the curve.
        deltas: the suite's ``(name, plus, minus)`` deltas.
        seeds (list of int, optional): compare only these training seeds (default: every paired seed).

    Returns:
        list of dict: ``label``, ``x`` (the knob value, None for a point), ``output``, ``deltas``
        (:func:`.report.paired_deltas` rows) and ``map`` (run name -> mAP summary in percent, or None).
    """
    rows = []
    for x, label, output in [(x, f"{x:g}", out) for x, out in sorted(levels, key=lambda lv: lv[0])] + [(None, lab, out) for lab, out in points]:
        results = [r for r in load_results(output) if seeds is None or r.get("seed") in seeds]
        maps = {row["run"]: row["mAP"] for row in aggregate(results)}
        rows.append({"label": label, "x": x, "output": output, "deltas": paired_deltas(results, deltas),
                     "map": maps})
    return rows


def _delta_cell(summary):
    if summary is None:
        return "-"
    return f"{summary['mean']:+.1f}" + (f" ± {summary['std']:.1f}" if summary["n"] > 1 else "")


def _map_cell(summary):
    if summary is None:
        return "-"
    return f"{summary['mean']:.1f}" + (f" ± {summary['std']:.1f}" if summary["n"] > 1 else "")


def format_regime(rows, deltas, knob="level", extra=None):
    """Markdown table: per row, each delta (mAP pp, then R1 pp) with the two rows' mAP it is made of.

    ``extra``: an optional last, left-aligned column ``(header, one cell per row)``, e.g. each row's CPU.
    """
    head = [knob]
    for name, plus, minus in deltas:
        head += [f"{name}: mAP (pp)", f"{name}: R1 (pp)", f"{plus} mAP", f"{minus} mAP", f"{name}: seeds"]
    align = "|---|" + "---:|" * (len(head) - 1)
    if extra is not None:
        if len(extra[1]) != len(rows):
            raise ValueError(f"extra column {extra[0]!r}: {len(extra[1])} cells for {len(rows)} rows")
        head, align = head + [extra[0]], align + "---|"
    lines = ["| " + " | ".join(head) + " |", align]
    for k, row in enumerate(rows):
        cells = [row["label"]]
        for delta, (_, plus, minus) in zip(row["deltas"], deltas):
            cells += [_delta_cell(delta["mAP"]), _delta_cell(delta["rank1"]), _map_cell(row["map"].get(plus)),
                      _map_cell(row["map"].get(minus)), ", ".join(map(str, delta["seeds"])) or "-"]
        if extra is not None:
            cells.append(extra[1][k])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_regime(rows, deltas, path, knob="level", goal=None, title=""):
    """The deltas' mAP against the knob (one line per delta, ± std bars), the off-axis points as bars beside."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve = sorted((r for r in rows if r["x"] is not None), key=lambda r: r["x"])
    extra = [r for r in rows if r["x"] is None]
    fig = Figure(figsize=(9.0 if extra else 5.5, 4.0))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 2 if extra else 1, 1)]
    if extra:
        axes.append(fig.add_subplot(1, 2, 2, sharey=axes[0]))
    for k, (name, _, _) in enumerate(deltas):
        pts = [(r["x"], r["deltas"][k]["mAP"]) for r in curve if r["deltas"][k]["mAP"] is not None]
        if pts:
            axes[0].errorbar([x for x, _ in pts], [s["mean"] for _, s in pts], yerr=[s["std"] for _, s in pts],
                             marker="o", capsize=3, label=name)
            for x, s in pts:
                axes[0].annotate(f"{s['mean']:+.1f}", (x, s["mean"]), fontsize=7, xytext=(4, 4),
                                 textcoords="offset points")
    axes[0].margins(x=0.12)  # room for the value labels at the ends of the curve
    axes[0].set_xlabel(knob)
    axes[0].set_ylabel("delta mAP (pp)")
    if extra:
        width = 0.8 / max(1, len(deltas))
        for k, (name, _, _) in enumerate(deltas):
            xs, ys = [], []
            for i, r in enumerate(extra):
                s = r["deltas"][k]["mAP"]
                if s is not None:
                    xs.append(i + (k - (len(deltas) - 1) / 2) * width)
                    ys.append(s["mean"])
            if not xs:
                continue
            bars = axes[1].bar(xs, ys, width, label=name, color=f"C{k}")
            for bar, y in zip(bars, ys):
                axes[1].annotate(f"{y:+.1f}", (bar.get_x() + bar.get_width() / 2, y), ha="center", fontsize=7,
                                 va="bottom" if y >= 0 else "top", xytext=(0, 2 if y >= 0 else -2),
                                 textcoords="offset points")
        axes[1].set_xticks(range(len(extra)))
        axes[1].set_xticklabels([r["label"] for r in extra], fontsize=8, rotation=10)
    for ax in axes:
        ax.axhline(0.0, color="black", linewidth=0.8)
        if goal is not None:
            ax.axhline(goal, color="grey", linestyle="--", linewidth=0.8, label=f"goal {goal:+g}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title or "alignment deltas (mAP, pp)", fontsize=10)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)


def write_regime(output, levels, points, deltas, knob="level", seeds=None, goal=None, title=""):
    """Write ``regime.md``, ``regime.json`` and ``regime.png`` into ``output``; returns the rows and table."""
    os.makedirs(output, exist_ok=True)
    rows = regime_rows(levels, points, deltas, seeds=seeds)
    table = format_regime(rows, deltas, knob=knob)
    paths = {kind: osp.join(output, name) for kind, name in REGIME_FILES.items()}
    seeds_note = f"training seeds {', '.join(map(str, seeds))}" if seeds else "every paired training seed"
    with atomic_write(paths["md"], "w") as f:
        f.write(f"# {title or 'Regime study'}\n\n{table}\n\n- Deltas: plus - minus seed by seed ({seeds_note}), "
                "then mean ± sample std (one seed: the value); mAP columns: each row's own mean.\n"
                + "".join(f"- {r['label']}: {r['output']}\n" for r in rows))
    with atomic_write(paths["json"], "w") as f:
        json.dump({"title": title, "knob": knob, "seeds": seeds, "goal": goal, "rows": rows}, f, indent=1)
        f.write("\n")
    plot_regime(rows, deltas, paths["png"], knob=knob, goal=goal, title=title)
    return {"rows": rows, "table": table, "paths": paths}
