"""Checkpoints that resume exactly and load safely (``torch.load(weights_only=True)``).

A checkpoint is a plain dict of tensors, numbers, strings and containers (no pickled objects), so it
loads with ``weights_only=True``. torchreid's keys are kept (``state_dict``, ``epoch``, ``rank1``,
``optimizer``, ``scheduler``), so ``torchreid.utils.load_pretrained_weights`` and
``resume_from_checkpoint`` still read it; the plugin adds the rest of the training state:

================  =====================================================================
key               content
================  =====================================================================
state_dict        the model's weights (never with DDP's ``module.`` prefix)
epoch             epochs completed (torchreid's meaning: the epoch to resume at)
batch             batches of epoch ``epoch`` already trained (0 at an epoch boundary)
global_step       optimisation steps (re-ID batches) since the start of training
rank1             a Python float (torchreid's evaluator returns a NumPy scalar); 0 for SAN-PG
texture_l1        SAN-PG only, once evaluated: held-out texture L1 (normalised units; ``texture_l1_pixel``: [0, 1])
optimizer         ``optimizer.state_dict()``; ``scheduler`` likewise (or None)
models            the other registered models of the engine, ``{name: {state_dict, optimizer, scheduler}}``
grad_scaler       ``torch.amp.GradScaler.state_dict()`` ({} when fp16 is off)
sampler           the train batch sampler's position (see :mod:`torchreid_dense.engine.loader`)
rng               python / numpy / torch / cuda generator states (tensors and lists)
loader_rng        the train loader's own generator (its workers' seeds) as the next iterator over it draws from
engine            engine-specific counters (e.g. SAN's PIT interleaving position)
config            the merged yacs config, as YAML text
================  =====================================================================
"""
import random

import numpy as np
import torch

from ..utils.checkpoint import CheckpointError, model_state_of, read_checkpoint, read_model_state

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "read_checkpoint",
    "model_state_of",
    "read_model_state",
    "load_model_state",
    "load_weights",
    "rng_state",
    "set_rng_state",
]


class CheckpointMismatchError(ValueError):
    """A checkpoint's weights do not fit the model (other architecture or number of classes)."""


def _classifier_note(name, saved, wanted):
    """A sentence about a shape mismatch that looks like a different number of identities."""
    if saved.dim() >= 1 and saved.dim() == wanted.dim() and saved.shape[1:] == wanted.shape[1:]:
        return (f" -- '{name}' looks like a classifier: the checkpoint was trained on {saved.shape[0]} identities, "
                f"the model is built for {wanted.shape[0]} (data.sources differ?)")
    return ""


def load_model_state(model, state, source="<checkpoint>"):
    """Copy ``state`` into ``model`` (unwrapped from DDP) and fail with what differs.

    Every key must match by name and shape. The error lists the missing and unexpected keys and
    each shape mismatch, calling out classifier layers whose first dimension (the number of
    training identities) differs.

    Raises:
        CheckpointMismatchError: naming ``source``.
    """
    model = getattr(model, "module", model)
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in state]
    unexpected = [k for k in state if k not in wanted]
    shapes = [(k, state[k], wanted[k]) for k in wanted if k in state and state[k].shape != wanted[k].shape]
    if missing or unexpected or shapes:
        lines = [f"checkpoint '{source}' does not fit the model ({type(model).__name__}):"]
        if shapes:
            lines.append(f"  {len(shapes)} shape mismatch(es):")
            lines += [f"    {k}: checkpoint {tuple(s.shape)} vs model {tuple(w.shape)}{_classifier_note(k, s, w)}"
                      for k, s, w in shapes[:10]]
        if missing:
            lines.append(f"  {len(missing)} key(s) of the model missing from the checkpoint: {missing[:8]}"
                         + (" ..." if len(missing) > 8 else ""))
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected key(s) in the checkpoint: {unexpected[:8]}"
                         + (" ..." if len(unexpected) > 8 else ""))
        lines.append("  check model.name and its options (and data.sources for the classifier) against the run "
                     "that wrote the checkpoint")
        raise CheckpointMismatchError("\n".join(lines))
    model.load_state_dict(state, strict=True)


def load_weights(model, path):
    """``model.load_weights``: the weights of checkpoint ``path`` into ``model``, strictly (see
    :func:`load_model_state`); returns the checkpoint dict."""
    checkpoint, state = read_model_state(path)
    load_model_state(model, state, path)
    return checkpoint


def rng_state():
    """Python, NumPy, torch (and CUDA) generator states as tensors / plain containers."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
