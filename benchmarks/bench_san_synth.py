"""SAN's CPU evidence on SynthReID small (SAN, AAAI 2020, Sec. 3.2 "Training Scheme": the two steps).

Runs the suite ``configs/suites/san_synth.yaml`` in the order SAN needs:

1. SAN-PG (step 1) on the PIT pairs, one model per seed (``tools/benchmark.py --only san_pg_r18``);
2. each seed's SAN-PG predicts a pseudo full texture for every SynthReID image
   (``tools/generate_textures.py --output-dir <san_pg job>/pseudo``: the data set's ground-truth
   ``textures/`` stay untouched, the SAN run reads the pseudo ones through ``dense.sidecar_root``);
3. the table: torchreid's resnet18, SAN on pseudo textures, SAN on ground-truth textures, the SA-Enc alone.

Then prints the table (mean +- std over seeds), SAN-PG's held-out texture L1 and the training step
times. Resumable like every benchmark suite (finished jobs and written textures are kept).

    python benchmarks/bench_san_synth.py --output log/benchmark/san_synth [--data-root reid-data] \
        [--profile evidence|quick] [--seeds 0 1 2] [--opts KEY VALUE ...]
"""
import argparse
import os.path as osp
import re
import subprocess
import sys

HERE = osp.dirname(osp.dirname(osp.abspath(__file__)))
SUITE = osp.join(HERE, "configs", "suites", "san_synth.yaml")
STEP_TIME = re.compile(r"\ttime [0-9.]+ \(([0-9.]+)\)")
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="log/benchmark/san_synth")
    parser.add_argument("--data-root", default="reid-data", help="data.root (SynthReID small is generated there)")
    parser.add_argument("--profile", default="evidence", help="a profile of the suite (evidence, quick)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides for every job, e.g. data.transforms \"['random_flip', 'random_erase']\"")
    args = parser.parse_args()

    sys.path.insert(0, HERE)
    from torchreid_dense.benchmark.runner import last_checkpoint
    from torchreid_dense.benchmark.suite import load_suite

    suite = load_suite(SUITE, profile=args.profile)
    pg_run = suite.run("san_pg_r18")
    seeds = args.seeds or list(pg_run.seeds)
    output = osp.abspath(args.output)
    root = osp.abspath(args.data_root)
    common = ["--suite", SUITE, "--profile", args.profile, "--output", output, "--no-latency"]
    if args.seeds:
        common += ["--seeds", *map(str, args.seeds)]
    opts = ["--opts", "data.root", root, "san.pit_root", osp.join(root, "synthreid", "small_s0"), *args.opts]
    py = sys.executable

    run([py, "tools/benchmark.py", *common, "--only", "san_pg_r18", *opts])
    pg_opts = dict(zip(pg_run.opts[0::2], pg_run.opts[1::2]))
    size = [k for key in ("data.height", "data.width") if key in pg_opts for k in (key, str(pg_opts[key]))]
    for seed in seeds:
        job = osp.join(output, "san_pg_r18", f"seed{seed}")
        weights = last_checkpoint(job)
        if not weights:
            raise SystemExit(f"no SAN-PG checkpoint under {job}/model: did step 1 finish? (see {job}/log.txt)")
        run([py, "tools/generate_textures.py", "--config-file", pg_run.config, "--weights", weights,
             "--dataset", "synthreid", "--root", root, "--output-dir", osp.join(job, "pseudo"), "--no-progress",
             *size])
    run([py, "tools/benchmark.py", *common, "--only", "resnet18", "san_r18", "san_r18_gt", "san_enc_r18", *opts])

    print("\n" + open(osp.join(output, "results.md"), encoding="utf-8").read())
    for seed in seeds:
        l1 = last_match(PG_L1, osp.join(output, "san_pg_r18", f"seed{seed}", "log.txt"))
        if l1:
            print(f"SAN-PG seed {seed}: held-out PIT texture L1 {l1[0]} (normalised), {l1[1]} (pixels in [0, 1])")
    print("\nmean training step time (s, last epoch's running average, first seed):")
    base = None
    for name in ("resnet18", "san_pg_r18", "san_r18", "san_r18_gt", "san_enc_r18"):
        t = last_match(STEP_TIME, osp.join(output, name, f"seed{seeds[0]}", "log.txt"))
        if t is None:
            continue
        base = float(t) if name == "resnet18" else base
        ratio = f"  ({float(t) / base:.2f}x resnet18)" if base and name != "resnet18" else ""
        print(f"  {name:12s} {float(t):.3f}{ratio}")


if __name__ == "__main__":
    main()
