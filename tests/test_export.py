"""Export of the inference graph (issue 7, "Export for deployment"): ONNX / TorchScript, checks, CLI."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import torchreid_dense  # noqa: F401  (registers the models)
from torchreid_dense import compat
from torchreid_dense.engine.launch import load_config
from torchreid_dense.export import (
    BATCH_AXIS,
    INPUT_NAME,
    OUTPUT_NAME,
    ExportCheckError,
    check_export,
    export_model,
    export_onnx,
    infer_num_classes,
    inference_graph,
    read_state_dict,
)
from torchreid_dense.models import build_model_from_config
from torchreid_dense.registry import MODELS
from torchreid_dense.utils.io import atomic_torch_save

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, "tools", "export.py")
H, W = 128, 64
TOL = 1e-4

# The tests load TorchScript files themselves; torch marks torch.jit deprecated.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning")


def _build(name, num_classes=5, **kwargs):
    torch.manual_seed(0)
    if name in MODELS:
        return MODELS.get(name)(num_classes=num_classes, pretrained=False, **kwargs)
    return compat.models.build_model(name, num_classes=num_classes, pretrained=False)


@pytest.fixture(scope="module")
def models():
    return {name: _build(name) for name in ("dsa_reid_r18", "san_r18")}


@pytest.fixture(scope="module")
def onnx_files(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    return {name: export_onnx(m, str(out / f"{name}.onnx"), H, W) for name, m in models.items()}


def _run_onnx(path, x):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {INPUT_NAME: x.numpy()})[0])


@pytest.mark.parametrize("name,dim", [("dsa_reid_r18", 1024), ("san_r18", 512)])
def test_onnx_matches_the_eval_feature_at_any_batch_size(models, onnx_files, name, dim):
    model = models[name]
    assert check_export(model, onnx_files[name], "onnx", H, W, batch_sizes=(1, 3)) < TOL
    # Independently of check_export: the model's own eval-mode output (the contract's test
    # feature), at a batch size neither the trace (2) nor the check used.
    x = torch.randn(5, 3, H, W, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.eval()(x)
    got = _run_onnx(onnx_files[name], x)
    assert got.shape == expected.shape == (5, dim)
    assert (got - expected).abs().max().item() < TOL
    graph = onnx.load(onnx_files[name]).graph
    assert [i.name for i in graph.input] == [INPUT_NAME]
    assert [o.name for o in graph.output] == [OUTPUT_NAME]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == BATCH_AXIS and [d.dim_value for d in dims[1:]] == [3, H, W]


@pytest.mark.parametrize("name", ["dsa_reid_r18", "san_r18"])
def test_torchscript_matches_pytorch_at_two_batch_sizes(models, tmp_path, name):
    model = models[name]
    path = export_model(model, str(tmp_path / f"{name}.pt"), "torchscript", H, W)
    assert osp.isfile(path) and not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # Against the inference graph, which the ONNX test above shows equals the eval-mode feature.
    assert check_export(model, path, "torchscript", H, W, batch_sizes=(1, 3)) < TOL


def _numel(params):
    return sum(p.numel() for p in params)


@pytest.mark.parametrize("name,training_only", [("dsa_reid_r18", "dsag_stream"), ("san_r18", "decoder")])
def test_onnx_holds_the_inference_weights_only(models, onnx_files, name, training_only):
    model = models[name]
    graph = inference_graph(model)
    exported = sum(int(np.prod(t.dims)) for t in onnx.load(onnx_files[name]).graph.initializer)
    graph_params = _numel(graph.parameters())
    graph_buffers = _numel(graph.buffers())
    # Eval-mode BatchNorm is folded into the convolutions: its 4 vectors per layer may vanish,
    # nothing else may; a constant (shape, index) or two may be added.
    bn_vectors = _numel(b for m in graph.modules() if isinstance(m, nn.BatchNorm2d) for b in (m.weight, m.bias))
    assert graph_params - bn_vectors <= exported <= graph_params + graph_buffers
    # The training-only part is far bigger than that slack, so the bound above would catch it.
    dropped = _numel(getattr(model, training_only).parameters())
    assert dropped > bn_vectors + graph_buffers
    assert _numel(model.parameters()) - graph_params >= dropped


def test_check_catches_a_graph_of_another_model(models, onnx_files):
    with pytest.raises(ExportCheckError, match=r"returns \(1, 512\).*PyTorch returns \(1, 1024\)"):
        check_export(models["dsa_reid_r18"], onnx_files["san_r18"], "onnx", H, W)


def test_a_stock_torchreid_model_exports(tmp_path):
    model = _build("resnet18")
    path = export_model(model, str(tmp_path / "resnet18.onnx"), "onnx", H, W)
    assert check_export(model, path, "onnx", H, W) < TOL
    x = torch.randn(2, 3, H, W, generator=torch.Generator().manual_seed(3))
    assert _run_onnx(path, x).shape == (2, 512)


def test_fused_test_feature_is_refused_with_the_fix():
    model = _build("dsa_reid_r18", feature="fused")
    with pytest.raises(ValueError, match="dsa.feature mf"):
        inference_graph(model)


def _write_config(tmp_path, base, *opts):
    cfg = load_config(osp.join(REPO, "configs", base), ["data.save_dir", str(tmp_path / "log"), *opts])
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "export.yaml"
    path.write_text(cfg.dump())
    return str(path), cfg


def _checkpoint(tmp_path, cfg, num_classes, name="model.pth.tar-1", seed=4):
    torch.manual_seed(seed)
    model = build_model_from_config(cfg, num_classes)[0].eval()
    path = str(tmp_path / name)
    atomic_torch_save({"state_dict": model.state_dict(), "epoch": 1, "rank1": 0.5}, path)
    return model, path


def test_num_classes_come_from_the_checkpoint_classifier(tmp_path):
    _, cfg = _write_config(tmp_path, "dsa_synth.yaml")
    model, path = _checkpoint(tmp_path, cfg, num_classes=7)
    state = read_state_dict(path)
    assert infer_num_classes(cfg, state) == 7
    without_classifiers = {k: v for k, v in state.items() if not k.startswith("classifiers.")}
    assert infer_num_classes(cfg, without_classifiers) is None


def test_cli_exports_the_checkpoint_and_reports_the_check(tmp_path):
    config, cfg = _write_config(tmp_path, "dsa_synth.yaml")
    model, weights = _checkpoint(tmp_path, cfg, num_classes=7)
    output = str(tmp_path / "out" / "dsa.onnx")
    proc = subprocess.run(
        [sys.executable, TOOL, "--config-file", config, "--weights", weights, "--format", "onnx",
         "--output", output, "test.batch_size", "10"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    diff_line = [line for line in lines if line.startswith("max abs difference vs PyTorch:")]
    assert len(diff_line) == 1 and float(diff_line[0].split()[5]) < TOL
    assert any(output in line and "7 classes" in line for line in lines)
    assert f"input  {INPUT_NAME} ['{BATCH_AXIS}', 3, {H}, {W}]" in lines
    assert f"output {OUTPUT_NAME} ['{BATCH_AXIS}', 1024]" in lines
    # The file holds the checkpoint's weights (not a fresh initialisation).
    x = torch.randn(3, 3, H, W, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(x)
    assert (_run_onnx(output, x) - expected).abs().max().item() < TOL


def _tool():
    spec = importlib.util.spec_from_file_location("export_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_torchscript_default_output_and_tolerance_exit_status(tmp_path, capsys):
    config, cfg = _write_config(tmp_path, "san_synth.yaml")
    model, weights = _checkpoint(tmp_path, cfg, num_classes=3)
    # A tolerance no export can meet: the check's verdict decides the exit status.
    status = _tool().main(["--config-file", config, "--weights", weights, "--format", "torchscript",
                           "--tolerance", "-1"])
    out, err = capsys.readouterr()
    default_output = str(tmp_path / "san_r18.pt")
    assert status == 1 and "differs from PyTorch" in err and default_output in err
    assert f"output {OUTPUT_NAME} ['{BATCH_AXIS}', 512]" in out.splitlines()
    x = torch.randn(2, 3, H, W, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(default_output)(x), model(x), atol=TOL, rtol=0)


def test_cli_missing_weights_is_a_clear_error(tmp_path, capsys):
    config, _ = _write_config(tmp_path, "dsa_synth.yaml")
    missing = str(tmp_path / "nowhere" / "model.pth.tar-9")
    status = _tool().main(["--config-file", config, "--weights", missing, "--format", "onnx"])
    err = capsys.readouterr().err
    assert status == 2
    assert f"weights file '{missing}' does not exist" in err and "--weights" in err
    assert not osp.exists(osp.dirname(missing))


def test_cli_weights_of_another_architecture_are_refused(tmp_path, capsys):
    config, _ = _write_config(tmp_path, "dsa_synth.yaml")
    _, san_cfg = _write_config(tmp_path / "san", "san_synth.yaml")
    _, weights = _checkpoint(tmp_path, san_cfg, num_classes=3)
    status = _tool().main(["--config-file", config, "--weights", weights, "--format", "onnx"])
    err = capsys.readouterr().err
    assert status == 2
    assert f"weights file '{weights}' does not fit the configured model DSAReID" in err
    assert "missing" in err and not osp.exists(tmp_path / "dsa_reid_r18.onnx")
