"""``make demo``: the ``synth`` benchmark suite on the CPU, at a size that finishes in under 20 minutes.

Usage::

    python tools/demo.py                 # generate SynthReID small if needed, run the quick profile
    python tools/demo.py --full          # the whole suite (3 seeds, full schedule; hours on a CPU)
    python tools/demo.py --root /data --output log/my-demo

Rerunning resumes: finished jobs are kept (``<output>/<run>/seed<k>/result.json``). Prints the
table at the end and where ``results.md`` / ``results.png`` are.
"""
import argparse
import os
import sys
import time

from torchreid_dense.benchmark.cli import benchmark
from torchreid_dense.benchmark.suite import SuiteError, load_suite
from torchreid_dense.data.synth.generate import ensure_dataset

SUITE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "suites", "synth.yaml")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--root", default="reid-data", help="data root (SynthReID goes to <root>/synthreid/)")
    parser.add_argument("--output", default="", help="output directory (default: log/demo, log/demo-full)")
    parser.add_argument("--full", action="store_true", help="the full suite instead of the quick profile")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the latency measurement")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    print(f"== SynthReID small under {os.path.abspath(args.root)}/synthreid/ (generated on first use)")
    data_dir = ensure_dataset(args.root, "small", 0, workers=os.cpu_count() or 1)
    try:
        suite = load_suite(SUITE, profile=None if args.full else "quick")
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    output = args.output or os.path.join("log", "demo-full" if args.full else "demo")
    print(f"== suite '{suite.name}'{'' if args.full else ' (profile quick)'}: output {output}")
    # the data location of this demo for every job (the suite's own default is reid-data)
    opts = ["data.root", args.root, "san.pit_root", data_dir]
    summary = benchmark(suite, output, extra_opts=opts, threads=args.threads)
    minutes = (time.time() - start) / 60
    report = summary["report"]
    if report is not None:
        print("\n" + report["table"] + "\n")
        print(f"table:  {report['paths']['md']}  (also {report['paths']['csv']}, {report['paths']['json']})")
        print(f"chart:  {report['paths']['png']}")
        print(f"jobs:   {output}/<run>/seed<k>/ (log.txt, stdout.txt, result.json, checkpoints)")
    print(f"demo finished in {minutes:.1f} min")
    if summary["failed"] or summary["skipped"]:
        print(f"{len(summary['failed'])} job(s) failed, {len(summary['skipped'])} skipped (see above); "
              "rerun `make demo` to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
