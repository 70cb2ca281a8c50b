"""The alignment regime study (issue 11, point 4): the suite's deltas against SynthReID's misalignment level.

Reads finished suite outputs (``benchmarks/bench_alignment.py`` run with ``--opts synth.misalignment <m>``, and the
off-axis points, e.g. twice the epochs or 128x64 input) and writes ``regime.md``, ``regime.json`` and
``regime.png`` (the curve) into ``--output``; prints the table.

    python benchmarks/bench_regime.py --output log/benchmark/regime --seeds 0 \\
        --deltas "DSAG guidance" "texture supervision" \\
        --level 0.5=log/benchmark/alignment_m0.5 --level 1=log/benchmark/alignment \\
        --level 2=log/benchmark/alignment_m2 \\
        --point "24 epochs=log/benchmark/alignment_24ep" --point "128x64, DSAP 32=log/benchmark/alignment_128x64"
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from torchreid_dense.benchmark.alignment import ALIGNMENT_SUITE  # noqa: E402
from torchreid_dense.benchmark.regime import write_regime  # noqa: E402
from torchreid_dense.benchmark.suite import load_suite  # noqa: E402


def _pair(text, what):
    key, sep, path = text.partition("=")
    if not sep or not key or not path:
        raise argparse.ArgumentTypeError(f"{what} {text!r}: expected LABEL=DIRECTORY")
    return key, path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="log/benchmark/regime")
    parser.add_argument("--suite", default=ALIGNMENT_SUITE, help="the suite whose deltas are compared")
    parser.add_argument("--knob", default="synth.misalignment", help="what the levels are values of")
    parser.add_argument("--level", action="append", default=[], type=lambda t: _pair(t, "--level"),
                        metavar="VALUE=DIR", help="a suite output run at this value of the knob (repeat)")
    parser.add_argument("--point", action="append", default=[], type=lambda t: _pair(t, "--point"),
                        metavar="LABEL=DIR", help="a suite output off the knob's axis (repeat)")
    parser.add_argument("--deltas", nargs="+", default=None, metavar="NAME",
                        help="compare only these of the suite's deltas (default: all of them)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="compare only these training seeds")
    parser.add_argument("--goal", type=float, default=3.0, help="the target delta, drawn on the chart (pp)")
    args = parser.parse_args(argv)
    levels = []
    for value, path in args.level:
        try:
            levels.append((float(value), path))
        except ValueError:
            parser.error(f"--level {value}={path}: the value must be a number")
    for _, path in levels + args.point:
        if not osp.isdir(path):
            parser.error(f"{path}: no such suite output directory (run benchmarks/bench_alignment.py first)")
    suite = load_suite(args.suite)
    deltas = list(suite.deltas)
    if args.deltas:
        known = [d[0] for d in deltas]
        unknown = [n for n in args.deltas if n not in known]
        if unknown:
            parser.error(f"--deltas {', '.join(map(repr, unknown))}: not a delta of {args.suite} "
                         f"(its deltas: {'; '.join(known)})")
        deltas = [d for d in deltas if d[0] in args.deltas]
    out = write_regime(args.output, levels, args.point, deltas, knob=args.knob, seeds=args.seeds,
                       goal=args.goal, title=f"{suite.name}: deltas against {args.knob}")
    print(out["table"])
    print(f"\n=> {out['paths']['md']}, {out['paths']['png']}")


if __name__ == "__main__":
    main()
