"""Benchmark suites: train a list of configs over seeds, measure inference cost, tabulate (issue 6).

- :mod:`.suite`: the suite file format and :func:`load_suite` (each value checked by :mod:`.suite_fields`);
- :mod:`.runner`: :func:`run_suite`, one resumable ``tools/main.py`` job per (run, seed);
- :mod:`.cost`: parameters, FLOPs and CPU latency of a model's inference graph;
- :mod:`.report`: seeds aggregated into ``results.md`` / ``.csv`` / ``.json`` / ``.png``.

``tools/benchmark.py`` is the command line; ``tools/demo.py`` (``make demo``) runs the ``synth`` suite.
"""
from .cost import measure_cost
from .report import aggregate, load_results, summarize, write_report
from .runner import in_process_job, plan_jobs, run_suite, subprocess_job
from .suite import Suite, SuiteError, SuiteRun, load_suite

__all__ = [
    "Suite",
    "SuiteRun",
    "SuiteError",
    "load_suite",
    "plan_jobs",
    "run_suite",
    "subprocess_job",
    "in_process_job",
    "measure_cost",
    "aggregate",
    "summarize",
    "load_results",
    "write_report",
]
