"""Running one benchmark job: in this process (:func:`in_process_job`) or in a child Python process of its own
(:func:`subprocess_job`, which calls :func:`worker_main` on ``<job dir>/job.json``)."""
import datetime
import json
import os
import os.path as osp
import subprocess
import sys
import time

from .job_dir import JOB_FILE, STDOUT_FILE, last_checkpoint, write_json

__all__ = [
    "in_process_job", "subprocess_job", "worker_main", "machine_info", "cpu_name", "other_machine", "thread_env",
]

_WORKER_RESULT = ".worker_result.json"


def _metrics_of(launch_result):
    """``{target: {metric: float}}`` from the launcher's return value (unknown shapes dropped)."""
    out = {}
    for target, values in (launch_result or {}).items():
        if isinstance(values, dict):
            out[str(target)] = {str(k): float(v) for k, v in values.items() if isinstance(v, (int, float))}
    return out


def in_process_job(spec):
    """Train + evaluate one job with :func:`launch.main` in this process, then measure its cost.

    Args:
        spec (dict): ``argv`` (tools/main.py arguments), ``out_dir``, ``threads`` (CPU latency
            threads), ``latency`` (bool), ``train_threads`` (torch threads of the job; 0 or absent: as they are).

    Returns:
        dict: ``metrics``, ``train_time_s`` (wall time of the whole launcher job: training and the
        final evaluation), ``cost`` (see :func:`~torchreid_dense.benchmark.cost.measure_cost`),
        ``checkpoint``, ``machine`` (:func:`machine_info`).
    """
    import torch

    from ..engine import launch
    from .cost import cost_from_config

    before = torch.get_num_threads()
    if spec.get("train_threads"):
        torch.set_num_threads(int(spec["train_threads"]))
    try:
        start = time.perf_counter()
        metrics = launch.main(list(spec["argv"]))
        wall = time.perf_counter() - start
        machine = machine_info()
    finally:
        torch.set_num_threads(before)
    cost = cost_from_config(osp.join(spec["out_dir"], launch.CONFIG_FILE), threads=spec.get("threads", 1),
                            latency=spec.get("latency", True))
    return {
        "metrics": _metrics_of(metrics),
        "train_time_s": wall,
        "cost": cost,
        "checkpoint": last_checkpoint(spec["out_dir"]),
        "machine": machine,
    }


def thread_env(threads):
    """The environment variables that give a child process's torch (OpenMP, MKL) ``threads`` threads."""
    return {"OMP_NUM_THREADS": str(int(threads)), "MKL_NUM_THREADS": str(int(threads))}


def machine_info():
    """What a CPU result's last digits depend on besides config, seed and data: the CPU model and the kernels torch
    picks for it (AVX2 and AVX-512 kernels round differently), the torch thread count and the library versions."""
    import platform

    import torch

    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}


def cpu_name(machine):
    """``AMD EPYC (AVX2)``: a :func:`machine_info` record's CPU and the kernels torch picks for it."""
    cpu = machine.get("cpu") or "unknown CPU"
    return f"{cpu} ({machine['cpu_capability']})" if machine.get("cpu_capability") else cpu


def other_machine(done, here):
    """Why a finished job's last digits are another machine's (its CPU or kernels differ from ``here``), or None.

    A row reproduces on the CPU kind it ran on (torch's AVX2 and AVX-512 kernels round differently), so a suite
    resumed on another kind would pair rows of two machines in one delta; jobs that recorded no machine are not
    flagged.
    """
    there = done.get("machine")
    if not there or cpu_name(there) == cpu_name(here):
        return None
    return (f"ran on {cpu_name(there)}, this machine is {cpu_name(here)}: its last digits are that machine's, and "
            "a delta pairing it with a job trained here mixes two machines' rounding")


def _tail(path, lines=25):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def subprocess_job(spec):
    """:func:`in_process_job` in a child Python process; console output to ``<out_dir>/stdout.txt``.

    Raises:
        RuntimeError: the child failed (the message holds the end of its output).
    """
    out_dir = spec["out_dir"]
    os.makedirs(out_dir, exist_ok=True)
    job_file = osp.join(out_dir, JOB_FILE)
    worker_result = osp.join(out_dir, _WORKER_RESULT)
    if osp.exists(worker_result):
        os.remove(worker_result)
    write_json(job_file, spec)
    log_path = osp.join(out_dir, STDOUT_FILE)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if spec.get("train_threads"):  # set before torch starts in the child: its OpenMP / MKL pools get that size
        env.update(thread_env(spec["train_threads"]))
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n===== {datetime.datetime.now().isoformat(timespec='seconds')} "
                  f"worker_main({job_file})\n")
        log.flush()
        code = subprocess.call([sys.executable, "-c", _WORKER_CODE, job_file],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    if code != 0 or not osp.isfile(worker_result):
        raise RuntimeError(f"the job process exited with status {code}; end of {log_path}:\n{_tail(log_path)}")
    with open(worker_result, encoding="utf-8") as f:
        result = json.load(f)
    os.remove(worker_result)
    return result


def worker_main(job_file):
    """Child-process entry point: run :func:`in_process_job` on a job file, write its result."""
    with open(job_file, encoding="utf-8") as f:
        spec = json.load(f)
    result = in_process_job(spec)
    write_json(osp.join(spec["out_dir"], _WORKER_RESULT), result)


_WORKER_CODE = "import sys; from torchreid_dense.benchmark.job_process import worker_main; worker_main(sys.argv[1])"
