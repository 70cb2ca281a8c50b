"""Registration into torchreid: every name is found by torchreid's own lookups; registering is idempotent."""
import importlib
import io
import contextlib

import pytest

import torchreid_dense
from torchreid_dense import compat
from torchreid_dense.registry import DATASETS, MODELS, Registry, register


def snapshot():
    return dict(compat.model_factory()), dict(compat.image_dataset_factory())


def test_every_registered_name_is_visible_to_torchreid():
    models, datasets = snapshot()
    assert MODELS.names() and DATASETS.names()
    for name in MODELS.names():
        assert models[name] is MODELS.get(name)
    for name in DATASETS.names():
        assert datasets[name] is DATASETS.get(name)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        compat.models.show_avai_models()
    for name in ("dsa_reid", "dsa_reid_r18", "san", "san_r18", "san_pg", "san_pg_r18"):
        assert f"'{name}'" in out.getvalue()
    for name in ("market1501_dsap", "cuhk03_dsap", "dukemtmcreid_dsap", "msmt17_dsap", "cuhk01_dsap",
                 "market1501_texture", "synthreid", "synthreid_dsap", "synthreid_texture"):
        assert name in datasets


def test_build_model_by_name_through_torchreid():
    model = compat.models.build_model("dsa_reid_r18", num_classes=5, pretrained=False, use_gpu=False)
    assert type(model).__module__.startswith("torchreid_dense.models")


def test_register_twice_and_reimport_change_nothing():
    before = snapshot()
    register()
    register()
    importlib.reload(importlib.import_module("torchreid_dense"))
    after = snapshot()
    assert before[0].keys() == after[0].keys() and before[1].keys() == after[1].keys()
    assert all(before[0][k] is after[0][k] for k in before[0])
    assert all(before[1][k] is after[1][k] for k in before[1])


def test_registry_rejects_duplicates_and_lists_known_names():
    reg = Registry("widget")
    reg.register("a", obj=int)
    reg.register("a", obj=int)  # same object again is a no-op
    with pytest.raises(KeyError, match="already registered"):
        reg.register("a", obj=float)
    with pytest.raises(KeyError, match=r"unknown widget 'b'.*\['a'\]"):
        reg.get("b")


def test_plugin_never_replaces_a_stock_model(monkeypatch):
    fake = Registry("model")
    fake.register("resnet50", obj=lambda **kw: None)
    monkeypatch.setattr(torchreid_dense.registry, "MODELS", fake)
    with pytest.raises(KeyError, match="will not replace a stock model"):
        register()
    assert compat.model_factory()["resnet50"] is not fake.get("resnet50")
