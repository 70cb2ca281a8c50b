"""Shared fixtures: small data-set layouts written by the tests themselves."""
import os
import os.path as osp
import tempfile

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# the plugin's caches (the file check's) go to a folder of this test session, not the user's cache directory
os.environ["TORCHREID_DENSE_CACHE"] = tempfile.mkdtemp(prefix="torchreid_dense_cache_")


def write_market_layout(root, num_ids=4, cams=(1, 2), per_cam=2, size=(32, 16), seed=0):
    """A Market-1501 directory (torchreid's layout and names) of random images; returns its data dir."""
    rng = np.random.default_rng(seed)
    data_dir = osp.join(root, "market1501", "Market-1501-v15.09.15")
    paths = []
    for split, pids in (("bounding_box_train", range(1, num_ids + 1)),
                        ("bounding_box_test", range(num_ids + 1, 2 * num_ids + 1)),
                        ("query", range(num_ids + 1, 2 * num_ids + 1))):
        os.makedirs(osp.join(data_dir, split), exist_ok=True)
        for pid in pids:
            for cam in cams:
                for k in range(per_cam if split != "query" else 1):
                    if split == "query" and cam != cams[0]:
                        continue
                    name = f"{pid:04d}_c{cam}s1_{k:06d}_{k:02d}.jpg"
                    arr = rng.integers(0, 256, size=size + (3,), dtype=np.uint8)
                    path = osp.join(data_dir, split, name)
                    Image.fromarray(arr).save(path, quality=95)
                    paths.append(path)
    return data_dir, paths


@pytest.fixture
def market_layout(tmp_path):
    data_dir, paths = write_market_layout(str(tmp_path))
    return str(tmp_path), data_dir, paths
