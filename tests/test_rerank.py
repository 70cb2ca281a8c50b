"""torchreid_dense.metrics.rerank / rerank_features against torchreid's re_ranking, on random and adversarial inputs.

On CPU, ``rerank`` reproduces torchreid's float32 operations in their order, so its result is compared
for equality; ``rerank_features`` (distances computed per tile) and CUDA to 1e-5.
"""
import doctest

import numpy as np
import pytest
import torch

from torchreid_dense import compat
from torchreid_dense.metrics import evaluate_rank, rerank, rerank_features
from torchreid_dense.metrics import reranking as reranking_module
from torchreid_dense.metrics import rerank_kernel

TOL = 1e-5


def torchreid_rerank(qg, qq, gg, **kwargs):
    return compat.utils.re_ranking(qg, qq, gg, **kwargs)


def features(seed, num_q, num_g, dim=8, num_ids=None, duplicates=0):
    """Features (as tensors) with optional identity clusters and exact duplicates; and their pids / camids."""
    rng = np.random.default_rng(seed)
    n = num_q + num_g
    num_ids = num_ids or max(2, n // 6)
    pids = rng.integers(0, num_ids, n)
    centres = rng.standard_normal((num_ids, dim))
    f = (centres[pids] + 0.7 * rng.standard_normal((n, dim))).astype(np.float32)
    if duplicates:
        src, dst = rng.integers(0, n, duplicates), rng.integers(0, n, duplicates)
        f[dst], pids[dst] = f[src], pids[src]
    cams = rng.integers(0, 3, n)
    f = torch.from_numpy(f)
    return f[:num_q], f[num_q:], (pids[:num_q], pids[num_q:], cams[:num_q], cams[num_q:])


def distances(qf, gf, metric="euclidean"):
    d = compat.metrics.compute_distance_matrix
    return tuple(d(a, b, metric).numpy() for a, b in ((qf, gf), (qf, qf), (gf, gf)))


def quantised(dists, levels):
    """Distances rounded to ``levels`` values (symmetric, zero diagonals): ties everywhere, at every boundary."""
    top = max(float(d.max()) for d in dists)
    qg, qq, gg = (np.round(d / top * levels).astype(np.float32) for d in dists)
    qq, gg = np.minimum(qq, qq.T), np.minimum(gg, gg.T)
    np.fill_diagonal(qq, 0)
    np.fill_diagonal(gg, 0)
    return qg, qq, gg


def assert_matches_torchreid(dists, ids=None, **kwargs):
    ref = torchreid_rerank(*dists, **kwargs)
    ours = rerank(*dists, **kwargs)
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float32 and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)
    if ids is not None:
        cmc, mAP, = evaluate_rank(ours, *ids)
        cmc_t, mAP_t = evaluate_rank(ref, *ids)
        np.testing.assert_array_equal(cmc, cmc_t)
        assert mAP == mAP_t
    return ours, ref


# ---------------------------------------------------------------- against torchreid

@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("num_q,num_g,k1,k2", [(20, 80, 20, 6), (30, 60, 5, 3), (60, 25, 20, 6), (10, 12, 20, 6),
                                               (25, 70, 7, 1), (15, 40, 4, 30), (6, 8, 20, 6), (6, 8, 20, 30)])
def test_random_features_match_torchreid(seed, num_q, num_g, k1, k2):
    # q > g, k1 >= g, k1 + 1 >= q + g, k2 >= q + g, odd k1 (round(k1 / 2) is banker's rounding), no query expansion, k2 > k1 + 1
    qf, gf, ids = features(seed, num_q, num_g)
    ours, _ = assert_matches_torchreid(distances(qf, gf), ids, k1=k1, k2=k2, lambda_value=0.3)
    assert not np.allclose(ours, distances(qf, gf)[0])  # re-ranking changed something


@pytest.mark.parametrize("lambda_value", [0.0, 0.5, 1.0])
def test_lambda_extremes_match_torchreid(lambda_value):
    qf, gf, ids = features(7, 20, 60)
    assert_matches_torchreid(distances(qf, gf), ids, lambda_value=lambda_value)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("levels", [3, 8])
def test_tied_distances_match_torchreid(seed, levels):
    qf, gf, ids = features(seed, 25, 60)
    assert_matches_torchreid(quantised(distances(qf, gf), levels), ids, k1=6, k2=3)


