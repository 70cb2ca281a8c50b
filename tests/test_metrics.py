"""torchreid_dense.metrics.evaluate_rank against torchreid's Python evaluator and an independent stable-sort reference."""
import doctest

import numpy as np
import pytest
import torch

from torchreid_dense import compat
from torchreid_dense.metrics import evaluate_rank
from torchreid_dense.metrics import device_ops, positives, rank_kernel
from torchreid_dense.metrics import rank as rank_module


def torchreid_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, cuhk03=False):
    """torchreid's own evaluator, Python path."""
    return compat.metrics.evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank,
                                        use_metric_cuhk03=cuhk03, use_cython=False)


def stable_reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, cuhk03=False):
    """Per-query loop over a stable argsort (ties: lower gallery index first): (cmc, mAP, mINP).

    CUHK03 mode draws one kept image per identity with ``np.random.choice``, identities in order of
    first appearance in the ranking, 10 repeats per query.
    """
    distmat = np.asarray(distmat, dtype=np.float64)
    curves, aps, inps, lengths = [], [], [], []
    length = min(max_rank, distmat.shape[1])
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        removed = (g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])
        kept = order[~removed]
        hit_ranks = np.flatnonzero(g_pids[kept] == q_pids[i])  # 0-based ranks of the positives
        if hit_ranks.size == 0:
            continue
        curve = np.zeros(length)
        if cuhk03:
            groups = {}
            for position, pid in enumerate(g_pids[kept]):
                groups.setdefault(pid, []).append(position)
            for _ in range(10):
                drawn = {pid: np.random.choice(positions) for pid, positions in groups.items()}
                r = sum(int(p < drawn[q_pids[i]]) for p in drawn.values())
                curve[r:] += 0.1
            lengths.append(len(groups))
        else:
            curve[hit_ranks[0]:] = 1.0
            lengths.append(kept.size)
        curves.append(curve)
        aps.append(np.mean((np.arange(hit_ranks.size) + 1) / (hit_ranks + 1)))
        inps.append(hit_ranks.size / (hit_ranks[-1] + 1))
    cmc = np.mean(curves, 0)[:min(length, max(lengths))]
    return cmc, float(np.mean(aps)), float(np.mean(inps))


def random_problem(seed, num_q=50, num_g=300, num_ids=10, num_cams=3, dtype=np.float32):
    rng = np.random.default_rng(seed)
    distmat = rng.random((num_q, num_g)).astype(dtype)
    return (distmat, rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g),
            rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g))


def assert_same(ours, ref, atol=1e-6):
    """CMC to 1e-6 (float32 curves; one query more or less changes it by >= 1/num_query), scalars to ``atol``."""
    assert ours[0].dtype == np.float32
    assert ours[0].shape == np.asarray(ref[0]).shape
    np.testing.assert_allclose(ours[0], ref[0], rtol=0, atol=1e-6)
    for a, b in zip(ours[1:], ref[1:]):
        assert abs(a - b) <= atol


# ---------------------------------------------------------------- default (Market-1501) protocol

@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_inputs_match_torchreid(seed, dtype):
    problem = random_problem(seed, dtype=dtype)
    cmc, mAP = evaluate_rank(*problem)
    cmc_t, mAP_t = torchreid_rank(*problem)
    assert_same((cmc, mAP), (cmc_t, mAP_t))
    # sanity of the inputs: some queries are removed-only / some ranks are deep
    assert 0.0 < cmc[0] < 1.0 and 0.0 < mAP < 1.0


@pytest.mark.parametrize("seed", range(3))
def test_minp_matches_stable_reference(seed):
    problem = random_problem(seed, num_q=40, num_g=200, num_ids=8)
    ours = evaluate_rank(*problem, max_rank=20, return_minp=True)
    assert_same(ours, stable_reference(*problem, max_rank=20), atol=1e-9)


