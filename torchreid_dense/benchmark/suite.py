"""Benchmark suites: a YAML list of training runs (config + overrides + seeds) compared in one table.

A suite file (``configs/suites/<name>.yaml``)::

    name: synth                         # optional, default: the file's stem
    description: ...                    # optional, printed by tools/benchmark.py
    defaults:                           # applied to every run (each key optional)
      seeds: [0, 1, 2]                  # train.seed values; one (run, seed) = one training job
      opts: {data.root: reid-data}      # KEY VALUE overrides, as a mapping or a flat [KEY, VALUE, ...] list
      target: synthreid                 # evaluation target tabulated (default: the first one evaluated)
      train_threads: 1                  # torch threads of every job (OMP/MKL too; 0 or absent: the environment's)
    runs:
      - name: resnet18                  # unique; the job directory is <output>/<name>/seed<k>
        label: resnet18 (torchreid)     # optional, the table's model column (default: name)
        config: configs/baseline_synth.yaml   # relative to the working directory or the repository
        opts: {train.max_epoch: 12}     # optional
        seeds: [0, 1, 2]                # optional, replaces defaults.seeds
      - name: san_pg_r18
        config: configs/san_pg_synth.yaml
        report: false                   # trained for another run, not a row of the table
        pinned: [train.max_epoch]       # keys command-line --opts do not change for this run (its own schedule)
        fixed_seeds: true               # command-line --seeds pick among its seeds, never add one (see below)
      - name: san_r18
        config: configs/san_synth.yaml
        depends_on: [san_pg_r18]        # trained after san_pg_r18 (same seed, else its first seed)
        opts: {san.init_weights: "{san_pg_r18.checkpoint}"}
    deltas:                             # optional: paired differences reported with their spread
      - {name: DSAG guidance, plus: dsa_reid, minus: mf_alone}   # plus - minus, seed by seed
    profiles:                           # optional named variants (tools/benchmark.py --profile quick)
      quick:
        seeds: [0]
        opts: {train.max_epoch: 3}
        runs: {san_pg_r18: {opts: {train.max_epoch: 2}, seeds: [0]}}
        train_threads: 0                # replaces defaults.train_threads

Opt values may name a dependency's outputs: ``{<run>.dir}`` (its job directory) and
``{<run>.checkpoint}`` (the last checkpoint it saved), resolved when the job starts; ``{suite.dir}`` is the
suite's output directory (e.g. for files a driver writes there before the runs that read them). Later
overrides win: config file < ``defaults.opts`` < run ``opts`` < profile ``opts`` < profile run
``opts`` < command-line opts; ``train.seed`` and ``data.save_dir`` belong to the runner. A run's ``pinned``
keys are the exception: command-line opts of those keys do not reach it (e.g. a preprocessing model that keeps
its schedule when the re-ID rows are trained longer). Command-line seeds replace each run's seeds, but a
``fixed_seeds`` run only keeps those of its own seeds asked for (its first when none is), so a row's seed k
depends on the same job with or without ``--seeds`` (SAN rows start from the suite's SAN-PG model).

``train_threads`` is part of what a CPU job computes (torch's kernels split and round reductions by thread
count), so a suite whose rows are published names it and its command reproduces them; it is not part of a job's
fingerprint (the job is the same job, its ``result.json`` records the count it ran with under ``machine``).
"""
import os.path as osp
import re
from dataclasses import dataclass, field

import yaml

from .opts import RUNNER_KEYS, SUITE_PLACEHOLDER, SuiteError, opts_to_list, placeholders
from .suite_fields import check_keys, dependency_order, read_deltas, read_seeds, read_threads, resolve_config

__all__ = [
    "SuiteError",
    "SuiteRun",
    "Suite",
    "load_suite",
    "opts_to_list",
    "placeholders",
    "RUNNER_KEYS",
    "SUITE_PLACEHOLDER",
]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SUITE_KEYS = {"name", "description", "defaults", "runs", "profiles", "deltas"}
_DEFAULT_KEYS = {"seeds", "opts", "target", "train_threads"}
_RUN_KEYS = {"name", "label", "config", "opts", "seeds", "depends_on", "report", "target", "pinned", "fixed_seeds"}
_PROFILE_KEYS = {"description", "seeds", "opts", "runs", "train_threads"}
_PROFILE_RUN_KEYS = {"seeds", "opts"}


