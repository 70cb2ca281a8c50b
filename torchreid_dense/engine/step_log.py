"""The per-step loss log ``<save_dir>/train_losses.jsonl`` (rank 0) and a step's summary as Python floats.

One JSON object per optimisation step: ``step`` (global, 1-based), ``epoch``, ``batch`` (0-based) and the
step's summary (``loss``, the unweighted loss components, extras such as ``acc``). The file is opened once
per run and flushed after every record, so a run killed with SIGKILL keeps every step it finished; a
resumed run first drops the steps after its checkpoint (:func:`truncate_step_log`), which it redoes, and any
record a failed write cut short.
"""
import json
import os
import os.path as osp

import torch

from ..utils import distributed as du
from .hooks import HookBase

__all__ = ["LOSS_LOG", "StepLog", "as_floats", "truncate_step_log"]

LOSS_LOG = "train_losses.jsonl"  # one JSON object per optimisation step (rank 0)


def as_floats(summary):
    """``summary`` (name -> tensor or number) as name -> Python float, in the same order.

    The tensors (detached scalars, on one device) are read back together: one device sync per step.
    """
    tensors = [v for v in summary.values() if isinstance(v, torch.Tensor)]
    if tensors:
        device = tensors[0].device
        values = iter(torch.stack([v.detach().reshape(()).to(device, torch.float64) for v in tensors]).tolist())
    return {k: next(values) if isinstance(v, torch.Tensor) else float(v) for k, v in summary.items()}


def truncate_step_log(save_dir, global_step):
    """Drop the records of ``<save_dir>/train_losses.jsonl`` after ``global_step`` (a resumed run redoes them)."""
    path = osp.join(save_dir, LOSS_LOG)
    if not (du.is_main_process() and osp.isfile(path)):
        return
    keep, damaged = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                step = json.loads(line)["step"]
            except (ValueError, KeyError, TypeError):
                damaged += 1  # a record cut short (a full disk, a crash mid-write): the resumed run goes on without it
                continue
            if step <= global_step:
                keep.append(line if line.endswith("\n") else line + "\n")
    if damaged:
        print(f"=> {path}: dropped {damaged} damaged line(s) (a write cut short, e.g. by a full disk); "
              f"the steps after {global_step} are redone")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(keep)


class StepLog(HookBase):
    """Appends each step's record to ``<trainer.save_dir>/train_losses.jsonl`` (rank 0, when ``save_dir`` is set).

    The file is opened at the first record of a run, flushed after each record and closed when the run ends.
    """

    def __init__(self):
        self._file = None

    def after_step(self, step):
        t = self.trainer
        if not (t.save_dir and du.is_main_process()):
            return
        path = osp.join(t.save_dir, LOSS_LOG)
        if self._file is None or self._file.name != path:
            self.after_train()
            os.makedirs(t.save_dir, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")
        record = {"step": t.global_step, "epoch": t.epoch, "batch": t.batch_idx}
        record.update(step.summary)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def after_train(self):
        if self._file is not None:
            self._file.close()
            self._file = None