def test_hand_computed_example():
    # query 0 (pid 1, cam 0): ranking g2 (pid 2), g0 (pid 1, cam 1), g3 (pid 2), g1 (pid 1, cam 1);
    # g4 (pid 1, cam 0) is removed though nearest. Positives at ranks 2 and 4:
    # AP = (1/2 + 2/4) / 2 = 0.5, INP = 2 / 4 = 0.5.
    # query 1 (pid 2, cam 1): ranking g3, g2, ...: positives at ranks 1 and 2 -> AP = 1, INP = 1.
    distmat = np.array([[0.2, 0.9, 0.1, 0.5, 0.0],
                        [0.9, 0.8, 0.2, 0.1, 0.7]], dtype=np.float32)
    q_pids, q_cams = np.array([1, 2]), np.array([0, 1])
    g_pids, g_cams = np.array([1, 1, 2, 2, 1]), np.array([1, 1, 0, 0, 0])
    cmc, mAP, mINP = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=4, return_minp=True)
    np.testing.assert_array_equal(cmc, np.array([0.5, 1.0, 1.0, 1.0], dtype=np.float32))
    assert mAP == pytest.approx(0.75, abs=1e-12)
    assert mINP == pytest.approx(0.75, abs=1e-12)
    assert_same((cmc, mAP), torchreid_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=4))


def test_default_return_is_torchreid_pair():
    problem = random_problem(0)
    out = evaluate_rank(*problem)
    assert isinstance(out, tuple) and len(out) == 2
    out3 = evaluate_rank(*problem, return_minp=True)
    assert len(out3) == 3 and out3[1] == out[1]
    np.testing.assert_array_equal(out3[0], out[0])
    # torchreid's positional call with use_cython is accepted
    out_pos = evaluate_rank(problem[0], *problem[1:], 50, False, True)
    np.testing.assert_array_equal(out_pos[0], out[0])


def test_ties_not_touching_positives_match_torchreid():
    # negatives share integer distances; positives get distinct non-integer ones, so the result
    # does not depend on how a sort orders the ties
    rng = np.random.default_rng(7)
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(7, num_q=40, num_g=250, num_ids=6)
    distmat = rng.integers(0, 6, distmat.shape).astype(np.float32)
    positive = (q_pids[:, None] == g_pids[None, :]) & (q_cams[:, None] != g_cams[None, :])
    offsets = 0.5 + 1e-3 * np.arange(distmat.shape[1])[None, :].repeat(distmat.shape[0], 0)
    distmat = np.where(positive, distmat + offsets.astype(np.float32), distmat).astype(np.float32)
    ours = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, return_minp=True)
    assert_same(ours[:2], torchreid_rank(distmat, q_pids, g_pids, q_cams, g_cams))
    assert_same(ours, stable_reference(distmat, q_pids, g_pids, q_cams, g_cams), atol=1e-9)


@pytest.mark.parametrize("levels", [1, 2, 4])
def test_heavy_ties_follow_stable_order(levels):
    # every distance tied with many others, positives included (levels=1: all distances equal)
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(11, num_q=30, num_g=120, num_ids=5)
    distmat = np.random.default_rng(3).integers(0, levels, distmat.shape).astype(np.float32)
    ours = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=30, return_minp=True)
    assert_same(ours, stable_reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=30), atol=1e-9)


def test_all_equal_distances_rank_by_gallery_index():
    # one query, gallery [neg, pos, removed, neg, pos] all at distance 1: kept order g0 g1 g3 g4
    distmat = np.ones((1, 5), dtype=np.float32)
    cmc, mAP, mINP = evaluate_rank(distmat, np.array([1]), np.array([0, 1, 1, 0, 1]), np.array([0]),
                                   np.array([1, 1, 0, 1, 1]), max_rank=4, return_minp=True)
    np.testing.assert_array_equal(cmc, np.array([0.0, 1.0, 1.0, 1.0], dtype=np.float32))
    assert mAP == pytest.approx((1 / 2 + 2 / 4) / 2, abs=1e-12)
    assert mINP == pytest.approx(2 / 4, abs=1e-12)


def test_signed_zero_and_infinite_distances():
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(5, num_q=20, num_g=60, num_ids=4)
    rng = np.random.default_rng(0)
    choice = rng.integers(0, 5, distmat.shape)
    distmat = np.choose(choice, [np.float32(-0.0), np.float32(0.0), np.float32(np.inf), np.float32(-np.inf),
                                 distmat]).astype(np.float32)
    ours = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10, return_minp=True)
    assert_same(ours, stable_reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10), atol=1e-9)


