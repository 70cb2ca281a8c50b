"""A benchmark job's attempts (``<job dir>/attempts.json``), so that a resumed job's ``train_time_s`` is the wall
time the whole job took, not only its last attempt's.

An interrupted attempt (killed, machine gone) cannot write anything when it ends. What it did that the next attempt
keeps ends at the ``checkpoint_last.pth`` that attempt resumes from, so the time an earlier attempt counts is from
its start to that checkpoint's modification time; the steps it ran after that checkpoint are redone by the next
attempt and counted there once. An attempt that starts from scratch (no checkpoint) forgets the earlier ones.
"""
import datetime
import json
import os.path as osp
import time

from .job_dir import write_json

__all__ = ["ATTEMPTS_FILE", "start_attempt", "train_time_complete"]

ATTEMPTS_FILE = "attempts.json"


def _read(out_dir):
    path = osp.join(out_dir, ATTEMPTS_FILE)
    if not osp.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("attempts", [])


def start_attempt(out_dir, resume_from="", now=None):
    """Record a new attempt of the job in ``out_dir``; return how many attempts it has and the seconds earlier
    attempts count.

    Args:
        out_dir (str): the job directory.
        resume_from (str): the ``checkpoint_last.pth`` this attempt resumes from ('' for a fresh start).
        now (float, optional): the start time (``time.time()``; tests pass their own).

    Returns:
        tuple: ``(attempts, earlier_s)``: the number of recorded attempts, this one included, and the wall time of
        the earlier ones up to ``resume_from`` (0.0 for a fresh start; None when the attempt resumes a job whose
        earlier attempts were not recorded: runs of an older runner).
    """
    now = time.time() if now is None else now
    attempts = _read(out_dir) if resume_from else []
    if attempts and "counted_s" not in attempts[-1]:
        attempts[-1]["counted_s"] = max(0.0, osp.getmtime(resume_from) - attempts[-1]["started_unix"])
    earlier = sum(a["counted_s"] for a in attempts) if (attempts or not resume_from) else None
    started = datetime.datetime.fromtimestamp(now).isoformat(timespec="seconds")
    attempts.append({"started": started, "started_unix": now, "resume_from": resume_from})
    write_json(osp.join(out_dir, ATTEMPTS_FILE), {"attempts": attempts})
    return len(attempts), earlier


def train_time_complete(result):
    """Whether a job's ``train_time_s`` covers the whole job (False: a resumed job of an older runner, which
    recorded only its last attempt)."""
    return "train_time_s" in result and not result.get("train_time_incomplete", False) and (
        "model.resume" not in (result.get("argv") or []) or "attempts" in result)
