"""Run a benchmark suite: every (run, seed) is one ``tools/main.py`` job, resumable.

Each job trains and evaluates through :func:`torchreid_dense.engine.launch.main` with::

    --config-file <config> <suite opts> train.seed <seed> data.save_dir <output>/<run>/seed<seed>

then measures the cost of the model's inference graph (:mod:`torchreid_dense.benchmark.cost`).
By default a job runs in its own Python process (:func:`subprocess_job`, which calls
:func:`worker_main` on ``<job dir>/job.json``): its memory is returned when it ends, a crash
fails that job only, and its console output goes to ``<job dir>/stdout.txt`` (the launcher also
writes ``log.txt``).

A finished job leaves ``<job dir>/result.json`` (written atomically) and is skipped when the suite
runs again; a failed job leaves ``failed.json`` and is retried. Jobs whose dependency failed are
skipped for this pass.
"""
import datetime
import json
import os
import os.path as osp
import re
from dataclasses import dataclass

from ..engine.checkpointing import CHECKPOINT_LAST
from .attempts import start_attempt
from .job_dir import FAILED_FILE, JOB_FILE, RESULT_FILE, STDOUT_FILE, last_checkpoint, read_result, write_json
from .job_process import in_process_job, machine_info, other_machine, subprocess_job, worker_main
from .opts import PLACEHOLDER, SUITE_PLACEHOLDER

__all__ = [
    "Job",
    "plan_jobs",
    "run_suite",
    "run_job",
    "subprocess_job",
    "in_process_job",
    "worker_main",
    "last_checkpoint",
    "read_result",
    "RESULT_FILE",
    "FAILED_FILE",
    "STDOUT_FILE",
    "BenchmarkError",
]



CHECKPOINT_EVERY = 100  # steps between a job's checkpoint_last.pth (and at each epoch end): what a rerun resumes


class BenchmarkError(RuntimeError):
    """A job directory that cannot be reused as it is (the message says what to do)."""


@dataclass(frozen=True)
class Job:
    """One (run, seed) of a suite.

    Attributes:
        run: the :class:`~torchreid_dense.benchmark.suite.SuiteRun`.
        seed: its ``train.seed``.
        out_dir: the job directory (``data.save_dir``).
        deps: ``{run name: Job}`` of the jobs it depends on (same seed, else the dependency's first).
    """

    run: object
    seed: int
    out_dir: str
    deps: tuple = ()

    @property
    def key(self):
        return f"{self.run.name}/seed{self.seed}"

    def dep(self, name):
        return dict(self.deps)[name]

    def fingerprint(self, extra_opts=()):
        """What makes two jobs the same job (stored in result.json, compared on resume)."""
        return {"config": self.run.config, "opts": list(self.run.opts) + self.run.command_line_opts(extra_opts),
                "seed": self.seed}

    def argv(self, extra_opts=(), resolve=None, runner_opts=()):
        """``tools/main.py`` arguments; ``resolve(match)`` fills the ``{run.dir|checkpoint}`` placeholders;
        ``runner_opts`` (checkpointing, resume) come after the suite's and do not change what the job computes."""
        opts = list(self.run.opts) + self.run.command_line_opts(extra_opts)
        if resolve is not None:
            opts = [PLACEHOLDER.sub(resolve, value) for value in opts]
        return ["--config-file", self.run.config, *opts, *runner_opts, "train.seed", str(self.seed),
                "data.save_dir", self.out_dir]


def plan_jobs(suite, output, seeds=None):
    """The jobs of ``suite`` in dependency order (run by run, seed by seed).

    Args:
        suite (Suite): a loaded suite.
        output (str): the suite's output directory.
        seeds (list of int, optional): replace every run's seeds (but a ``fixed_seeds`` run's).
    """
    jobs, by_key = [], {}
    for run in suite.runs:
        for seed in run.job_seeds(seeds):
            deps = []
            for dep in run.depends_on:
                dep_seeds = suite.run(dep).job_seeds(seeds)
                deps.append((dep, by_key[(dep, seed if seed in dep_seeds else dep_seeds[0])]))
            job = Job(run, int(seed), osp.join(output, run.name, f"seed{seed}"), tuple(deps))
            by_key[(run.name, seed)] = job
            jobs.append(job)
    return jobs


