"""Train and evaluate a benchmark suite over seeds and tabulate it (resumable).

Usage::

    python tools/benchmark.py --suite configs/suites/synth.yaml
    python tools/benchmark.py --suite configs/suites/synth.yaml --profile quick --output log/demo
    python tools/benchmark.py --suite configs/suites/market1501.yaml --only dsa_reid san --seeds 1 --opts data.root /data
    python tools/benchmark.py --suite configs/suites/synth.yaml --dry-run

Writes ``<output>/<run>/seed<k>/`` per job and ``<output>/results.{md,csv,json,png}``; rerunning the
same command skips finished jobs. The work lives in :mod:`torchreid_dense.benchmark`.
"""
import sys

from torchreid_dense.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
