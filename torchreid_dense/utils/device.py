"""Where training runs: the GPU switch, tensors onto the device, the model under a parallel wrapper."""
import torch

__all__ = ["resolve_use_gpu", "to_device", "unwrap"]


def resolve_use_gpu(use_gpu):
    """``use_gpu`` (the config's request) and a CUDA GPU is present: the one place that decides GPU or CPU."""
    return bool(use_gpu) and torch.cuda.is_available()


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
