"""``make demo``: the alignment suite's quick profile on the CPU (under 20 minutes), with its pictures.

Usage::

    python tools/demo.py                 # generate SynthReID small if needed, run the quick profile
    python tools/demo.py --root /data --output log/my-demo

Trains torchreid's resnet18, the MF-Stream alone, DSA-reID, the SA-Enc alone and SAN (SAN-PG first) on
SynthReID small at 64x32 for 3 epochs (SAN-PG 4), prints the table with the two alignment deltas, and writes the
pictures: DSAP-images (DSA-reID Fig. 2), SAN's texture predictions (SAN Fig. 6) and the ranked lists of
the baseline beside DSA-reID's. Rerunning resumes: finished jobs are kept. The full evidence (12 epochs,
3 seeds) is ``python benchmarks/bench_alignment.py``.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np

from torchreid_dense.benchmark.alignment import REPO, run_alignment
from torchreid_dense.benchmark.ranks import job_features, rank_gallery
from torchreid_dense.benchmark.runner import last_checkpoint
from torchreid_dense.benchmark.suite import SuiteError
from torchreid_dense.data.synth.generate import ensure_dataset

ROWS = ("resnet18", "mf_alone", "dsa_reid", "san_enc", "san")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--root", default="reid-data", help="data root (SynthReID goes to <root>/synthreid/)")
    parser.add_argument("--output", default=osp.join("log", "demo"), help="output directory")
    parser.add_argument("--queries", type=int, default=6, help="queries in the ranked-list picture")
    return parser.parse_args(argv)


def _tool(*args):
    print("$ python", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=REPO)


def ranked_lists(output, data_dir, out_png, num_queries, topk=5):
    """The ranked lists of the baseline and DSA-reID for ``num_queries`` queries spread over the query set."""
    from PIL import Image

    from torchreid_dense.data.datasets.synthreid import SynthReID
    from torchreid_dense.dense.visualize import save_ranked_figure

    ds = SynthReID(root=data_dir, verbose=False)
    picks = np.linspace(0, len(ds.query) - 1, num_queries).round().astype(int)
    query = [ds.query[i] for i in picks]
    qp, gp = [q[0] for q in query], [g[0] for g in ds.gallery]
    models = []
    for run, name in (("resnet18", "resnet18 (torchreid)"), ("dsa_reid", "DSA-reID (R18)")):
        job = osp.join(output, run, "seed0")
        qf, gf = job_features(job, qp, ds.num_train_pids), job_features(job, gp, ds.num_train_pids)
        index, correct = rank_gallery(qf, gf, [q[1] for q in query], [q[2] for q in query],
                                      [g[1] for g in ds.gallery], [g[2] for g in ds.gallery], topk)
        ranked = [[(np.asarray(Image.open(gp[j]).convert("RGB")), bool(c)) for j, c in zip(row, ok)]
                  for row, ok in zip(index, correct)]
        models.append((f"{name}: {int(correct[:, 0].sum())}/{len(query)} rank-1 hits", ranked))
    queries = [np.asarray(Image.open(p).convert("RGB")) for p in qp]
    save_ranked_figure(out_png, queries, models, topk=topk,
                       title="top-5 gallery images (green: same identity, other camera)")


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    print(f"== SynthReID small under {osp.abspath(args.root)}/synthreid/ (generated on first use)")
    data_dir = ensure_dataset(args.root, "small", 0, workers=os.cpu_count() or 1)
    output = osp.abspath(args.output)
    print(f"== suite 'alignment' (profile quick), rows {', '.join(ROWS)}: output {output}")
    try:
        results = run_alignment(output, args.root, profile="quick", only=ROWS)
    except (SuiteError, subprocess.CalledProcessError) as err:
        print(f"error: {err}; rerun `make demo` to resume", file=sys.stderr)
        return 1
    print("\n" + open(results, encoding="utf-8").read())
    pictures = osp.join(output, "pictures")
    _tool("tools/visualize.py", "dsap", "--dataset-dir", data_dir, "--kind", "densepose", "--num", "4",
          "--size", "16", "--out", osp.join(pictures, "dsap"))
    san_job = osp.join(output, "san", "seed0")
    _tool("tools/visualize.py", "textures", "--config-file", osp.join(san_job, "config.yaml"),
          "--weights", last_checkpoint(san_job), "--dataset-dir", data_dir, "--num", "6",
          "--out", osp.join(pictures, "san_textures.png"))
    ranked_lists(output, data_dir, osp.join(pictures, "ranked_lists.png"), args.queries)
    print(f"\ntable:    {results}  (also results.csv, results.json, chart results.png)")
    print(f"pictures: {osp.join(pictures, 'dsap')}/  DSAP-images of 4 training images (DSA-reID Fig. 2)")
    print(f"          {osp.join(pictures, 'san_textures.png')}  SAN's predicted textures, re-rendered (SAN Fig. 6)")
    print(f"          {osp.join(pictures, 'ranked_lists.png')}  ranked lists: resnet18 vs DSA-reID")
    print(f"jobs:     {output}/<run>/seed0/ (log.txt, stdout.txt, result.json, checkpoints)")
    print(f"demo finished in {(time.time() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
