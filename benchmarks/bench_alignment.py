"""The alignment evidence on SynthReID small: what DSAG guidance and texture supervision add (issue 11).

Runs ``configs/suites/alignment.yaml`` with :func:`torchreid_dense.benchmark.alignment.run_alignment` (SAN-PG,
the SAN rows' pseudo textures, seed 0 of every row, then the other seeds of the rows that list several),
resumably, and prints the table, the paired deltas (mean ± std over seeds) and SAN-PG's held-out texture L1.

    python benchmarks/bench_alignment.py --output log/benchmark/alignment [--data-root reid-data] \\
        [--profile evidence|quick] [--only mf_alone dsa_reid ...] [--seeds 0] [--opts synth.misalignment 2.0]

``--opts`` go to every job and texture tool: another SynthReID seed (``synth.seed``), misalignment level
(``synth.misalignment``), input size or schedule.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from torchreid_dense.benchmark.alignment import ALIGNMENT_SUITE, run_alignment, san_pg_l1  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="log/benchmark/alignment")
    parser.add_argument("--data-root", default="reid-data", help="data.root (SynthReID is generated there)")
    parser.add_argument("--profile", default="evidence", help="a profile of the suite (evidence, quick)")
    parser.add_argument("--suite", default=ALIGNMENT_SUITE, help="the suite file")
    parser.add_argument("--only", nargs="+", default=None, help="run only these rows (and what they need)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="only these training seeds")
    parser.add_argument("--train-threads", type=int, default=None, metavar="N",
                        help="torch threads of every job (default: the profile's, 1 for evidence; another count gives "
                             "other last digits than the published rows)")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides for every job and texture tool, e.g. synth.seed 7")
    args = parser.parse_args(argv)
    results = run_alignment(args.output, args.data_root, profile=args.profile, suite_path=args.suite,
                            only=args.only, seeds=args.seeds, opts=args.opts, train_threads=args.train_threads)
    print("\n" + open(results, encoding="utf-8").read())
    l1 = san_pg_l1(osp.join(osp.abspath(args.output), "san_pg_r18", "seed0"))
    if l1:
        print(f"SAN-PG: held-out PIT texture L1 {l1[0]} (normalised), {l1[1]} (pixels in [0, 1])")


if __name__ == "__main__":
    main()
