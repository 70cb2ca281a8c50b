"""A resumed benchmark job's train time is the whole job's: earlier attempts count up to the checkpoint resumed."""
import json
import os
import os.path as osp

import pytest

from test_benchmark import SUITE, configs, fake_result, write  # noqa: F401  (configs: a fixture)
from torchreid_dense.benchmark.attempts import ATTEMPTS_FILE, start_attempt, train_time_complete
from torchreid_dense.benchmark.job_dir import JOB_FILE, RESULT_FILE, write_json
from torchreid_dense.benchmark.report import aggregate, write_report
from torchreid_dense.benchmark.runner import plan_jobs, run_job
from torchreid_dense.benchmark.suite import load_suite


def _checkpoint(out_dir, mtime):
    last = osp.join(out_dir, "model", "checkpoint_last.pth")
    os.makedirs(osp.dirname(last), exist_ok=True)
    open(last, "wb").close()
    os.utime(last, (mtime, mtime))
    return last


def test_start_attempt_counts_earlier_attempts_up_to_the_resumed_checkpoint(tmp_path):
    out = str(tmp_path)
    assert start_attempt(out, "", now=1000.0) == (1, 0.0)
    last = _checkpoint(out, 1250.0)  # attempt 1 checkpointed 250 s in, then was killed
    assert start_attempt(out, last, now=1400.0) == (2, 250.0)
    # attempt 2 died before its first checkpoint: it counts 0 s, attempt 1's 250 s stay
    assert start_attempt(out, last, now=1500.0) == (3, 250.0)
    os.utime(last, (1600.0, 1600.0))  # attempt 3 wrote a newer checkpoint 100 s in
    assert start_attempt(out, last, now=1700.0) == (4, 350.0)
    with open(osp.join(out, ATTEMPTS_FILE)) as f:
        attempts = json.load(f)["attempts"]
    assert [a.get("counted_s") for a in attempts] == [250.0, 0.0, 100.0, None]
    # a fresh start (no checkpoint) forgets the earlier attempts
    assert start_attempt(out, "", now=2000.0) == (1, 0.0)
    # an older runner's interrupted job: resumed, but its earlier attempts were never recorded
    other = str(tmp_path / "old")
    assert start_attempt(other, _checkpoint(other, 10.0), now=20.0) == (1, None)


def test_resumed_job_reports_the_whole_jobs_train_time(tmp_path, configs):  # noqa: F811
    a, b = configs
    suite = load_suite(write(tmp_path / "suite.yaml", SUITE.format(a=a, b=b)))
    job = plan_jobs(suite, str(tmp_path / "out"))[0]
    calls = []

    def record(spec):
        calls.append(list(spec["argv"]))
        return fake_result(0.1, 0.05, 30.0)

    first = run_job(job, record)
    assert (first["train_time_s"], first["attempt_time_s"], first["attempts"]) == (30.0, 30.0, 1)
    # interrupted: the attempt that started at `started_unix` checkpointed 200 s later, then died
    os.remove(osp.join(job.out_dir, RESULT_FILE))
    with open(osp.join(job.out_dir, ATTEMPTS_FILE)) as f:
        started = json.load(f)["attempts"][0]["started_unix"]
    _checkpoint(job.out_dir, started + 200.0)
    write_json(osp.join(job.out_dir, JOB_FILE), {"argv": calls[-1]})
    resumed = run_job(job, record)
    assert "model.resume" in calls[-1]
    assert resumed["attempt_time_s"] == 30.0 and resumed["attempts"] == 2
    assert resumed["train_time_s"] == pytest.approx(230.0, abs=1e-3)
    assert train_time_complete(resumed)


def test_report_leaves_out_the_train_time_of_unrecorded_resumed_jobs(tmp_path):
    def result(seed, time_s, **extra):
        return {"run": "x", "seed": seed, "target": "tgt", "report": True, **fake_result(0.1, 0.05, time_s), **extra}

    old_resumed = result(2, 5.0, argv=["model.resume", "/x/checkpoint_last.pth"])  # last attempt only
    rows = aggregate([result(0, 60.0), result(1, 120.0, attempts=2, argv=["model.resume", "c"]), old_resumed])
    assert rows[0]["train_time_min"]["n"] == 2 and rows[0]["train_time_min"]["mean"] == 1.5
    assert rows[0]["train_time_left_out"] == [2]
    assert not train_time_complete(old_resumed)
    assert not train_time_complete(result(3, 5.0, train_time_incomplete=True))
    write_report(str(tmp_path), [result(0, 60.0), old_resumed])
    with open(tmp_path / "results.md") as f:
        assert "- Train time leaves out resumed jobs whose earlier attempts were not recorded (an older runner): " \
               "x seed 2.\n" in f.read()
