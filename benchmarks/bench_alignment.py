"""The alignment evidence on SynthReID small: what DSAG guidance and texture supervision add (issue 11).

Runs the suite ``configs/suites/alignment.yaml`` in the order it needs, resumably (finished jobs and written
textures are kept; rerun the same command after an interruption):

1. SAN-PG (SAN step 1) on the PIT pairs (``tools/benchmark.py --only san_pg_r18``);
2. the SAN rows' pseudo textures, written apart from the data set under ``<output>/textures/``:
   ``sanpg`` (SAN-PG predictions, ``tools/generate_textures.py --method sanpg``) and ``fused`` (each training
   identity's views fused through its estimated IUV maps, ``--method fuse``);
3. seed 0 of every row, then the remaining seeds of the delta rows;
4. prints the table, the paired deltas (mean ± std over seeds) and SAN-PG's held-out texture L1.

    python benchmarks/bench_alignment.py --output log/benchmark/alignment [--data-root reid-data] \\
        [--profile evidence|quick] [--opts synth.seed 7 synth.misalignment 2.0 ...]

``--opts`` go to every job and to the texture tools (e.g. another SynthReID seed or misalignment level).
"""
import argparse
import os.path as osp
import re
import subprocess
import sys

HERE = osp.dirname(osp.dirname(osp.abspath(__file__)))
SUITE = osp.join(HERE, "configs", "suites", "alignment.yaml")
PG_L1 = re.compile(r"held-out texture L1: ([0-9.]+) \(normalised\), ([0-9.]+) \(pixels in \[0,1\]\)")


def run(cmd):
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=HERE)


def last_match(pattern, path):
    if not osp.exists(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        found = pattern.findall(f.read())
    return found[-1] if found else None


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="log/benchmark/alignment")
    parser.add_argument("--data-root", default="reid-data", help="data.root (SynthReID is generated there)")
    parser.add_argument("--profile", default="evidence", help="a profile of the suite (evidence, quick)")
    parser.add_argument("--suite", default=SUITE, help="the suite file (default: configs/suites/alignment.yaml)")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides for every job and texture tool, e.g. synth.seed 7")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    sys.path.insert(0, HERE)
    from torchreid_dense.benchmark.runner import last_checkpoint
    from torchreid_dense.benchmark.suite import load_suite

    suite = load_suite(args.suite, profile=args.profile)
    pg_run = suite.run("san_pg_r18")
    output, root = osp.abspath(args.output), osp.abspath(args.data_root)
    common = ["--suite", args.suite, "--profile", args.profile, "--output", output, "--no-latency"]
    opts = ["--opts", "data.root", root, *args.opts]
    py = sys.executable
    # 1. SAN-PG
    run([py, "tools/benchmark.py", *common, "--only", "san_pg_r18", *opts])
    # 2. pseudo textures (SAN-PG) and IUV-fused textures, at the suite's model sizes
    job = osp.join(output, "san_pg_r18", f"seed{pg_run.seeds[0]}")
    weights = last_checkpoint(job)
    if not weights:
        raise SystemExit(f"no SAN-PG checkpoint under {job}/model: did step 1 finish? (see {job}/log.txt)")
    san_run = suite.run("san")
    shared = [k for key in ("data.height", "data.width") for k in _opt(pg_run.opts, key)] + ["data.root", root,
                                                                                           *args.opts]
    run([py, "tools/generate_textures.py", "--method", "sanpg", "--config-file", pg_run.config, "--weights", weights,
         "--dataset", "synthreid", "--output-dir", osp.join(output, "textures", "sanpg"), "--no-progress", *shared])
    run([py, "tools/generate_textures.py", "--method", "fuse", "--config-file", san_run.config,
         "--dataset", "synthreid", "--output-dir", osp.join(output, "textures", "fused"), "--no-progress", *shared])
    # 3. seed 0 of every row first (a table exists early), then every remaining seed
    run([py, "tools/benchmark.py", *common, "--seeds", "0", *opts])
    run([py, "tools/benchmark.py", *common, *opts])
    # 4. the report
    print("\n" + open(osp.join(output, "results.md"), encoding="utf-8").read())
    l1 = last_match(PG_L1, osp.join(job, "log.txt"))
    if l1:
        print(f"SAN-PG: held-out PIT texture L1 {l1[0]} (normalised), {l1[1]} (pixels in [0, 1])")


def _opt(opts, key):
    """``[key, value]`` of the last ``key`` in a flat KEY VALUE list, or []."""
    pairs = dict(zip(opts[0::2], opts[1::2]))
    return [key, str(pairs[key])] if key in pairs else []


if __name__ == "__main__":
    main()
