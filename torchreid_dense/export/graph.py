"""The exported graph: the model's inference module, its input and output names, the example input that
traces it."""
import torch

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "BATCH_AXIS", "inference_graph", "example_input"]

INPUT_NAME = "images"
OUTPUT_NAME = "features"
BATCH_AXIS = "batch"

# Batch size of the example input that traces the graph: not 1, so that no exporter can mistake
# the batch axis for a broadcastable constant.
_TRACE_BATCH = 2


def inference_graph(model):
    """The module to export: ``model.inference_module()`` when the model has one, else the model.

    The model is put in eval mode (the graph shares its parameters, so both are). Stock torchreid
    models return their feature in eval mode, so they are exported whole.

    Args:
        model (nn.Module): a torchreid or torchreid_dense model.

    Returns:
        nn.Module: ``images [B, 3, H, W] -> features [B, D]``, in eval mode.
    """
    model.eval()
    if getattr(model, "eval_needs_dsap", False):
        raise ValueError(
            f"{type(model).__name__} is configured with a fused test feature (dsa.feature "
            f"'{getattr(model, 'feature', '?')}'), which needs DSAP-images at test time; only the "
            "single-input MF-Stream graph is exported. Set dsa.feature mf (the paper's inference "
            "feature, Sec. 3.2.4) to export it."
        )
    inference_module = getattr(model, "inference_module", None)
    graph = inference_module() if callable(inference_module) else model
    return graph.eval()


def example_input(height, width, batch=_TRACE_BATCH):
    """A fixed random batch ``[batch, 3, height, width]`` (seed 0) that traces the graph."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, int(height), int(width), generator=generator)
