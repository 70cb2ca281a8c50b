"""Registration into torchreid: every name is found by torchreid's own lookups; registering is idempotent and is
the only change importing the plugin makes to torchreid."""
import contextlib
import importlib
import io
import json
import re
import shutil
import subprocess
import sys

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


# torchreid's objects the plugin uses (grep 'compat.' in torchreid_dense/): each must be in the snapshot below.
TOUCHED = (
    f"{compat.PACKAGE}.data.datasets.dataset.read_image",  # the module ImageDataset reads images through
    "torchreid.utils.read_image",
    "torchreid.data.ImageDataset", "torchreid.data.ImageDataManager", "torchreid.data.register_image_dataset",
    "torchreid.data.datasets.init_image_dataset", "torchreid.data.sampler.build_train_sampler",
    "torchreid.data.datasets.image.Market1501", "torchreid.data.datasets.image.CUHK03",
    "torchreid.engine.Engine", "torchreid.engine.ImageSoftmaxEngine", "torchreid.engine.ImageTripletEngine",
    "torchreid.engine.Engine.run", "torchreid.engine.Engine.train", "torchreid.engine.Engine.test",
    "torchreid.engine.Engine._evaluate", "torchreid.engine.Engine.extract_features",
    "torchreid.engine.Engine.parse_data_for_train", "torchreid.engine.Engine.parse_data_for_eval",
    "torchreid.engine.Engine.save_model", "torchreid.engine.ImageSoftmaxEngine.forward_backward",
    "torchreid.engine.ImageTripletEngine.forward_backward", "torchreid.engine.ImageTripletEngine.__init__",
    "torchreid.models.build_model", "torchreid.models.show_avai_models",
    "torchreid.losses.CrossEntropyLoss", "torchreid.metrics.accuracy", "torchreid.metrics.evaluate_rank",
    "torchreid.metrics.compute_distance_matrix", "torchreid.optim.build_optimizer",
    "torchreid.optim.build_lr_scheduler", "torchreid.utils.set_random_seed", "torchreid.utils.AverageMeter",
    "torchreid.utils.MetricMeter", "torchreid.utils.load_pretrained_weights",
    "torchreid.utils.visualize_ranked_results",
)

# In a fresh interpreter: every public attribute of every torchreid module (and of every class torchreid
# defines) by identity before `import torchreid_dense`, compared after; the two name tables may only grow.
_IDENTITY_SCRIPT = r'''
import inspect, json, sys, warnings
warnings.filterwarnings("ignore")
import torchreid

PACKAGE = sys.argv[2]  # where torchreid keeps its modules (compat.PACKAGE): torchreid.reid or torchreid
TABLES = {f"{PACKAGE}.models.__model_factory", f"{PACKAGE}.data.datasets.__image_datasets"}

def snapshot():
    objects = {}
    for modname, module in list(sys.modules.items()):
        if not modname.startswith("torchreid") or module is None:
            continue
        for name, value in list(vars(module).items()):
            if name.startswith("__") and f"{modname}.{name}" not in TABLES:
                continue
            objects[f"{modname}.{name}"] = value
            if inspect.isclass(value) and value.__module__.startswith("torchreid"):
                for attr, member in vars(value).items():
                    objects[f"{modname}.{name}.{attr}"] = member
    return objects

def resolve(dotted):
    obj, parts = torchreid, dotted.split(".")[1:]
    for part in parts[:-1]:
        obj = getattr(obj, part)
    return vars(obj)[parts[-1]] if inspect.isclass(obj) else getattr(obj, parts[-1])

touched = json.loads(sys.argv[1])
before = snapshot()
ids_before = {id(v) for v in before.values()}
missing = [t for t in touched if id(resolve(t)) not in ids_before]
tables = {k: dict(before[k]) for k in TABLES}
import torchreid_dense  # noqa: F401
after = snapshot()
changed = sorted(k for k, v in before.items() if k not in after or after[k] is not v)
table_changes = sorted(f"{k}[{name!r}]" for k, old in tables.items() for name, cls in old.items()
                       if after[k].get(name) is not cls)
grown = {k: sorted(set(after[k]) - set(old)) for k, old in tables.items()}
print(json.dumps({"checked": len(before), "missing": missing, "changed": changed, "table_changes": table_changes,
                  "grown": grown}))
'''


def identity_check(package=compat.PACKAGE, env=None):
    """Run the identity script in a fresh interpreter (``env``: e.g. a PYTHONPATH with another torchreid layout)."""
    touched = [t.replace(f"{compat.PACKAGE}.", f"{package}.", 1) for t in TOUCHED]
    done = subprocess.run([sys.executable, "-c", _IDENTITY_SCRIPT, json.dumps(touched), package], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_plugin_changes_nothing_in_torchreid_but_its_two_name_tables():
    result = identity_check()
    assert result["missing"] == []  # every object the plugin uses is among those compared
    assert result["checked"] > 1000
    assert result["changed"] == []
    assert result["table_changes"] == []
    grown = result["grown"]
    assert set(grown[f"{compat.PACKAGE}.models.__model_factory"]) == set(MODELS.names())
    assert set(grown[f"{compat.PACKAGE}.data.datasets.__image_datasets"]) == set(DATASETS.names())


def test_plugin_data_sets_name_a_truncated_image(market_layout, tmp_path):
    from torchreid_dense.data.datasets import SafeImageReading

    root, data_dir, paths = market_layout
    # a partial re-ID set (the plugin's own) and a DSAP wrapper of torchreid's Market-1501 over the same kind of file
    partial = tmp_path / "partial" / "partial_reid"
    for sub in ("partial_body_images", "whole_body_images"):
        (partial / sub).mkdir(parents=True)
        for k, src in enumerate(paths[:2]):
            shutil.copy(src, partial / sub / f"{k + 1:03d}_01.jpg")
    query = compat.image_dataset_factory()["partial_reid"](root=str(tmp_path / "partial"), mode="query",
                                                           verbose=False)
    wrapped = compat.image_dataset_factory()["market1501_dsap"](root=root, mode="train", verbose=False)
    for dataset in (query, wrapped):
        path = dataset.data[0][0]
        data = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        with pytest.raises(compat.ImageReadError, match=re.escape(path) + r": cannot read the image .*truncated"):
            dataset[0]
    # every data set the plugin registers reads with the plugin's reader; torchreid's keep torchreid's
    for name, cls in DATASETS.items():
        assert issubclass(cls, SafeImageReading), name
    assert compat.STOCK_IMAGE_DATASETS["market1501"].__getitem__ is compat.ImageDataset.__getitem__
