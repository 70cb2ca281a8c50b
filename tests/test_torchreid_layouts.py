"""The plugin on both torchreid layouts (issue 25): PyPI's 0.2.5 (modules under ``torchreid.reid``) and
deep-person-reid installed from its source (1.4.0, modules under ``torchreid``).

The source layout is rebuilt offline from the installed PyPI package: 0.2.5 repackaged deep-person-reid's
``torchreid/`` package as ``torchreid/reid/`` with absolute imports, so that tree with ``torchreid.reid`` rewritten
to ``torchreid`` is the source package. In a child process that sees only that layout as ``torchreid``, the test
runs what a source user runs: registration, ``build_model``, ``FeatureExtractor`` on a saved checkpoint and a
1-epoch ``tools/main.py`` job of each method on SynthReID tiny.
"""
import importlib
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest

from torchreid_dense import compat

from test_registry import identity_check

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
_REID_IMPORT = re.compile(r"\btorchreid\.reid\b")


def build_source_layout(dest):
    """``<dest>/torchreid``: deep-person-reid's package from the installed PyPI one; ``dest`` is what goes on
    PYTHONPATH (None when the installed torchreid already has the source layout)."""
    if compat.LAYOUT == "source":
        return None
    reid = osp.dirname(importlib.import_module(compat.PACKAGE).__file__)
    package = osp.join(dest, "torchreid")
    shutil.copytree(reid, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                path = osp.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                with open(path, "w", encoding="utf-8") as f:
                    f.write(_REID_IMPORT.sub("torchreid", text))
    return dest


@pytest.fixture(scope="module")
def source_env(tmp_path_factory):
    """The environment of a child process whose ``import torchreid`` is the source layout."""
    dest = build_source_layout(str(tmp_path_factory.mktemp("torchreid_source")))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if dest is not None:
        env["PYTHONPATH"] = os.pathsep.join([dest, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env, dest


def run_child(code, env):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_rebuilt_layout_is_deep_person_reids(source_env):
    env, dest = source_env
    out = run_child(
        "import json, torchreid; from torchreid_dense import compat; "
        "print(json.dumps([torchreid.__file__, compat.PACKAGE, compat.LAYOUT, compat.VERSION, "
        "torchreid.metrics.rank.__name__]))", env)
    path, package, layout, version, rank_module = json.loads(out.strip().splitlines()[-1])
    if dest is not None:
        assert path == osp.join(dest, "torchreid", "__init__.py")
        assert not osp.isdir(osp.join(dest, "torchreid", "reid"))
    assert (package, layout, version, rank_module) == ("torchreid", "source", "1.4.0", "torchreid.metrics.rank")


def test_registration_leaves_the_source_layout_untouched_but_its_two_tables(source_env):
    env, _ = source_env
    result = identity_check(package="torchreid", env=env)
    assert result["missing"] == [] and result["checked"] > 1000
    assert result["changed"] == [] and result["table_changes"] == []
    grown = result["grown"]
    assert {"dsa_reid", "san", "san_pg"} <= set(grown["torchreid.models.__model_factory"])
    assert {"synthreid", "market1501_dsap", "market1501_texture"} <= set(grown["torchreid.data.datasets.__image_datasets"])


def test_models_jobs_and_feature_extractor_on_the_source_layout(source_env, tmp_path):
    env, _ = source_env
    root = str(tmp_path / "data")
    tiny = ["use_gpu", "False", "data.root", root, "synth.preset", "tiny", "data.height", "32", "data.width", "16",
            "data.workers", "0", "train.batch_size", "16", "train.max_epoch", "1", "train.warmup_epochs", "0",
            "train.stepsize", "[1]", "test.batch_size", "64", "train.print_freq", "100"]
    jobs = {
        "dsa": ["configs/dsa_synth.yaml", "data.sources", "['synthreid_tiny_dsap']", "data.targets",
                "['synthreid_tiny']", "dense.dsap_size", "8"],
        "san": ["configs/san_synth.yaml", "data.sources", "['synthreid_tiny_texture']", "data.targets",
                "['synthreid_tiny']", "san.texture_size", "[24, 16]", "san.decoder_widths", "[32, 16, 16, 8]",
                "san.pit_batch_size", "8", "san.pg_max_epoch", "1", "san.pg_batch_size", "8", "san.pg_stepsize", "[1]"],
    }
    for method, (config, *opts) in jobs.items():
        save_dir = str(tmp_path / method)
        done = subprocess.run([sys.executable, "tools/main.py", "--config-file", config, *tiny, *opts,
                               "data.save_dir", save_dir], capture_output=True, text=True, env=env, cwd=REPO,
                              timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        log = open(osp.join(save_dir, "log.txt"), encoding="utf-8").read()
        assert re.search(r"synthreid_tiny: rank1 [0-9.]+, .*mAP [0-9.]+", log), log[-2000:]
        assert osp.isfile(osp.join(save_dir, "model", "model.pth.tar-1"))

    checkpoint = str(tmp_path / "dsa" / "model" / "model.pth.tar-1")
    out = run_child(f"""
import json, numpy as np, torch, torchreid, torchreid_dense
dsa = torchreid.models.build_model('dsa_reid', num_classes=10, pretrained=False)
san = torchreid.models.build_model('san', num_classes=10, pretrained=False)
dsa.eval(), san.eval()
with torch.no_grad():
    x = torch.rand(2, 3, 64, 32)
    shapes = [list(dsa(x).shape), list(san(x).shape)]
extractor = torchreid.utils.FeatureExtractor(model_name='dsa_reid_r18', model_path={checkpoint!r},
                                             image_size=(32, 16), device='cpu', verbose=False)
state = torch.load({checkpoint!r}, map_location='cpu', weights_only=True)['state_dict']
model = torchreid.models.build_model('dsa_reid_r18', num_classes=20, pretrained=False).eval()
model.load_state_dict(state)
images = [np.random.default_rng(k).integers(0, 256, (32, 16, 3), dtype=np.uint8) for k in range(3)]
feats = extractor(images)
x = torch.stack([extractor.preprocess(extractor.to_pil(im)) for im in images])
with torch.no_grad():
    same = bool(torch.allclose(feats, model(x), atol=1e-5))
print(json.dumps({{'shapes': shapes, 'feature': list(feats.shape), 'same': same}}))
""", env)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["shapes"] == [[2, 4096], [2, 2048]]
    assert result["feature"] == [3, 1024] and result["same"]  # every trained weight reached the extractor
