"""The command line of ``tools/benchmark.py`` and the run-then-report flow shared with ``tools/demo.py``."""
import argparse
import os.path as osp
import sys

from .report import load_results, write_report
from .runner import BenchmarkError, in_process_job, run_suite, subprocess_job
from .suite import SuiteError, load_suite, opts_to_list

__all__ = ["build_parser", "default_output", "benchmark", "main"]


def default_output(suite):
    """``log/benchmark/<suite>`` (``-<profile>`` appended for a profile)."""
    return osp.join("log", "benchmark", suite.name + (f"-{suite.profile}" if suite.profile else ""))


def benchmark(suite, output, seeds=None, extra_opts=(), in_process=False, threads=1, latency=True,
              dry_run=False, log=print, train_threads=None):
    """Run the suite's unfinished jobs, then write the report of every finished run of the suite.

    Returns:
        dict: :func:`~torchreid_dense.benchmark.runner.run_suite`'s summary plus ``report``
        (:func:`~torchreid_dense.benchmark.report.write_report`'s result; None for a dry run or
        when nothing finished).
    """
    if suite.description:
        log(suite.description)
    summary = run_suite(suite, output, seeds=seeds, extra_opts=extra_opts,
                        job_fn=in_process_job if in_process else subprocess_job,
                        threads=threads, latency=latency, dry_run=dry_run, log=log, train_threads=train_threads)
    summary["report"] = None
    if dry_run:
        return summary
    names = [run.name for run in suite.runs]
    results = [r for r in load_results(output) if r.get("run") in names and r.get("suite") == suite.name]
    if any(r.get("report", True) for r in results):
        title = f"Benchmark suite '{suite.name}'" + (f" (profile {suite.profile})" if suite.profile else "")
        summary["report"] = write_report(output, results, order=names, title=title, deltas=suite.deltas)
    return summary


def build_parser():
    """Arguments of ``tools/benchmark.py``."""
    parser = argparse.ArgumentParser(
        description="Train and evaluate every run of a benchmark suite over seeds (resumable) and write "
                    "results.md / results.csv / results.json / results.png.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--suite", required=True, help="suite file, e.g. configs/suites/synth.yaml")
    parser.add_argument("--output", default="", help="output directory (default: log/benchmark/<suite>[-<profile>])")
    parser.add_argument("--profile", default="", help="a profile of the suite file (e.g. quick)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="replace every run's seeds (a fixed_seeds run, e.g. SAN-PG, only picks among its own)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="run only these runs (and the runs they depend on)")
    parser.add_argument("--dry-run", action="store_true", help="print the jobs and their tools/main.py commands")
    parser.add_argument("--in-process", action="store_true",
                        help="run the jobs in this process instead of one child process per job")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for the latency measurement (0 = torch's default)")
    parser.add_argument("--train-threads", type=int, default=None, metavar="N",
                        help="torch threads of every training job (default: the suite's train_threads; 0: the "
                             "environment's); another count gives other last digits than the suite's published rows")
    parser.add_argument("--no-latency", action="store_true", help="skip the CPU latency measurement")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides for every job, after the suite's (e.g. data.root /data)")
    return parser


def main(argv=None):
    """``tools/benchmark.py``: returns the exit status (0 all finished, 1 a job failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.train_threads is not None and args.train_threads < 0:
        parser.error(f"--train-threads {args.train_threads}: expected a count >= 0 (0: the environment's)")
    try:
        suite = load_suite(args.suite, profile=args.profile or None)
        if args.only:
            suite = suite.select(args.only)
        extra = opts_to_list(args.opts, "--opts")
        output = args.output or default_output(suite)
        summary = benchmark(suite, output, seeds=args.seeds, extra_opts=extra, in_process=args.in_process,
                            threads=args.threads, latency=not args.no_latency, dry_run=args.dry_run,
                            train_threads=args.train_threads)
    except (SuiteError, BenchmarkError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if summary["report"] is not None:
        print("\n" + summary["report"]["table"] + "\n")
        for kind, path in summary["report"]["paths"].items():
            print(f"{kind:>4}: {path}")
    if summary["failed"] or summary["skipped"]:
        print(f"{len(summary['failed'])} job(s) failed, {len(summary['skipped'])} skipped; rerun the same "
              "command to retry them (finished jobs are kept)", file=sys.stderr)
        return 1
    return 0
