"""Partial-REID and Partial-iLIDS on generated mock layouts."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

import torchreid_dense  # noqa: F401  (registers the data sets into torchreid)
from torchreid_dense import compat
from torchreid_dense.data.availability import DatasetNotFoundError, check_datasets_present
from torchreid_dense.data.datasets.partial import PartialiLIDS, PartialREID


def write_image(path, value, size=(24, 12)):
    os.makedirs(osp.dirname(path), exist_ok=True)
    array = np.full((size[0], size[1], 3), value, dtype=np.uint8)
    Image.fromarray(array).save(path)


def make_partial_reid(root, dirname="partial_reid", pids=(1, 2, 3), per_id=2):
    base = osp.join(root, dirname)
    for pid in pids:
        for k in range(1, per_id + 1):
            write_image(osp.join(base, "partial_body_images", f"{pid:03d}_{k:02d}.jpg"), 10 * pid)
            write_image(osp.join(base, "whole_body_images", f"{pid:03d}_{k:02d}.jpg"), 10 * pid + 5)
    # not an image: ignored
    open(osp.join(base, "partial_body_images", "readme.txt"), "w").close()
    return base


def make_partial_ilids(root, dirname="partial_ilids", pids=(4, 7, 9)):
    base = osp.join(root, dirname)
    for pid in pids:
        write_image(osp.join(base, "Probe", f"{pid:03d}.jpg"), pid)
        write_image(osp.join(base, "Gallery", f"{pid:03d}.jpg"), pid + 1)
    return base


def init(name, root, mode):
    return compat.data.datasets.init_image_dataset(name, root=root, mode=mode, verbose=False)


def test_partial_reid_query_partial_gallery_whole(tmp_path):
    base = make_partial_reid(str(tmp_path))
    query = init("partial_reid", str(tmp_path), "query")
    gallery = init("partial_reid", str(tmp_path), "gallery")
    assert isinstance(query, PartialREID)
    assert [(osp.relpath(p, base), pid, cam) for p, pid, cam, _ in query.query] == [
        ("partial_body_images/001_01.jpg", 1, 0), ("partial_body_images/001_02.jpg", 1, 0),
        ("partial_body_images/002_01.jpg", 2, 0), ("partial_body_images/002_02.jpg", 2, 0),
        ("partial_body_images/003_01.jpg", 3, 0), ("partial_body_images/003_02.jpg", 3, 0),
    ]
    assert [(osp.relpath(p, base), pid, cam) for p, pid, cam, _ in gallery.gallery][:2] == [
        ("whole_body_images/001_01.jpg", 1, 1), ("whole_body_images/001_02.jpg", 1, 1),
    ]
    assert query.data is query.query and gallery.data is gallery.gallery
    assert query.train == [] and query.num_train_pids == 0
    item = query[0]
    assert (item["pid"], item["camid"], item["impath"]) == (1, 0, query.query[0][0])
    assert np.asarray(item["img"]).shape == (24, 12, 3)


def test_partial_ilids_and_alternative_directory_name(tmp_path):
    make_partial_ilids(str(tmp_path), dirname="Partial_iLIDS")
    query = init("partial_ilids", str(tmp_path), "query")
    gallery = init("partial_ilids", str(tmp_path), "gallery")
    assert isinstance(query, PartialiLIDS)
    assert query.data_dir == osp.join(str(tmp_path), "Partial_iLIDS")
    assert [(pid, cam) for _, pid, cam, _ in query.query] == [(4, 0), (7, 0), (9, 0)]
    assert [(pid, cam) for _, pid, cam, _ in gallery.gallery] == [(4, 1), (7, 1), (9, 1)]


def test_evaluator_keeps_every_true_match(tmp_path):
    """Queries and gallery never share a camera, so torchreid's evaluator discards no match."""
    make_partial_reid(str(tmp_path), pids=(1, 2, 3, 4), per_id=1)
    query = init("partial_reid", str(tmp_path), "query").query
    gallery = init("partial_reid", str(tmp_path), "gallery").gallery
    q_pids = np.array([q[1] for q in query])
    g_pids = np.array([g[1] for g in gallery])
    q_cams = np.array([q[2] for q in query])
    g_cams = np.array([g[2] for g in gallery])
    distmat = (q_pids[:, None] != g_pids[None, :]).astype(np.float32)  # perfect retrieval
    cmc, mAP = compat.metrics.evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=4)
    assert cmc[0] == 1.0 and mAP == 1.0
    reversed_dist = 1.0 - distmat  # the true match ranks last among 4
    cmc, mAP = compat.metrics.evaluate_rank(reversed_dist, q_pids, g_pids, q_cams, g_cams, max_rank=4)
    assert list(cmc) == [0.0, 0.0, 0.0, 1.0] and mAP == pytest.approx(0.25)


def test_test_only_data_set_refuses_training(tmp_path):
    make_partial_reid(str(tmp_path))
    with pytest.raises(ValueError, match="partial_reid|test-only.*data.targets"):
        init("partial_reid", str(tmp_path), "train")


def test_missing_and_empty_layouts_are_explained(tmp_path):
    with pytest.raises(RuntimeError, match="is not found"):
        init("partial_ilids", str(tmp_path), "query")
    with pytest.raises(DatasetNotFoundError) as err:
        check_datasets_present(str(tmp_path), ["partial_ilids"])
    expected = osp.join(str(tmp_path), "partial_ilids")
    assert f"expected the directory '{expected}'" in str(err.value)
    assert f"{expected}/Probe" in str(err.value)
    os.makedirs(osp.join(str(tmp_path), "partial_ilids", "Probe"))
    os.makedirs(osp.join(str(tmp_path), "partial_ilids", "Gallery"))
    with pytest.raises(RuntimeError, match="no images in the query directory"):
        init("partial_ilids", str(tmp_path), "query")


def test_bad_file_name_names_the_file(tmp_path):
    base = make_partial_ilids(str(tmp_path))
    write_image(osp.join(base, "Probe", "probe_x.jpg"), 3)
    with pytest.raises(ValueError, match=r"probe_x\.jpg': cannot read the identity"):
        init("partial_ilids", str(tmp_path), "query")