def test_queries_without_valid_match_are_skipped():
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(2, num_q=50, num_g=300, num_ids=10)
    q_pids = q_pids.copy()
    q_pids[:10] = 99  # identity absent from the gallery
    g_cams = g_cams.copy()
    q_cams = q_cams.copy()
    only_same_cam = g_pids == q_pids[10]
    g_cams[only_same_cam] = 0  # query 10's identity only seen by its own camera
    q_cams[q_pids == q_pids[10]] = 0
    ours = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, return_minp=True)
    assert_same(ours[:2], torchreid_rank(distmat, q_pids, g_pids, q_cams, g_cams))
    assert_same(ours, stable_reference(distmat, q_pids, g_pids, q_cams, g_cams), atol=1e-9)


def test_no_valid_query_raises_like_torchreid():
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(3)
    with pytest.raises(AssertionError):
        torchreid_rank(distmat, q_pids + 100, g_pids, q_cams, g_cams)
    with pytest.raises(AssertionError, match="do not appear in gallery"):
        evaluate_rank(distmat, q_pids + 100, g_pids, q_cams, g_cams)


def test_single_camera():
    distmat, q_pids, g_pids, _, _ = random_problem(4)
    one_cam_q, one_cam_g = np.zeros_like(q_pids), np.zeros_like(g_pids)
    # everything captured by one camera: every match is removed, no query is valid
    with pytest.raises(AssertionError):
        torchreid_rank(distmat, q_pids, g_pids, one_cam_q, one_cam_g)
    with pytest.raises(AssertionError):
        evaluate_rank(distmat, q_pids, g_pids, one_cam_q, one_cam_g)
    # gallery from one camera, queries from another: nothing is removed
    ours = evaluate_rank(distmat, q_pids, g_pids, one_cam_q + 1, one_cam_g, return_minp=True)
    assert_same(ours[:2], torchreid_rank(distmat, q_pids, g_pids, one_cam_q + 1, one_cam_g))
    assert_same(ours, stable_reference(distmat, q_pids, g_pids, one_cam_q + 1, one_cam_g), atol=1e-9)


def test_max_rank_larger_than_gallery():
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(6, num_q=20, num_g=30, num_ids=5)
    q_cams = np.full_like(q_cams, 9)  # no removal, so torchreid's curves all have 30 entries
    cmc, mAP = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=100)
    assert cmc.shape == (30,) and cmc[-1] == 1.0
    assert_same((cmc, mAP), torchreid_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=100))


def test_max_rank_larger_than_kept_items_pads_with_one():
    # queries keep different numbers of items (torchreid fails on the ragged curves): shorter ones end at 1
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(8, num_q=20, num_g=30, num_ids=5)
    ours = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=100, return_minp=True)
    ref = stable_reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=100)
    assert ours[0].shape[0] == max(30 - int(((g_pids == p) & (g_cams == c)).sum()) for p, c in
                                   zip(q_pids, q_cams) if ((g_pids == p) & (g_cams != c)).any())
    assert_same(ours, ref, atol=1e-9)


# ---------------------------------------------------------------- CUHK03 single-gallery-shot protocol

@pytest.mark.parametrize("seed", range(4))
def test_cuhk03_mode_matches_torchreid_with_same_seed(seed):
    # 12 ids over 300 gallery items, so some identities keep a single image (no random draw)
    problem = random_problem(seed, num_q=50, num_g=300, num_ids=12)
    g_pids = problem[2].copy()
    g_pids[:5] = 100 + np.arange(5)  # singleton identities
    problem = (problem[0], problem[1], g_pids, problem[3], problem[4])
    np.random.seed(seed)
    cmc_t, mAP_t = torchreid_rank(*problem, max_rank=10, cuhk03=True)
    after_t = np.random.rand()
    np.random.seed(seed)
    cmc, mAP, mINP = evaluate_rank(*problem, max_rank=10, use_metric_cuhk03=True, return_minp=True, chunk_size=7)
    after = np.random.rand()
    assert_same((cmc, mAP), (cmc_t, mAP_t))
    assert after == after_t  # the global np.random stream was consumed identically
    assert mINP == pytest.approx(evaluate_rank(*problem, return_minp=True)[2], abs=1e-12)
    assert not np.array_equal(cmc, evaluate_rank(*problem, max_rank=10)[0])


