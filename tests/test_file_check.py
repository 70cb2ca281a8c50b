"""Bad files found before training, all at once (or dropped with data.skip_bad), and the check's cache."""
import os
import os.path as osp

import numpy as np
import pytest

import torchreid_dense  # noqa: F401  (registers the wrappers)
from torchreid_dense.data import DenseImageDataManager
from torchreid_dense.data import file_check as fc
from torchreid_dense.data.file_check import BadFilesError, check_datasets
from torchreid_dense.dense import sidecar_path, write_iuv
from torchreid_dense.engine.launch import cli
from torchreid_dense.utils.io import save_png
from test_bad_input import good_iuv  # noqa: E402  (a valid 32x16 IUV map, or of another size)


@pytest.fixture
def broken_market(market_layout, tmp_path):
    """The conftest Market layout with IUV sidecars; one train JPEG cut short, one train IUV PNG garbage."""
    root, data_dir, paths = market_layout
    ds_dir = osp.dirname(data_dir)
    for p in paths:
        write_iuv(sidecar_path(ds_dir, p), good_iuv())
    train = sorted(p for p in paths if "bounding_box_train" in p)
    with open(train[1], "r+b") as f:
        f.truncate(os.path.getsize(train[1]) // 2)
    garbage = sidecar_path(ds_dir, train[4])
    with open(garbage, "wb") as f:
        f.write(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return root, ds_dir, paths, train, [train[1], garbage]


def manager(root, cache_dir, **file_check):
    return DenseImageDataManager(root=root, sources="market1501_dsap", targets="market1501_dsap", height=32,
                                 width=16, batch_size_train=4, batch_size_test=4, workers=0, use_gpu=False,
                                 train_sampler="RandomIdentitySampler", num_instances=2,
                                 file_check=dict(cache_dir=str(cache_dir), progress=False, **file_check))


def test_both_bad_files_in_one_error_before_training(broken_market, tmp_path):
    root, ds_dir, paths, train, bad = broken_market
    before = sorted(os.listdir(ds_dir))
    with pytest.raises(BadFilesError) as err:
        manager(root, tmp_path / "cache")
    msg = str(err.value)
    assert msg.startswith("2 bad file(s) found before training") and "data.skip_bad True" in msg
    lines = msg.splitlines()[1:]
    assert len(lines) == 2
    assert lines[0].strip().startswith(f"{bad[0]}: cannot read the image") and "truncated" in lines[0]
    assert lines[1].strip().startswith(f"{bad[1]}: cannot read the IUV map")
    assert sorted(os.listdir(ds_dir)) == before  # nothing written into the data set
    assert len(os.listdir(tmp_path / "cache")) == 1  # the cache lives apart from it


def test_skip_bad_drops_and_counts_and_the_loader_never_meets_them(broken_market, tmp_path):
    root, ds_dir, paths, train, bad = broken_market
    dm = manager(root, tmp_path / "cache", skip_bad=True)
    report = dm.file_check
    assert [p for p, _ in report["bad"]] == bad
    assert report["dropped"] == {"Market1501DSAP (train)": 2}
    kept = [item[0] for item in dm.train_loader.dataset.data]
    assert len(kept) == len(train) - 2 and train[1] not in kept and train[4] not in kept
    seen = [p for batch in dm.train_loader for p in batch["impath"]]  # the rebuilt identity sampler
    assert seen and set(seen) <= set(kept)
    assert len(dm.test_loader["market1501_dsap"]["gallery"].dataset) == len(
        [p for p in paths if "bounding_box_test" in p])


def test_second_run_answers_from_the_cache_and_rereads_a_changed_file(broken_market, tmp_path):
    root, ds_dir, paths, train, bad = broken_market
    dm = DenseImageDataManager(root=root, sources="market1501_dsap", targets="market1501_dsap", height=32,
                               width=16, batch_size_train=4, workers=0, use_gpu=False, file_check=False)
    sets = dm.datasets()
    cache = str(tmp_path / "check.json")
    files = len(paths) * 2  # every image has its IUV map
    with pytest.raises(BadFilesError):
        check_datasets(sets, cache_file=cache, progress=False)
    first = check_datasets(sets, cache_file=cache, skip_bad=True, progress=False)
    assert (first["files"], first["decoded"], len(first["bad"])) == (files, 0, 2)  # all from the cache
    # a repaired IUV map (new size and mtime) is read again, alone; so is one of the wrong size
    write_iuv(bad[1], good_iuv())
    write_iuv(sidecar_path(ds_dir, train[6]), good_iuv(h=30))
    dm = DenseImageDataManager(root=root, sources="market1501_dsap", targets="market1501_dsap", height=32,
                               width=16, batch_size_train=4, workers=0, use_gpu=False, file_check=False)
    again = check_datasets(dm.datasets(), cache_file=cache, skip_bad=True, progress=False)
    assert again["decoded"] == 2
    assert [p for p, _ in again["bad"]] == [bad[0], sidecar_path(ds_dir, train[6])]
    assert "IUV map is 30x16 (HxW) but its image is 32x16" in again["bad"][1][1]


def test_worker_processes_give_the_same_answer(broken_market, tmp_path, monkeypatch):
    root, ds_dir, paths, train, bad = broken_market
    dm = DenseImageDataManager(root=root, sources="market1501_dsap", targets="market1501_dsap", height=32,
                               width=16, batch_size_train=4, workers=0, use_gpu=False, file_check=False)
    monkeypatch.setattr(fc, "_CHUNK", 3)  # several tasks for the two processes
    report = check_datasets(dm.datasets(), workers=2, cache_file=False, skip_bad=True, progress=False)
    # every file but the IUV map of the truncated image (an unreadable image's sidecars are not reached)
    assert report["decoded"] == 2 * len(paths) - 1 and [p for p, _ in report["bad"]] == bad


def test_texture_sidecars_are_checked_too(market_layout, tmp_path):
    root, data_dir, paths = market_layout
    ds_dir = osp.dirname(data_dir)
    for p in paths:
        save_png(sidecar_path(ds_dir, p, "textures"), np.full((24, 16, 3), 80, np.uint8))
    bad = sidecar_path(ds_dir, paths[2], "textures")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(BadFilesError, match=r"1 bad file\(s\).*\n  texture file '.*' is not a readable image"):
        DenseImageDataManager(root=root, sources="market1501_texture", targets="market1501", height=32, width=16,
                              workers=0, use_gpu=False, file_check=dict(progress=False))


def test_cli_stops_in_one_line_before_training(broken_market, tmp_path, capsys):
    root, ds_dir, paths, train, bad = broken_market
    code = cli(["data.root", root, "model.name", "resnet18", "model.pretrained", "False", "use_gpu", "False",
                "data.sources", "['market1501_dsap']", "data.targets", "['market1501']", "data.height", "32",
                "data.width", "16", "data.workers", "0", "data.save_dir", str(tmp_path / "log"),
                "data.check_cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and "\nerror: 2 bad file(s) found before training" in err and "Traceback" not in err
    assert bad[0] in err and bad[1] in err


def test_dsap_cache_is_built_after_the_check_and_its_arrays_are_checked(broken_market, tmp_path):
    root, ds_dir, paths, train, bad = broken_market
    kw = dict(root=root, sources="market1501_dsap", targets="market1501", height=32, width=16, workers=0,
              use_gpu=False, dense=dict(cache=True))
    with pytest.raises(BadFilesError, match=r"^2 bad file"):  # not the first IUV error while caching
        DenseImageDataManager(file_check=dict(progress=False), **kw)
    dm = DenseImageDataManager(file_check=dict(progress=False, skip_bad=True), **kw)
    train_set = dm.train_loader.dataset
    dsap_file, valid_file, cached_paths = train_set._cache_paths()
    assert len(cached_paths) == len(train) - 2 and np.load(dsap_file, mmap_mode="r").shape[0] == len(train) - 2
    with open(valid_file, "r+b") as f:
        f.truncate(100)  # a cut-off cache array
    with pytest.raises(BadFilesError, match=r"DSAP cache array is unreadable .*delete it and it is rebuilt"):
        check_datasets([train_set], cache_file=False, skip_bad=True, progress=False)
