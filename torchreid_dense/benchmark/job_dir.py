"""The files of a benchmark job's directory ``<output>/<run>/seed<k>``: its result, its failure, its checkpoints."""
import glob
import json
import os.path as osp
import re

from ..utils.io import atomic_write

__all__ = ["RESULT_FILE", "FAILED_FILE", "STDOUT_FILE", "JOB_FILE", "last_checkpoint", "read_result", "write_json"]

RESULT_FILE = "result.json"
FAILED_FILE = "failed.json"
STDOUT_FILE = "stdout.txt"
JOB_FILE = "job.json"
_CHECKPOINT = re.compile(r"model\.pth\.tar-(\d+)$")


def last_checkpoint(save_dir):
    """The checkpoint of the highest epoch under ``<save_dir>/*/model.pth.tar-<epoch>`` ('' if none)."""
    best, best_epoch = "", -1
    for path in glob.glob(osp.join(save_dir, "*", "model.pth.tar-*")):
        match = _CHECKPOINT.search(path)
        if match and int(match.group(1)) > best_epoch:
            best, best_epoch = path, int(match.group(1))
    return best


def read_result(out_dir):
    """The ``result.json`` of a job directory, or None when the job has not finished."""
    path = osp.join(out_dir, RESULT_FILE)
    if not osp.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, obj):
    """``obj`` as indented, key-sorted JSON at ``path``, written atomically."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
