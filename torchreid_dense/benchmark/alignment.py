"""The alignment evidence driver (issue 11): SAN-PG, the SAN rows' pseudo textures, then the suite's rows.

Runs ``configs/suites/alignment.yaml`` (or another suite with the same run names) in the order it needs,
resumably (finished jobs and written textures are kept; rerun the same call after an interruption):

1. SAN-PG (SAN step 1) on the PIT pairs, when a selected run depends on it;
2. the pseudo textures the selected SAN rows read, written apart from the data set under
   ``<output>/textures/``: ``sanpg`` (SAN-PG predictions, ``tools/generate_textures.py --method sanpg``) and
   ``fused`` (each training identity's views fused through its estimated IUV maps, ``--method fuse``);
3. seed 0 of every selected row (a first table exists early), then their remaining seeds.

Each step is a child process (``tools/benchmark.py``, ``tools/generate_textures.py``), so the commands it
prints can be rerun by hand; each runs with the profile's ``train_threads`` torch threads (one for ``evidence``).
"""
import os
import os.path as osp
import re
import subprocess
import sys

from .job_process import thread_env
from .runner import last_checkpoint
from .suite import load_suite

__all__ = ["REPO", "ALIGNMENT_SUITE", "run_alignment", "san_pg_l1"]

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ALIGNMENT_SUITE = osp.join(REPO, "configs", "suites", "alignment.yaml")
_PG_L1 = re.compile(r"held-out texture L1: ([0-9.]+) \(normalised\), ([0-9.]+) \(pixels in \[0,1\]\)")
_TEXTURES = {"sanpg": "{suite.dir}/textures/sanpg", "fused": "{suite.dir}/textures/fused"}


def _run(cmd, threads=0):
    env = thread_env(threads) if threads else {}
    print("$", " ".join([f"{k}={v}" for k, v in env.items()] + list(cmd)), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, env=dict(os.environ, **env))


def _opt(opts, key):
    """``[key, value]`` of the last ``key`` in a flat KEY VALUE list, or []."""
    pairs = dict(zip(opts[0::2], opts[1::2]))
    return [key, str(pairs[key])] if key in pairs else []


def _needs(suite):
    """The kinds of pseudo textures (keys of ``_TEXTURES``) that the suite's runs read."""
    return {kind for kind, where in _TEXTURES.items() for r in suite.runs if any(where in o for o in r.opts)}


def san_pg_l1(job_dir):
    """SAN-PG's last held-out texture L1 ``(normalised, pixels in [0, 1])`` from its log, or None."""
    path = osp.join(job_dir, "log.txt")
    if not osp.exists(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        found = _PG_L1.findall(f.read())
    return tuple(float(x) for x in found[-1]) if found else None


def run_alignment(output, data_root, profile="evidence", suite_path=ALIGNMENT_SUITE, only=None, seeds=None, opts=(),
                  train_threads=None):
    """Run the suite's selected rows with everything they need; returns the path of ``results.md``.

    Args:
        output (str): the suite's output directory.
        data_root (str): ``data.root`` of every job (SynthReID is generated there on first use).
        profile (str): the suite profile (``evidence``, ``quick``).
        suite_path (str): the suite file.
        only (list of str, optional): the rows to run (default: all); their dependencies come along.
        seeds (list of int, optional): run only these training seeds (default: each row's own).
        opts (list of str): KEY VALUE overrides for every job and texture tool (e.g. ``synth.seed 7``).
        train_threads (int, optional): torch threads of every job and texture tool (None: the profile's
            ``train_threads``; 0: the environment's).
    """
    suite = load_suite(suite_path, profile=profile)
    if only:
        suite = suite.select(list(only))
        # a row may read SAN-PG's textures without starting from its weights (san_no_pg): SAN-PG comes along
        if "sanpg" in _needs(suite) and "san_pg_r18" not in [r.name for r in suite.runs]:
            suite = load_suite(suite_path, profile=profile).select([*only, "san_pg_r18"])
    names = [r.name for r in suite.runs]
    output, root, py = osp.abspath(output), osp.abspath(data_root), sys.executable
    threads = suite.train_threads if train_threads is None else int(train_threads)
    common = ["--suite", suite_path, "--profile", profile, "--output", output, "--no-latency"]
    if train_threads is not None:
        common += ["--train-threads", str(threads)]
    selected = ["--only", *names]
    job_opts = ["--opts", "data.root", root, *opts]
    needs = _needs(suite)
    if "san_pg_r18" in names:
        _run([py, "tools/benchmark.py", *common, "--only", "san_pg_r18", *job_opts], threads)
    tools = [py, "tools/generate_textures.py", "--dataset", "synthreid", "--no-progress"]
    if "sanpg" in needs:
        pg_run = suite.run("san_pg_r18")
        job = osp.join(output, "san_pg_r18", f"seed{pg_run.seeds[0]}")
        weights = last_checkpoint(job)
        if not weights:
            raise SystemExit(f"no SAN-PG checkpoint under {job}/model: did step 1 finish? (see {job}/log.txt)")
        size = [k for key in ("data.height", "data.width") for k in _opt(list(pg_run.opts), key)]
        _run([*tools, "--method", "sanpg", "--config-file", pg_run.config, "--weights", weights,
              "--output-dir", osp.join(output, "textures", "sanpg"), *size, "data.root", root, *opts], threads)
    if "fused" in needs:
        san_run = next(r for r in suite.runs if any(_TEXTURES["fused"] in o for o in r.opts))
        size = [k for key in ("data.height", "data.width") for k in _opt(list(san_run.opts), key)]
        _run([*tools, "--method", "fuse", "--config-file", san_run.config,
              "--output-dir", osp.join(output, "textures", "fused"), *size, "data.root", root, *opts], threads)
    first = [str(s) for s in (seeds or [0])][:1]
    _run([py, "tools/benchmark.py", *common, *selected, "--seeds", *first, *job_opts], threads)
    _run([py, "tools/benchmark.py", *common, *selected, *(["--seeds", *map(str, seeds)] if seeds else []), *job_opts],
         threads)
    return osp.join(output, "results.md")