def test_cuhk03_mode_ties_follow_stable_reference():
    problem = random_problem(9, num_q=30, num_g=100, num_ids=6)
    distmat = np.random.default_rng(1).integers(0, 3, problem[0].shape).astype(np.float32)
    problem = (distmat,) + problem[1:]
    np.random.seed(4)
    ref = stable_reference(*problem, max_rank=8, cuhk03=True)
    np.random.seed(4)
    ours = evaluate_rank(*problem, max_rank=8, use_metric_cuhk03=True, return_minp=True)
    assert_same(ours, ref, atol=1e-6)


def test_cuhk03_mode_curve_length_is_number_of_identities():
    problem = random_problem(10, num_q=30, num_g=200, num_ids=6)
    np.random.seed(0)
    cmc_t, _ = torchreid_rank(*problem, max_rank=50, cuhk03=True)
    np.random.seed(0)
    cmc, _ = evaluate_rank(*problem, max_rank=50, use_metric_cuhk03=True)
    assert cmc.shape == cmc_t.shape == (6,)
    np.testing.assert_allclose(cmc, cmc_t, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- inputs, chunking, devices, errors

def test_torch_and_numpy_inputs_give_identical_results():
    problem = random_problem(12)
    ref = evaluate_rank(*problem, return_minp=True)
    as_torch = [torch.from_numpy(np.ascontiguousarray(a)) for a in problem]
    ours = evaluate_rank(*as_torch, return_minp=True)
    np.testing.assert_array_equal(ours[0], ref[0])
    assert ours[1:] == ref[1:]
    as_lists = [problem[0]] + [a.tolist() for a in problem[1:]]
    assert evaluate_rank(*as_lists, return_minp=True)[1:] == ref[1:]
    # strided and reversed views, big-endian data
    transposed = np.ascontiguousarray(problem[0].T).T
    reversed_twice = problem[0][:, ::-1][:, ::-1]
    for view in (transposed, reversed_twice, problem[0].astype(">f4")):
        ours = evaluate_rank(view, *problem[1:], return_minp=True)
        np.testing.assert_array_equal(ours[0], ref[0])
        assert ours[1:] == ref[1:]


@pytest.mark.parametrize("cuhk03", [False, True])
def test_chunking_gives_identical_results(cuhk03):
    problem = random_problem(13, num_q=37, num_g=150, num_ids=7)
    results = []
    for kwargs in ({"chunk_size": 1}, {"chunk_size": 5}, {"chunk_size": 37}, {"memory_budget": 3000}, {}):
        np.random.seed(0)
        results.append(evaluate_rank(*problem, use_metric_cuhk03=cuhk03, return_minp=True, **kwargs))
    for cmc, mAP, mINP in results[1:]:
        np.testing.assert_array_equal(cmc, results[0][0])
        assert mAP == pytest.approx(results[0][1], abs=1e-12)
        assert mINP == pytest.approx(results[0][2], abs=1e-12)


def test_tie_resolution_is_chunked_by_memory_budget():
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(14, num_q=10, num_g=80, num_ids=3)
    distmat = np.zeros_like(distmat)
    ref = stable_reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    ours = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20, return_minp=True, memory_budget=1)
    assert_same(ours, ref, atol=1e-9)


def test_torch_sort_path_equals_numpy_sort_path(monkeypatch):
    # the path taken on GPU (torch.sort everywhere), exercised on CPU
    problem = random_problem(15, num_q=40, num_g=200, num_ids=6)
    tied = (np.round(problem[0] * 8) / 8).astype(np.float32)
    expected = []
    for distmat in (problem[0], tied):
        for cuhk03 in (False, True):
            np.random.seed(1)
            expected.append(evaluate_rank(distmat, *problem[1:], use_metric_cuhk03=cuhk03, return_minp=True))
    monkeypatch.setattr(device_ops, "numpy_sorts", lambda device: False)
    monkeypatch.setattr(positives, "counts_on_cpu", lambda device: False)
    got = []
    for distmat in (problem[0], tied):
        for cuhk03 in (False, True):
            np.random.seed(1)
            got.append(evaluate_rank(torch.from_numpy(distmat), *problem[1:], use_metric_cuhk03=cuhk03,
                                     return_minp=True, chunk_size=9))
    for (cmc_a, *rest_a), (cmc_b, *rest_b) in zip(expected, got):
        np.testing.assert_array_equal(cmc_a, cmc_b)
        assert rest_a == pytest.approx(rest_b, abs=1e-12)