@pytest.mark.parametrize("seed", range(3))
def test_duplicates_and_single_image_identities_match_torchreid(seed):
    # a third of the items are exact copies of others (distance 0 and identical rows); many pids occur once
    qf, gf, ids = features(seed, 20, 70, num_ids=60, duplicates=30)
    assert_matches_torchreid(distances(qf, gf), ids)
    assert_matches_torchreid(distances(qf, gf), ids, k1=4, k2=2)


def test_ties_follow_numpys_argsort_not_a_stable_order(monkeypatch):
    # the quantised inputs tie at the neighbourhood boundaries: a stable tie order gives other distances
    cases = []
    for seed in range(3):
        qf, gf, _ = features(seed, 25, 60)
        dists = quantised(distances(qf, gf), 4)
        cases.append((dists, torchreid_rerank(*dists, k1=6, k2=3)))
    for dists, ref in cases:
        np.testing.assert_array_equal(rerank(*dists, k1=6, k2=3), ref)
    stable = np.argsort
    monkeypatch.setattr(reranking_module.np, "argsort", lambda a: stable(a, kind="stable"))
    worst = max(float(np.abs(rerank(*dists, k1=6, k2=3) - ref).max()) for dists, ref in cases)
    assert worst > 1e-3


def test_torch_path_equals_kernel_path_and_torchreid(monkeypatch):
    # the path taken on GPU (torch ops only), on CPU: dense and from features, ties included
    qf, gf, ids = features(3, 30, 70, duplicates=10)
    dense, tied = distances(qf, gf), quantised(distances(qf, gf), 5)
    expected = [rerank(*dense), rerank(*tied, k1=6, k2=3), rerank_features(qf, gf).numpy()]
    monkeypatch.setattr(reranking_module, "_use_kernel", lambda device: False)
    got = [rerank(*dense, memory_budget=20000), rerank(*tied, k1=6, k2=3, memory_budget=20000),
           rerank_features(qf, gf, memory_budget=20000).numpy()]
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[1], torchreid_rerank(*tied, k1=6, k2=3))
    # from features the two paths compute the distances in differently shaped products (rounding)
    np.testing.assert_allclose(got[2], expected[2], rtol=0, atol=1e-6)


# ---------------------------------------------------------------- features, types, budgets

@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("budget", [2 ** 28, 20000, 3000])
def test_rerank_features_equals_torchreid_on_its_distances(metric, budget):
    # small budgets: many tiles (some smaller than a segment), chunks of a few rows
    qf, gf, ids = features(4, 30, 90)
    ref = torchreid_rerank(*distances(qf, gf, metric))
    ours = rerank_features(qf, gf, metric=metric, memory_budget=budget)
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(rerank_features(qf.double(), gf.double(), metric=metric).numpy(), ref, rtol=0,
                               atol=TOL)


def test_tensors_in_tensors_out_and_float64_float16_memmap_inputs(tmp_path):
    qf, gf, _ = features(5, 20, 50)
    dists = distances(qf, gf)
    ref = torchreid_rerank(*dists)
    out = rerank(*(torch.from_numpy(d) for d in dists))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), ref)
    # float64 and float16 inputs are squared in their own dtype first, as torchreid does
    for dtype in (np.float64, np.float16):
        cast = tuple(d.astype(dtype) for d in dists)
        np.testing.assert_array_equal(rerank(*cast), torchreid_rerank(*cast))
    gg = np.lib.format.open_memmap(str(tmp_path / "gg.npy"), mode="w+", dtype=np.float32, shape=dists[2].shape)
    gg[:] = dists[2]
    gg.flush()
    gg = np.load(str(tmp_path / "gg.npy"), mmap_mode="r")
    np.testing.assert_array_equal(rerank(dists[0], dists[1], gg), ref)


def test_memory_budget_and_chunking_do_not_change_results():
    qf, gf, _ = features(6, 35, 80)
    dists = distances(qf, gf)
    ref = rerank(*dists)
    for budget in (1, 5000, 60000):
        np.testing.assert_array_equal(rerank(*dists, memory_budget=budget), ref)


