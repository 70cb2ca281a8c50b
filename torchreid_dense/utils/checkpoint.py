"""Reading checkpoint files safely: the one home of ``torch.load(weights_only=True)`` on a checkpoint and of
removing DDP / DataParallel's ``module.`` prefix (used by the engines, SAN's step-2 initialisation and export)."""
import os.path as osp

import torch

__all__ = ["CheckpointError", "read_checkpoint", "model_state_of", "read_model_state"]


class CheckpointError(ValueError):
    """A checkpoint file cannot be read (missing, corrupt, or holds pickled objects)."""


def read_checkpoint(path, what="checkpoint", hint=""):
    """Load a checkpoint file with ``weights_only=True`` onto the CPU.

    Args:
        path (str): the file.
        what (str): how the errors call the file (``'checkpoint'``, ``'SAN-PG checkpoint'``, ...).
        hint (str): appended to the missing-file message (what to do instead).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is not a readable checkpoint (names the file and the reason).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f"{what} '{path}' does not exist{hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... by cause
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"cannot read {what} '{path}' with torch.load(weights_only=True): {first}. A truncated file "
            "(killed while written by a tool without atomic saves) or a file holding pickled Python objects "
            "(e.g. a NumPy rank1 from torchreid's own save_checkpoint) cannot be loaded safely; use a "
            "checkpoint written by torchreid_dense"
        ) from None


def model_state_of(checkpoint):
    """The model weights of a checkpoint dict (torchreid's ``state_dict`` key, or a bare state dict),
    without DDP / DataParallel's ``module.`` prefix."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("the checkpoint holds no model state_dict (a dict of tensors under 'state_dict')")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}


def read_model_state(path, what="checkpoint", hint=""):
    """``(checkpoint dict, model weights)`` of checkpoint file ``path``: :func:`read_checkpoint` then
    :func:`model_state_of`, every error naming the file."""
    checkpoint = read_checkpoint(path, what, hint)
    try:
        return checkpoint, model_state_of(checkpoint)
    except CheckpointError as err:
        raise CheckpointError(f"{what} '{path}': {err}") from None
