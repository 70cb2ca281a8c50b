"""Mixed precision of a training step: autocast of the forward pass, the fp16 GradScaler, the finiteness guard.

The losses run in fp32 whatever ``amp`` is (every loss casts its inputs); only the model's forward pass
runs under autocast. Before a step is applied the loss must be finite on every rank, otherwise
:class:`NonFiniteLossError` stops training with the step, the loss components and the last good
checkpoint.
"""
import contextlib

import torch

from ..utils import distributed as du

__all__ = ["AMP_DTYPES", "NonFiniteLossError", "Precision", "all_finite"]

AMP_DTYPES = {"": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite; training stops before the step is applied."""


def _scalar(value):
    """A loss value (tensor or number) as a Python float (for the error message only)."""
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def all_finite(loss):
    """Whether ``loss`` is finite on every DDP rank (one device sync; a collective under DDP)."""
    finite = torch.isfinite(loss.detach()).all().float()
    if du.is_distributed():
        finite = du.reduce_mean(finite).cpu()  # < 1 when some rank is not finite
    return float(finite) >= 1.0


class Precision:
    """The precision of one engine's steps.

    Args:
        amp (str): ``''`` (fp32), ``'bf16'`` (autocast, CPU or GPU) or ``'fp16'`` (autocast with a
            GradScaler; GPU only: CPU fp16 kernels are missing for many ops).
        use_gpu (bool): the engine trains on the GPU.
    """

    def __init__(self, amp="", use_gpu=False):
        if amp not in AMP_DTYPES:
            raise ValueError(f"train.amp must be one of {sorted(AMP_DTYPES)}; got '{amp}'")
        if amp == "fp16" and not use_gpu:
            raise ValueError("train.amp 'fp16' needs a CUDA GPU (fp16 autocast and its GradScaler are not supported "
                             "for every op on the CPU); use train.amp 'bf16' on the CPU")
        self.amp = amp
        self.device_type = "cuda" if use_gpu else "cpu"
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")

    def autocast(self):
        """Autocast context of ``amp`` (a no-op context when off). Wrap the model call only."""
        dtype = AMP_DTYPES[self.amp]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=dtype)

    @staticmethod
    def check_finite(loss, components, epoch, batch, global_step, last_checkpoint, what="training"):
        """Raise :class:`NonFiniteLossError` when ``loss`` is NaN/Inf on any rank (before any update).

        ``epoch``, ``batch`` and ``global_step`` are 0-based counts of the step being checked; the message
        names them 1-based, with the loss ``components`` and ``last_checkpoint`` (None: none yet).
        """
        if all_finite(loss):
            return
        parts = ", ".join(f"{k}={_scalar(v):.6g}" for k, v in components.items()) or "-"
        last = last_checkpoint or "none written yet (set train.checkpoint_every N to save mid-epoch)"
        raise NonFiniteLossError(
            f"non-finite {what} loss {float(loss.detach()):.6g} at epoch {epoch + 1}, step "
            f"{batch + 1} of the epoch (global step {global_step + 1}); loss components: "
            f"{parts}. The step was not applied. Last good checkpoint (kept intact): {last}. Lower train.lr, "
            "check the data of this batch, or use train.amp '' if mixed precision overflows; resume with "
            "model.resume <checkpoint>"
        )

    def step(self, loss, optimizer):
        """zero_grad / backward / step of ``optimizer`` (through the GradScaler under fp16)."""
        optimizer.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            optimizer.step()