def test_errors_speak_to_the_user():
    qf, gf, _ = features(8, 10, 30)
    qg, qq, gg = distances(qf, gf)
    with pytest.raises(ValueError, match="g_g_dist"):
        rerank(qg, qq, gg[:-1, :-1])
    bad = qq.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="not all finite"):
        rerank(qg, bad, gg)
    with pytest.raises(ValueError, match="is 0"):
        rerank(np.zeros_like(qg), np.zeros_like(qq), np.zeros_like(gg))
    with pytest.raises(ValueError, match="k2"):
        rerank(qg, qq, gg, k2=0)
    with pytest.raises(ValueError, match="metric"):
        rerank_features(qf, gf, metric="manhattan")


def test_nearest_tracker_keeps_the_smallest_magnitudes_and_the_largest():
    if not rerank_kernel.available():
        pytest.skip("numba missing")
    rng = np.random.default_rng(0)
    n, size = 150, 7
    d = rng.standard_normal((n, n)).astype(np.float32)
    d[rng.random((n, n)) < 0.3] = 0.5  # ties
    d[:, 5] = -d[:, 5]
    for workers in (1, 2):
        tracker = rerank_kernel.NearestTracker(n, size, np.float32, workers=workers)
        # columns 0..99 from row blocks; columns 100.. from the transposed tiles' rows
        for r0 in range(0, n, 33):
            tracker.offer(d[r0:r0 + 33, :100], r0, 0)
            tracker.offer(np.ascontiguousarray(d[r0:r0 + 33, 100:].T), 100, r0, columns=False, rows=True)
        idx, mag, top = tracker.result()
        mags = np.sort(np.abs(d), axis=0)
        np.testing.assert_array_equal(np.sort(mag, axis=1), mags[:size].T)
        np.testing.assert_array_equal(np.abs(d)[idx, np.arange(n)[:, None]], mag)
        np.testing.assert_array_equal(top, mags[-1])
    nan = d.copy()
    nan[3, 4] = np.nan
    tracker = rerank_kernel.NearestTracker(n, size, np.float32)
    tracker.offer(nan, 0, 0)
    assert np.isnan(tracker.result()[2][4]) and not np.isnan(tracker.result()[2][3])


# ---------------------------------------------------------------- engines, devices, docs

def test_engine_rerank_true_reports_metrics_of_torchreids_re_ranking():
    from test_engine import Toy, triplet_engine

    torch.manual_seed(0)
    engine = triplet_engine(Toy())
    engine.test(rerank=True)
    result = engine.last_metrics["toy"]
    model, dm = engine.model.eval(), engine.datamanager
    with torch.no_grad():
        qf = model(dm.test_loader["toy"]["query"][0]["img"])
        gf = torch.cat([model(b["img"]) for b in dm.test_loader["toy"]["gallery"]])
    q, g = dm.test_loader["toy"]["query"][0], dm.test_loader["toy"]["gallery"]
    ids = (q["pid"].numpy(), np.concatenate([b["pid"].numpy() for b in g]), q["camid"].numpy(),
           np.concatenate([b["camid"].numpy() for b in g]))
    cmc, mAP = compat.metrics.evaluate_rank(torchreid_rerank(*distances(qf, gf)), *ids, use_cython=False)
    assert result["rank1"] == pytest.approx(float(cmc[0]), abs=1e-6)
    assert result["mAP"] == pytest.approx(float(mAP), abs=1e-6)
    engine.test(rerank=False)
    assert engine.last_metrics["toy"]["mAP"] != pytest.approx(result["mAP"], abs=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu():
    qf, gf, _ = features(9, 40, 120, duplicates=10)
    dists = distances(qf, gf)
    tied = quantised(dists, 5)
    ref = torchreid_rerank(*tied, k1=6, k2=3)
    cuda = rerank(*(torch.from_numpy(d).cuda() for d in tied), k1=6, k2=3)
    assert cuda.is_cuda
    np.testing.assert_allclose(cuda.cpu().numpy(), ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(rerank(*dists, device="cuda"), torchreid_rerank(*dists), rtol=0, atol=TOL)
    np.testing.assert_allclose(rerank_features(qf.cuda(), gf.cuda()).cpu().numpy(), torchreid_rerank(*dists),
                               rtol=0, atol=TOL)


def test_docstring_example_runs():
    failures, tried = doctest.testmod(reranking_module, verbose=False)
    assert tried >= 1 and failures == 0
