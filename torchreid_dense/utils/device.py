"""Where training runs: the GPU switch, tensors onto the device, the model under a parallel wrapper."""
import torch

__all__ = ["resolve_use_gpu", "resolve_device", "to_device", "unwrap"]


def resolve_use_gpu(use_gpu):
    """``use_gpu`` (the config's request) and a CUDA GPU is present: the one place that decides GPU or CPU."""
    return bool(use_gpu) and torch.cuda.is_available()


def resolve_device(requested=None):
    """The torch device of a tool's ``--device``: ``requested``, else ``cuda`` when a GPU is usable, else ``cpu``.

    Raises:
        ValueError: a CUDA device was asked for but torch sees no usable GPU (no NVIDIA driver, a CPU-only
            torch build, or CUDA_VISIBLE_DEVICES hiding it).
    """
    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(f"--device {requested}: not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {requested}: torch finds no usable CUDA GPU here (no NVIDIA driver, a CPU-only "
                         "torch build or CUDA_VISIBLE_DEVICES hiding it); pass --device cpu or leave --device out")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                         f"numbered from 0")
    return str(device)


def to_device(tensors, use_gpu=False, channels_last=False):
    """``tensors`` on the GPU when ``use_gpu`` (None stays None); 4-D float batches channels-last when asked.

    Returns:
        tuple: the tensors in the given order.
    """
    out = []
    for t in tensors:
        if t is not None:
            if use_gpu:
                t = t.cuda(non_blocking=True)
            if channels_last and t.dim() == 4 and t.is_floating_point():
                t = t.contiguous(memory_format=torch.channels_last)
        out.append(t)
    return tuple(out)


def unwrap(model):
    """The model under ``nn.DataParallel`` / ``DistributedDataParallel``."""
    return getattr(model, "module", model)