@dataclass(frozen=True)
class SuiteRun:
    """One entry of a suite: a config trained once per seed.

    Attributes:
        name: unique run name (job directory ``<output>/<name>/seed<k>``).
        label: model name shown in the table.
        config: path of the yacs config file (resolved, existing).
        opts: ``KEY VALUE`` overrides (strings), after the suite's defaults.
        seeds: ``train.seed`` values.
        depends_on: names of runs that must finish first (their outputs feed placeholders).
        report: whether the run is a row of the result table.
        target: evaluation target tabulated ('' = the first one the launcher returns).
        pinned: config keys whose command-line overrides this run ignores (its fingerprint too).
        fixed_seeds: whether command-line seeds only select among this run's seeds (see :meth:`job_seeds`).
    """

    name: str
    label: str
    config: str
    opts: tuple = ()
    seeds: tuple = (0,)
    depends_on: tuple = ()
    report: bool = True
    target: str = ""
    pinned: tuple = ()
    fixed_seeds: bool = False

    def job_seeds(self, seeds=None):
        """The seeds this run is trained with when the command line asks for ``seeds`` (None: its own): those
        seeds, or for a ``fixed_seeds`` run those of its own seeds asked for (its first when none is)."""
        if not seeds:
            return self.seeds
        if self.fixed_seeds:
            return tuple(s for s in self.seeds if s in set(map(int, seeds))) or self.seeds[:1]
        return tuple(int(s) for s in seeds)

    def command_line_opts(self, extra_opts):
        """``extra_opts`` (command-line ``KEY VALUE`` pairs) without the pairs of this run's ``pinned`` keys."""
        extra = list(extra_opts)
        return [v for i in range(0, len(extra) - 1, 2) if extra[i] not in self.pinned for v in extra[i:i + 2]]


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its runs in dependency order (file order otherwise)."""

    name: str
    path: str
    description: str = ""
    runs: tuple = ()
    profile: str = ""
    profiles: tuple = field(default_factory=tuple)
    deltas: tuple = ()  # ((name, plus run, minus run), ...)
    train_threads: int = 0  # torch threads of every training job (0: the environment's)

    def run(self, name):
        """The run called ``name`` (KeyError listing the known ones)."""
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"suite '{self.name}' has no run '{name}'; runs: {[r.name for r in self.runs]}")

    def select(self, names):
        """The suite restricted to ``names`` and everything they depend on (in dependency order)."""
        unknown = [n for n in names if n not in {r.name for r in self.runs}]
        if unknown:
            raise SuiteError(
                f"{self.path}: no run named {unknown}; runs of suite '{self.name}': {[r.name for r in self.runs]}"
            )
        keep = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name not in keep:
                keep.add(name)
                todo.extend(self.run(name).depends_on)
        return Suite(self.name, self.path, self.description, tuple(r for r in self.runs if r.name in keep),
                     self.profile, self.profiles, self.deltas, self.train_threads)


def load_suite(path, profile=None):
    """Read and check a suite file; apply the profile ``profile`` (a key of its ``profiles``) if given.

    Args:
        path (str): the suite YAML file.
        profile (str, optional): name of a profile of the file.

    Returns:
        Suite: runs with merged opts and seeds, dependencies first.

    Raises:
        SuiteError: naming the file, the entry and what to change.
    """
    if not osp.isfile(path):
        raise SuiteError(f"suite file '{path}' does not exist (suites ship in configs/suites/)")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise SuiteError(f"{path}: not valid YAML: {err}") from None
    check_keys(data, _SUITE_KEYS, path)
    name = data.get("name") or osp.splitext(osp.basename(path))[0]
    defaults = data.get("defaults") or {}
    check_keys(defaults, _DEFAULT_KEYS, f"{path}: defaults")
    default_opts = opts_to_list(defaults.get("opts"), f"{path}: defaults.opts")
    default_seeds = read_seeds(defaults.get("seeds", [0]), f"{path}: defaults.seeds")
    default_target = str(defaults.get("target", "") or "")
    train_threads = read_threads(defaults.get("train_threads", 0), f"{path}: defaults")

    profiles = data.get("profiles") or {}
    check_keys(profiles, set(profiles), f"{path}: profiles")
    prof = {}
    if profile:
        if profile not in profiles:
            raise SuiteError(f"{path}: no profile '{profile}'; profiles: {sorted(profiles) or 'none'}")
        prof = profiles[profile] or {}
        check_keys(prof, _PROFILE_KEYS, f"{path}: profiles.{profile}")
    prof_opts = opts_to_list(prof.get("opts"), f"{path}: profiles.{profile}.opts")
    prof_seeds = read_seeds(prof["seeds"], f"{path}: profiles.{profile}.seeds") if "seeds" in prof else None
    prof_runs = prof.get("runs") or {}
    if "train_threads" in prof:
        train_threads = read_threads(prof["train_threads"], f"{path}: profiles.{profile}")
    check_keys(prof_runs, set(prof_runs), f"{path}: profiles.{profile}.runs")

    entries = data.get("runs")
    if not isinstance(entries, list) or not entries:
        raise SuiteError(f"{path}: 'runs' must be a non-empty list of {{name, config, ...}} entries")
    runs, names = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}: runs[{i}]"
        check_keys(entry, _RUN_KEYS, where)
        run_name = entry.get("name")
        if not isinstance(run_name, str) or not _NAME.match(run_name):
            raise SuiteError(f"{where}: 'name' must be a word of letters, digits, '_', '-', '.', got {run_name!r}")
        if run_name in names:
            raise SuiteError(f"{where}: run name '{run_name}' is used twice")
        if run_name == SUITE_PLACEHOLDER:
            raise SuiteError(f"{where}: the run name '{SUITE_PLACEHOLDER}' is reserved ({{suite.dir}} placeholders)")
        names.add(run_name)
        where = f"{path}: run '{run_name}'"
        override = prof_runs.get(run_name) or {}
        check_keys(override, _PROFILE_RUN_KEYS, f"{path}: profiles.{profile}.runs.{run_name}")
        opts = (default_opts + opts_to_list(entry.get("opts"), f"{where}: opts") + prof_opts
                + opts_to_list(override.get("opts"), f"{path}: profiles.{profile}.runs.{run_name}.opts"))
        if "seeds" in override:
            seeds = read_seeds(override["seeds"], f"{path}: profiles.{profile}.runs.{run_name}.seeds")
        elif prof_seeds is not None:
            seeds = prof_seeds
        else:
            seeds = read_seeds(entry.get("seeds", default_seeds), f"{where}: seeds")
        depends = entry.get("depends_on") or []
        if isinstance(depends, str):
            depends = [depends]
        pinned = entry.get("pinned") or []
        if not isinstance(pinned, list) or not all(isinstance(k, str) and k for k in pinned):
            raise SuiteError(f"{where}: 'pinned' must be a list of config keys, got {pinned!r}")
        runs.append(SuiteRun(
            name=run_name,
            label=str(entry.get("label") or run_name),
            config=resolve_config(entry.get("config"), path, where),
            opts=tuple(opts),
            seeds=seeds,
            depends_on=tuple(depends),
            report=bool(entry.get("report", True)),
            target=str(entry.get("target", default_target) or ""),
            pinned=tuple(pinned),
            fixed_seeds=bool(entry.get("fixed_seeds", False)),
        ))
    unknown = sorted(set(prof_runs) - names)
    if unknown:
        raise SuiteError(f"{path}: profiles.{profile}.runs names unknown runs {unknown}; runs: {sorted(names)}")
    for run in runs:
        for dep in run.depends_on:
            if dep not in names:
                raise SuiteError(f"{path}: run '{run.name}' depends on unknown run '{dep}'; runs: {sorted(names)}")
            if dep == run.name:
                raise SuiteError(f"{path}: run '{run.name}' depends on itself")
        for dep, _ in placeholders(run.opts):
            if dep == SUITE_PLACEHOLDER:
                continue
            if dep not in run.depends_on:
                raise SuiteError(
                    f"{path}: run '{run.name}' uses '{{{dep}.…}}' in its opts but does not declare "
                    f"depends_on: [{dep}]"
                )
    return Suite(name=str(name), path=path, description=str(data.get("description") or "").strip(),
                 runs=dependency_order(runs, path), profile=profile or "", profiles=tuple(sorted(profiles)),
                 deltas=read_deltas(data.get("deltas"), names, path), train_threads=train_threads)
