"""A pipeline step's record, ``step.json`` in its directory: the settings that make its output and whether it is
complete, so a rerun reuses, continues or refuses (never silently reuses output made otherwise)."""
import hashlib
import json
import os
import os.path as osp

import torch

from ..utils import distributed as du
from ..utils.io import atomic_write
from .checkpoint import model_state_of, read_checkpoint

__all__ = ["StepMismatchError", "STEP_FILE", "claim_step", "finish_step", "weights_digest"]

STEP_FILE = "step.json"  # in a step's directory: {"step", "settings", "complete", "outputs"}


class StepMismatchError(ValueError):
    """A step's directory holds output made with other settings than the ones asked for."""


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise StepMismatchError(f"{path} is not a readable step record ({err}); delete its directory to redo the "
                                "step") from None


def _write_json(path, obj):
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def _plain(settings):
    return json.loads(json.dumps(settings))  # tuples -> lists, as read back from step.json


def claim_step(directory, step, settings):
    """The record of ``step`` in ``directory`` if it was made with ``settings``; None (and a started record
    written) when there is none yet. Rank 0 checks and writes, the other ranks read it after.

    Raises:
        StepMismatchError: the directory holds this step made with other settings, or other files.
    """
    settings = _plain(settings)
    path = osp.join(directory, STEP_FILE)
    record = _check_record(directory, step, settings) if du.is_main_process() else None
    du.barrier()
    return record if du.is_main_process() else _read_json(path)


def _check_record(directory, step, settings):
    path = osp.join(directory, STEP_FILE)
    record = _read_json(path)
    if record is None:
        if osp.isdir(directory) and os.listdir(directory):
            raise StepMismatchError(
                f"{directory} is not empty but has no {STEP_FILE}: it was not made by this step ({step}); delete it "
                "or set san.steps_dir to another directory")
        _write_json(path, {"step": step, "settings": settings, "complete": False, "outputs": {}})
        return None
    before = record.get("settings", {})
    diff = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
    if diff:
        detail = "; ".join(f"{k}: {before.get(k)!r} there, {settings.get(k)!r} now" for k in diff)
        raise StepMismatchError(
            f"{directory} holds {step} made with other settings ({detail}). Delete {directory} to redo it (and "
            "the steps after it), set san.steps_dir to another directory, or go back to those settings")
    return record


def finish_step(directory, step, settings, **outputs):
    if du.is_main_process():
        _write_json(osp.join(directory, STEP_FILE),
                    {"step": step, "settings": _plain(settings), "complete": True, "outputs": _plain(outputs)})
    du.barrier()


def weights_digest(path):
    """SHA-1 of a checkpoint's weights (names, dtypes, shapes, values): the same for a re-saved copy."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model_state_of(read_checkpoint(path)).items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()