@pytest.mark.parametrize("ids_per_gallery", [6, 300])
def test_counting_kernel_equals_sorting_path(monkeypatch, ids_per_gallery):
    # the CPU counting kernel against the value-sort path, with heavy ties, removed items and, with 300
    # gallery items per identity, more positives per row than the kernel counts (it sorts those rows)
    if not rank_kernel.available():
        pytest.skip("numba missing")
    num_g = 2 * ids_per_gallery * 2
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(19, num_q=30, num_g=num_g, num_ids=2)
    tied = np.random.default_rng(2).integers(0, 7, distmat.shape).astype(np.float32)
    problems = [(d, q_pids, g_pids, q_cams, g_cams) for d in (distmat, tied, tied.astype(np.float64))]
    expected = [evaluate_rank(*p, max_rank=20, return_minp=True) for p in problems]
    assert (np.bincount(g_pids).max() > 128) == (ids_per_gallery == 300)
    monkeypatch.setattr(positives, "counts_on_cpu", lambda device: False)
    for p, (cmc, mAP, mINP) in zip(problems, expected):
        cmc_s, mAP_s, mINP_s = evaluate_rank(*p, max_rank=20, return_minp=True)
        np.testing.assert_array_equal(cmc, cmc_s)
        assert (mAP, mINP) == (mAP_s, mINP_s)
    assert_same(expected[1], stable_reference(*problems[1], max_rank=20), atol=1e-9)


def test_evaluation_leaves_torch_threads_as_it_found_them():
    threads = torch.get_num_threads()
    evaluate_rank(*random_problem(20))
    assert torch.get_num_threads() == threads
    with rank_module.serial_torch(torch.device("cpu")) as workers:
        assert workers == threads and torch.get_num_threads() == 1
    assert torch.get_num_threads() == threads


def test_half_and_integer_distances_are_widened_exactly():
    distmat, *ids = random_problem(16, num_q=30, num_g=100, num_ids=5)
    half = torch.from_numpy(distmat).half()
    ours = evaluate_rank(half, *ids, return_minp=True)
    ref = evaluate_rank(half.float().numpy(), *ids, return_minp=True)
    np.testing.assert_array_equal(ours[0], ref[0])
    assert ours[1:] == ref[1:]
    ints = (distmat * 1000).astype(np.int64)
    assert_same(evaluate_rank(ints, *ids, max_rank=20, return_minp=True),
                stable_reference(ints, *ids, max_rank=20), atol=1e-9)


def test_nan_distances_are_rejected():
    distmat, *ids = random_problem(17)
    distmat[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(distmat, *ids)


@pytest.mark.parametrize("bad", ["q_pids", "g_camids", "distmat"])
def test_shape_errors_name_the_argument(bad):
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(18)
    args = {"distmat": distmat, "q_pids": q_pids, "g_pids": g_pids, "q_camids": q_cams, "g_camids": g_cams}
    args[bad] = args[bad][:-1] if bad != "distmat" else distmat[None]
    with pytest.raises(ValueError, match=bad):
        evaluate_rank(**args)


def test_docstring_example_runs():
    failures, tried = doctest.testmod(rank_module, verbose=False)
    assert tried >= 1 and failures == 0


def test_evaluation_log_says_which_evaluator_runs_and_why(monkeypatch):
    """A source install of torchreid builds its Cython evaluator: the log says the plugin's runs instead, and why."""
    from torchreid_dense import compat
    from torchreid_dense.engine import evaluation

    monkeypatch.setattr(compat.metrics.rank, "IS_CYTHON_AVAI", True, raising=False)
    assert compat.cython_evaluator_available()
    note = evaluation.evaluator_note()
    assert note.startswith("the plugin's evaluator; torchreid's compiled Cython evaluator is installed but not used")
    assert f"{evaluation.CYTHON_SLOWER} slower at Market-1501 size" in note and "RATIO" not in note
    monkeypatch.setattr(compat.metrics.rank, "IS_CYTHON_AVAI", False)
    assert evaluation.evaluator_note() == "the plugin's evaluator, torchreid's protocol"
