"""The ``--json FILE`` record of a micro benchmark (``benchmarks/bench_*.py``), read back by
``benchmarks/render_docs.py``: the benchmark's figures plus the command, commit, load and machine they come from."""
import datetime
import json
import os
import os.path as osp
import subprocess
import sys
import time

from ..utils.io import atomic_write
from .job_process import machine_info

__all__ = ["MicroRecord", "git_commit"]

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def git_commit(root=REPO):
    """The checked-out commit (full hash), or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class MicroRecord:
    """The ``--json FILE`` of a micro benchmark: what it printed as data, plus where and how it ran.

    ``MicroRecord(path)`` at the start of the run records the command line, the git commit, the start time, the
    load average, the process's niceness and the environment variables that change the figures (thread counts,
    ``PYTHONPATH``); :meth:`write` adds the benchmark's own fields (top-level keys), the
    end time, the wall time, the load average at the end and the ``machine``
    (:func:`torchreid_dense.benchmark.job_process.machine_info`: CPU model, torch's kernel level, torch threads,
    versions). An empty ``path`` writes nothing.
    """

    RESERVED = ("benchmark", "argv", "commit", "started", "finished", "wall_s", "niceness", "env", "loadavg_start",
                "loadavg_end", "machine")
    ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONPATH", "CUDA_VISIBLE_DEVICES")

    def __init__(self, path, benchmark=None, argv=None):
        self.path = path
        argv = list(sys.argv if argv is None else argv)
        self.data = {
            "benchmark": benchmark or osp.splitext(osp.basename(argv[0]))[0],
            "argv": argv[1:],
            "commit": git_commit(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "niceness": os.nice(0),
            "env": {k: os.environ[k] for k in self.ENV if k in os.environ},
            "loadavg_start": [round(v, 2) for v in os.getloadavg()],
        }
        self._start = time.perf_counter()

    def write(self, **fields):
        """Write the file (atomically); ``fields`` are the benchmark's results."""
        if not self.path:
            return None
        clash = sorted(set(fields) & set(self.RESERVED))
        if clash:
            raise ValueError(f"MicroRecord.write: reserved keys {clash}")
        data = dict(self.data)
        data.update({"finished": datetime.datetime.now().isoformat(timespec="seconds"),
                     "wall_s": round(time.perf_counter() - self._start, 1),
                     "loadavg_end": [round(v, 2) for v in os.getloadavg()], "machine": machine_info()})
        data.update(fields)
        with atomic_write(self.path, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        return self.path
