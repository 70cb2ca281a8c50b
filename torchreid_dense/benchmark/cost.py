"""Cost of a model's inference graph: parameters it uses, FLOPs and CPU latency per image.

The inference graph is ``model.inference_module()`` when the model has one (DSA-reID: the
MF-Stream; SAN: the encoder), else the eval-mode model itself. Parameters are counted over the
modules the eval forward actually calls, so a stock model's ID classifier (unused at test time)
is not counted. FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per
multiply-accumulate; GMAC = GFLOPs / 2).
"""
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import load_config

__all__ = [
    "inference_graph",
    "example_inputs",
    "used_parameters",
    "count_flops",
    "cpu_latency_ms",
    "measure_cost",
    "cost_from_config",
]


def inference_graph(model):
    """``model.inference_module()`` if the model defines it, else ``model``; in eval mode on the CPU."""
    graph = model.inference_module() if hasattr(model, "inference_module") else model
    return graph.cpu().eval()


def example_inputs(model, batch_size, height, width, dsap_size=32, seed=0):
    """Random eval inputs of ``model``: ``(imgs,)``, plus ``dsap`` when its eval feature is fused.

    A DSA-reID model with ``eval_needs_dsap`` (``dsa.feature`` fused) consumes DSAP-images at test time.
    """
    gen = torch.Generator().manual_seed(seed)
    imgs = torch.randn(batch_size, 3, height, width, generator=gen)
    if getattr(model, "eval_needs_dsap", False):
        return imgs, torch.randn(batch_size, 24, 3, dsap_size, dsap_size, generator=gen)
    return (imgs,)


@torch.no_grad()
def used_parameters(graph, inputs):
    """Number of parameters owned by the modules that ``graph(*inputs)`` calls (shared ones once)."""
    called = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: called.append(mod)) for m in graph.modules()]
    try:
        graph(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    seen = {}
    for module in called:
        for param in module.parameters(recurse=False):
            seen[id(param)] = param.numel()
    return sum(seen.values())


@torch.no_grad()
def count_flops(graph, inputs):
    """FLOPs of ``graph(*inputs)`` (2 per multiply-accumulate) by ``torch.utils.flop_counter``."""
    with FlopCounterMode(display=False) as counter:
        graph(*inputs)
    return int(counter.get_total_flops())


@torch.inference_mode()
def cpu_latency_ms(graph, inputs, warmup=2, min_iters=3, max_iters=20, budget_s=3.0):
    """Median wall time of ``graph(*inputs)`` per image (ms) on the CPU with the current thread setting.

    Runs ``warmup`` untimed calls, then at least ``min_iters`` timed calls and more while the
    total stays under ``budget_s`` seconds (at most ``max_iters``).
    """
    batch = inputs[0].shape[0]
    for _ in range(warmup):
        graph(*inputs)
    times = []
    start = time.perf_counter()
    while len(times) < max_iters and (len(times) < min_iters or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        graph(*inputs)
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times) / batch


def measure_cost(model, height, width, dsap_size=32, threads=1, batch_sizes=(1, 32), latency=True):
    """Parameters, FLOPs and CPU latency of ``model``'s inference graph at ``height`` x ``width``.

    Args:
        model (nn.Module): the model (any device; the graph is measured on the CPU).
        height, width (int): input size.
        threads (int): ``torch.set_num_threads`` during the latency measurement (0 = leave as is);
            the previous setting is restored.
        batch_sizes (tuple): batch sizes whose per-image latency is measured.
        latency (bool): measure latency (False: params and FLOPs only).

    Returns:
        dict: ``params`` (int), ``params_m``, ``params_all_m`` (every parameter of the graph),
        ``flops`` (per image), ``gflops``, ``gmacs``, ``latency_ms`` ({"bs<B>": ms per image}),
        ``threads`` (the number used), ``input_size`` ([H, W]).
    """
    graph = inference_graph(model)
    one = example_inputs(model, 1, height, width, dsap_size)
    params = used_parameters(graph, one)
    flops = count_flops(graph, one)
    result = {
        "params": params,
        "params_m": params / 1e6,
        "params_all_m": sum(p.numel() for p in graph.parameters()) / 1e6,
        "flops": flops,
        "gflops": flops / 1e9,
        "gmacs": flops / 2e9,
        "input_size": [int(height), int(width)],
        "latency_ms": {},
        "threads": int(threads) if threads else torch.get_num_threads(),
    }
    if latency:
        previous = torch.get_num_threads()
        if threads:
            torch.set_num_threads(int(threads))
        try:
            for bs in batch_sizes:
                inputs = example_inputs(model, bs, height, width, dsap_size)
                result["latency_ms"][f"bs{bs}"] = cpu_latency_ms(graph, inputs)
        finally:
            torch.set_num_threads(previous)
    return result


def cost_from_config(config_file, threads=1, latency=True, num_classes=10):
    """:func:`measure_cost` of the model a config file builds (``model.pretrained`` forced off).

    ``num_classes`` only sizes the ID classifiers, which are not part of the inference graph.
    """
    from ..models import build_model_from_config

    cfg = load_config(config_file, ["model.pretrained", "False", "use_gpu", "False"])
    model, _ = build_model_from_config(cfg, num_classes)
    return measure_cost(model, cfg.data.height, cfg.data.width, dsap_size=cfg.dense.dsap_size,
                        threads=threads, latency=latency)