def _resolver(job):
    def resolve(match):
        name, what = match.groups()
        if name == SUITE_PLACEHOLDER and what == "dir":
            return osp.dirname(osp.dirname(job.out_dir))  # <output>/<run>/seed<k> -> <output>
        dep = job.dep(name)
        if what == "dir":
            return dep.out_dir
        result = read_result(dep.out_dir) or {}
        checkpoint = result.get("checkpoint") or last_checkpoint(dep.out_dir)
        if not checkpoint:
            raise BenchmarkError(f"{job.key}: dependency '{dep.key}' finished without a checkpoint in {dep.out_dir}")
        return checkpoint

    return resolve


def _resume_opts(job, extra_opts):
    """The runner's own overrides: ``checkpoint_last.pth`` every :data:`CHECKPOINT_EVERY` steps (unless the suite
    sets ``train.checkpoint_every``) and, when an earlier attempt of the job left one, ``model.resume`` from it.

    Raises:
        BenchmarkError: the interrupted attempt ran another command (its ``job.json``), so its checkpoint is not
            this job's.
    """
    opts = list(job.run.opts) + job.run.command_line_opts(extra_opts)
    runner = [] if "train.checkpoint_every" in opts[0::2] else ["train.checkpoint_every", str(CHECKPOINT_EVERY)]
    last = osp.join(job.out_dir, "model", CHECKPOINT_LAST)
    if not osp.isfile(last):
        return runner
    earlier = osp.join(job.out_dir, JOB_FILE)
    if osp.isfile(earlier):
        with open(earlier, encoding="utf-8") as f:
            before = _without_resume(json.load(f).get("argv", []))
        if before != job.argv(extra_opts, resolve=_resolver(job), runner_opts=runner):
            raise BenchmarkError(
                f"{job.out_dir} holds an interrupted attempt of another command (see {earlier}); delete the directory "
                "to rerun the job from the start, or use another --output")
    return runner + ["model.resume", last]


def _without_resume(argv):
    """``argv`` without its ``model.resume <path>`` pair."""
    argv = list(argv)
    if "model.resume" in argv:
        i = argv.index("model.resume")
        del argv[i:i + 2]
    return argv


def run_job(job, job_fn, suite_name="", extra_opts=(), threads=1, latency=True, train_threads=0):
    """Run one job through ``job_fn(spec) -> dict`` and write its ``result.json``; returns the result.

    An attempt that was interrupted (killed, machine gone) continues from its last ``checkpoint_last.pth``
    (at most :data:`CHECKPOINT_EVERY` steps are redone, with the uninterrupted run's numbers: see
    :meth:`~torchreid_dense.engine.base.DenseEngineMixin.train`); ``train_time_s`` then adds the
    earlier attempts' time up to that checkpoint (:mod:`~torchreid_dense.benchmark.attempts`). ``train_threads``:
    torch threads of the job (0: the environment's).
    """
    argv = job.argv(extra_opts, resolve=_resolver(job), runner_opts=_resume_opts(job, extra_opts))
    spec = {"argv": argv, "out_dir": job.out_dir, "threads": threads, "latency": latency,
            "train_threads": int(train_threads or 0)}
    started = datetime.datetime.now().isoformat(timespec="seconds")
    os.makedirs(job.out_dir, exist_ok=True)
    resume_from = argv[argv.index("model.resume") + 1] if "model.resume" in argv else ""
    attempts, earlier_s = start_attempt(job.out_dir, resume_from)
    result = dict(job_fn(spec))
    if "train_time_s" in result:  # the whole job's wall time, earlier attempts up to the resumed checkpoint included
        result["attempt_time_s"] = result["train_time_s"]
        if earlier_s is None:
            result["train_time_incomplete"] = True
        else:
            result["train_time_s"] += earlier_s
            result["attempts"] = attempts
    result.update({
        "suite": suite_name,
        "run": job.run.name,
        "label": job.run.label,
        "report": job.run.report,
        "target": job.run.target,
        "seed": job.seed,
        "config": job.run.config,
        "argv": argv,
        "fingerprint": job.fingerprint(extra_opts),
        "started": started,
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
    })
    write_json(osp.join(job.out_dir, RESULT_FILE), result)
    failed = osp.join(job.out_dir, FAILED_FILE)
    if osp.exists(failed):
        os.remove(failed)
    return result


def _summary(result):
    metrics = result.get("metrics") or {}
    target = result.get("target") or next(iter(metrics), "")
    values = metrics.get(target, {})
    parts = [f"{k} {100 * values[k]:.1f}" for k in ("rank1", "mAP", "mINP") if k in values]
    pit = metrics.get("pit_val", {})  # SAN-PG: its held-out texture L1, no re-ID metric
    parts += [f"held-out texture L1 {pit['texture_l1_pixel']:.4f} (pixels)"] if "texture_l1_pixel" in pit else []
    return f"{', '.join(parts) or 'no re-ID metrics'}; {result.get('train_time_s', 0) / 60:.1f} min"


