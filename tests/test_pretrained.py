"""ImageNet weights offline: one clear error when the download fails, or a local file (model.pretrained_path)."""
import os.path as osp
import urllib.error

import pytest
import torch
import torchvision

import torchreid_dense  # noqa: F401  (registers the models)
from torchreid_dense import compat
from torchreid_dense.config import get_default_config
from torchreid_dense.engine.launch import cli
from torchreid_dense.models import build_model_from_config
from torchreid_dense.models.pretrained import PretrainedWeightsError, imagenet_resnet

PLUGIN_MODELS = {"dsa_reid": "resnet50", "dsa_reid_r18": "resnet18", "san": "resnet50", "san_r18": "resnet18",
                 "san_pg": "resnet50", "san_pg_r18": "resnet18"}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch hub cache and a network that refuses every download."""
    calls = []

    def refuse(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return calls


@pytest.mark.parametrize("name", sorted(PLUGIN_MODELS))
def test_offline_download_names_the_file_the_folder_and_the_alternatives(name, offline, tmp_path):
    arch = PLUGIN_MODELS[name]
    url = torchvision.models.get_model_weights(arch).IMAGENET1K_V1.url
    with pytest.raises(PretrainedWeightsError) as err:
        compat.models.build_model(name, num_classes=5, pretrained=True)
    msg = str(err.value)
    assert offline == [url]  # the real torch hub path was taken, and failed at the download
    assert f"'{osp.basename(url)}'" in msg and osp.join(str(tmp_path), "torch_home", "hub", "checkpoints") in msg
    assert "model.pretrained False" in msg and "model.pretrained_path" in msg and "URLError" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no urllib traceback chained


def test_cli_reports_the_offline_error_in_one_line(offline, market_layout, tmp_path, capsys):
    """tools/main.py: a user error (exit 2, ``error: ...``), not a traceback."""
    root = market_layout[0]
    code = cli(["data.root", root, "model.name", "dsa_reid_r18", "use_gpu", "False",
                "data.sources", "['market1501']", "data.targets", "['market1501']", "data.height", "32",
                "data.width", "16", "data.workers", "0", "data.save_dir", str(tmp_path / "log"),
                "train.batch_size", "4", "sampler.num_instances", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "\nerror: DSA-reID MF-Stream (resnet18): the ImageNet weights of resnet18 could" in "\n" + err
    assert "Traceback" not in err and "resnet18-f37072fd.pth" in err


def _reference_state(arch, seed):
    torch.manual_seed(seed)
    return torchvision.models.__dict__[arch](weights=None).state_dict()


@pytest.mark.parametrize("name,encoder", [("dsa_reid_r18", lambda m: m.mf_stream.backbone[0]),
                                          ("san_r18", lambda m: m.encoder.conv1),
                                          ("san_pg_r18", lambda m: m.encoder.conv1)])
def test_pretrained_path_loads_the_local_file(name, encoder, offline, tmp_path):
    state = _reference_state("resnet18", seed=3)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, path)
    cfg = get_default_config()
    cfg.merge_from_list(["model.name", name, "model.pretrained_path", str(path), "use_gpu", "False"])
    model, _ = build_model_from_config(cfg, num_classes=5)
    assert torch.equal(encoder(model).weight, state["conv1.weight"])
    assert offline == []  # nothing was downloaded


def test_pretrained_path_layer3_and_bn_buffers_come_from_the_file(tmp_path):
    state = _reference_state("resnet18", seed=4)
    state["bn1.running_mean"] = torch.arange(64, dtype=torch.float32)
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": state}, path)  # a checkpoint dict with 'state_dict' works too
    net = imagenet_resnet("resnet18", str(path))
    got = net.state_dict()
    for key in ("layer3.1.conv2.weight", "bn1.running_mean", "layer4.0.downsample.1.weight"):
        assert torch.equal(got[key], state[key]), key


def test_pretrained_path_of_another_backbone_or_missing_file_is_explained(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(_reference_state("resnet50", seed=0), path)
    with pytest.raises(PretrainedWeightsError, match=r"resnet50.pth' does not fit the ResNet backbone: .*of another "
                                                     r"shape \(e\.g\. layer1\.0\.conv1\.weight \(64, 64, 1, 1\)"):
        imagenet_resnet("resnet18", str(path))
    with pytest.raises(PretrainedWeightsError, match=r"'.*nowhere.pth' \(model.pretrained_path\) does not exist"):
        imagenet_resnet("resnet18", str(tmp_path / "nowhere.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(PretrainedWeightsError, match=r"cannot read '.*junk.pth' as a PyTorch state dict"):
        imagenet_resnet("resnet18", str(tmp_path / "junk.pth"))


def test_corrupt_cached_file_is_named(offline, tmp_path):
    url = torchvision.models.get_model_weights("resnet18").IMAGENET1K_V1.url
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / osp.basename(url)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")
    with pytest.raises(PretrainedWeightsError, match=r"in .*resnet18-f37072fd.pth cannot be read .*delete it"):
        imagenet_resnet("resnet18", True, what="test")


def test_stock_model_offline_and_local_file(offline, tmp_path):
    cfg = get_default_config()
    cfg.merge_from_list(["model.name", "resnet18", "use_gpu", "False"])
    with pytest.raises(PretrainedWeightsError, match=r"torchreid model 'resnet18': .*'resnet18-5c106cde.pth'.*"
                                                     r"model.pretrained False"):
        build_model_from_config(cfg, num_classes=5)
    state = _reference_state("resnet18", seed=5)
    torch.save(state, tmp_path / "r18.pth")
    cfg.merge_from_list(["model.pretrained_path", str(tmp_path / "r18.pth")])
    model, _ = build_model_from_config(cfg, num_classes=5)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])


def test_the_file_put_where_the_message_says_is_used_offline(offline, tmp_path):
    """Following the error's advice works: the file in torch hub's checkpoints folder loads without network."""
    url = torchvision.models.get_model_weights("resnet18").IMAGENET1K_V1.url
    state = _reference_state("resnet18", seed=6)
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / osp.basename(url)
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    model = compat.models.build_model("san_r18", num_classes=5, pretrained=True)
    assert torch.equal(model.encoder.conv1.weight, state["conv1.weight"]) and offline == []