def run_suite(suite, output, seeds=None, extra_opts=(), job_fn=None, threads=1, latency=True,
              dry_run=False, log=print, train_threads=None, machine=None):
    """Run every job of ``suite`` not finished yet under ``output``.

    Args:
        suite (Suite): from :func:`~torchreid_dense.benchmark.suite.load_suite`.
        output (str): output directory (``<output>/<run>/seed<k>/``).
        seeds (list of int, optional): replace every run's seeds.
        extra_opts (list of str): ``KEY VALUE`` overrides for every job, after the suite's.
        job_fn (callable, optional): ``spec -> result dict`` (default :func:`subprocess_job`;
            :func:`in_process_job` runs in this process; tests inject fakes).
        threads (int): CPU threads of the latency measurement.
        latency (bool): measure CPU latency.
        dry_run (bool): only print the jobs and their ``tools/main.py`` command lines.
        log (callable): progress messages.
        train_threads (int, optional): torch threads of every job (None: the suite's ``train_threads``; 0: the
            environment's).
        machine (dict, optional): this machine's record (default :func:`machine_info`), against which finished
            jobs' records are checked (:func:`other_machine`).

    Returns:
        dict: ``results`` (result dicts of finished jobs, including earlier passes), ``failed``
        ({job key: error message}), ``skipped`` (job keys not run because a dependency failed),
        ``reused`` (job keys finished by an earlier pass).
    """
    job_fn = job_fn or subprocess_job
    jobs = plan_jobs(suite, output, seeds)
    train_threads = suite.train_threads if train_threads is None else int(train_threads)
    if train_threads:
        log(f"Every job trains with {train_threads} torch thread{'s' if train_threads > 1 else ''} "
            "(OMP_NUM_THREADS / MKL_NUM_THREADS too): the suite's train_threads, part of what a CPU job computes.")
    results, failed, skipped, reused = [], {}, [], []
    for i, job in enumerate(jobs, 1):
        head = f"[{i}/{len(jobs)}] {job.key}"
        done = read_result(job.out_dir)
        if done is not None:
            if done.get("fingerprint") != job.fingerprint(extra_opts):
                raise BenchmarkError(
                    f"{osp.join(job.out_dir, RESULT_FILE)} was produced by another setting "
                    f"({done.get('fingerprint')} != {job.fingerprint(extra_opts)}); use another --output or "
                    f"delete {job.out_dir} to rerun it"
                )
            log(f"{head}: finished earlier ({_summary(done)}), skipped")
            machine = machine or machine_info()
            elsewhere = other_machine(done, machine)
            if elsewhere:
                log(f"{head}: note: {elsewhere}")
            results.append(done)
            reused.append(job.key)
            continue
        if dry_run:
            argv = job.argv(extra_opts)
            for name, dep in job.deps:
                argv = [v.replace(f"{{{name}.dir}}", dep.out_dir) for v in argv]
            log(f"{head}: python tools/main.py {' '.join(_quote(a) for a in argv)}")
            continue
        bad = [dep.key for _, dep in job.deps if dep.key in failed or dep.key in skipped]
        if bad:
            log(f"{head}: skipped, its dependency {bad} did not finish")
            skipped.append(job.key)
            continue
        ignored = sorted(set(list(extra_opts)[0::2]) & set(job.run.pinned))
        if ignored:
            log(f"{head}: keeps its own {', '.join(ignored)} (pinned in the suite), the command line's do not apply")
        log(f"{head}: training (output {job.out_dir})")
        try:
            result = run_job(job, job_fn, suite.name, extra_opts, threads, latency, train_threads)
        except Exception as err:  # one failed job must not end the suite
            failed[job.key] = f"{type(err).__name__}: {err}"
            write_json(osp.join(job.out_dir, FAILED_FILE),
                        {"run": job.run.name, "seed": job.seed, "error": failed[job.key],
                         "time": datetime.datetime.now().isoformat(timespec="seconds")})
            log(f"{head}: FAILED ({failed[job.key].splitlines()[0]}); details in {job.out_dir}")
            continue
        log(f"{head}: done ({_summary(result)})")
        results.append(result)
    return {"results": results, "failed": failed, "skipped": skipped, "reused": reused}


def _quote(arg):
    return arg if re.match(r"^[\w.,/:=+\-\[\]'{}]+$", arg) and "'" not in arg else json.dumps(arg)
