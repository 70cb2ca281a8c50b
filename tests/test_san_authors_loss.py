"""The SAN authors' L_TR (docs/san_authors_code.md §4): fixed offset triplets, generalised to any K, summed."""
import pytest
import torch

from torchreid_dense.losses import SANLoss, TripletReIDConstraint
from torchreid_dense.losses.triplet_reid import identity_groups, offset_triplets

MARGIN = 0.3

# Their loop at P x K = 4 x 4 (main.py:410-420): anchors i = 0, 4, 8 (every identity but the last), as
# (anchor, positive, negative) batch indices per block; block 4's d(i, i+3) - d(i+3, i+4) is the triplet
# (i+3, i, i+4).
AUTHORS_K4 = [
    [(0, 1, 4), (4, 5, 8), (8, 9, 12)],  # x_sim1: (i, i+1, i+4)
    [(1, 2, 5), (5, 6, 9), (9, 10, 13)],  # x_sim2: (i+1, i+2, i+5)
    [(2, 3, 6), (6, 7, 10), (10, 11, 14)],  # x_sim3: (i+2, i+3, i+6)
    [(3, 0, 4), (7, 4, 8), (11, 8, 12)],  # x_sim4: pairs (i, i+3) and (i+3, i+4)
]
# The generalisation at K = 2 (P = 3): blocks 1-3 take slot b mod K, block 4 slot K-1 with slot 0s.
GENERAL_K2 = [
    [(0, 1, 2), (2, 3, 4)],
    [(1, 0, 3), (3, 2, 5)],
    [(0, 1, 2), (2, 3, 4)],
    [(1, 0, 2), (3, 2, 4)],
]
# ... and at K = 6 (P = 3): slots 3 and 4 are never anchors.
GENERAL_K6 = [
    [(0, 1, 6), (6, 7, 12)],
    [(1, 2, 7), (7, 8, 13)],
    [(2, 3, 8), (8, 9, 14)],
    [(5, 0, 6), (11, 6, 12)],
]


def pk_pids(p, k):
    return torch.arange(p).repeat_interleave(k)


def triplets(pids, block):
    return list(zip(*(t.tolist() for t in offset_triplets(pids, block))))


@pytest.mark.parametrize("p,k,expected", [(4, 4, AUTHORS_K4), (3, 2, GENERAL_K2), (3, 6, GENERAL_K6)])
def test_offset_triplets_indices(p, k, expected):
    pids = pk_pids(p, k) + 10  # pid values do not matter, only their runs
    assert identity_groups(pids) == (p, k)
    for block, listed in enumerate(expected):
        got = triplets(pids, block)
        assert got == listed
        # positives: the anchor's identity (another image); negatives: the next identity
        assert all(pids[a] == pids[q] and a != q and pids[n] == pids[a] + 1 for a, q, n in got)


def test_authors_crafted_batch_hand_computed():
    """docs/san_authors_code.md §4: 1-channel 1x1 maps, sample i has value i, 4 x 4, margin 0.3: [0, 0, 0, 24.9]."""
    values = [float(i) for i in range(16)]
    pids = pk_pids(4, 4)
    feats = torch.tensor(values).view(16, 1, 1, 1)
    # hand: MSE of two 1x1 one-channel maps is the squared difference; the sum over the listed triplets
    hand = [sum(max((values[a] - values[q]) ** 2 - (values[a] - values[n]) ** 2 + MARGIN, 0.0) for a, q, n in block)
            for block in AUTHORS_K4]
    assert hand == pytest.approx([0.0, 0.0, 0.0, 24.9])  # blocks 1-3: 1 - 16 + 0.3 < 0; block 4: 3 x (9 - 1 + 0.3)
    crit = TripletReIDConstraint(MARGIN, normalize="all", pairing="offsets", anchor_reduction="sum")
    got = [crit(feats, pids, block=b).item() for b in range(4)]
    assert got == pytest.approx(hand, abs=1e-5)
    mean = TripletReIDConstraint(MARGIN, normalize="all", pairing="offsets")
    assert mean(feats, pids, block=3).item() == pytest.approx(24.9 / 3, abs=1e-5)
    # identical (zero) maps at P x K = 16 x 4, their B = 64: every hinge is the margin, 15 anchors x 0.3 = 4.5 per block
    zeros, pids64 = torch.zeros(64, 1, 1, 1), pk_pids(16, 4)
    assert [crit(zeros, pids64, block=b).item() for b in range(4)] == pytest.approx([15 * MARGIN] * 4)
    # SANLoss with the authors' settings sums the four blocks: 24.9
    loss = SANLoss(2, weight_id=0, weight_triplet=0, weight_rec=0, tr_margin=MARGIN, tr_normalize="all",
                   tr_reduction="sum", tr_pairing="offsets", tr_anchor_reduction="sum")
    total, parts = loss({"dec_feats": [feats] * 4}, pids)
    assert total.item() == pytest.approx(24.9, abs=1e-5) and set(parts) == {"loss_tr"}


def test_offsets_match_a_loop_over_the_listed_triplets_with_channels_and_gradient():
    """Random 3 x 4 x 2 maps: the loss over c*h*w from the listed K = 6 triplets, by a plain loop; gradient flows."""
    gen = torch.Generator().manual_seed(0)
    pids = pk_pids(3, 6)
    feats = torch.randn(18, 3, 4, 2, generator=gen, dtype=torch.float64).float()
    margin = 2.0  # large enough that every hinge is active
    crit = TripletReIDConstraint(margin, normalize="all", pairing="offsets", anchor_reduction="sum")
    spatial = TripletReIDConstraint(margin, normalize="spatial", pairing="offsets")
    for block, listed in enumerate(GENERAL_K6):
        f = feats.double()
        terms = [max(float(((f[a] - f[q]) ** 2).mean() - ((f[a] - f[n]) ** 2).mean()) + margin, 0.0)
                 for a, q, n in listed]
        terms_hw = [max(float(((f[a] - f[q]) ** 2).sum() / 8 - ((f[a] - f[n]) ** 2).sum() / 8) + margin, 0.0)
                    for a, q, n in listed]
        assert crit(feats, pids, block=block).item() == pytest.approx(sum(terms), rel=1e-5)
        assert spatial(feats, pids, block=block).item() == pytest.approx(sum(terms_hw) / len(terms_hw), rel=1e-5)
    x = feats.clone().requires_grad_()
    crit(x, pids, block=3).backward()
    used = {i for t in GENERAL_K6[3] for i in t}
    assert all((x.grad[i].abs().sum() > 0) == (i in used) for i in range(18))


def test_offsets_refuse_a_batch_that_is_not_p_by_k_in_identity_order():
    crit = TripletReIDConstraint(pairing="offsets")
    feats = torch.randn(8, 2, 2, 2)
    for pids in (torch.tensor([0, 1, 0, 1, 2, 3, 2, 3]),  # shuffled: runs of 1
                 torch.tensor([0, 0, 0, 1, 1, 2, 2, 2]),  # unequal runs
                 torch.arange(8)):  # K = 1
        with pytest.raises(ValueError, match="identity order.*san.tr_pairing 'random'"):
            crit(feats, pids)
    with pytest.raises(ValueError, match="san.tr_blocks"):
        crit(feats, pk_pids(2, 4), block=4)
    one = feats.clone().requires_grad_()
    loss = crit(one, torch.zeros(8, dtype=torch.long))  # a single identity: no negative, zero, still attached
    assert loss.item() == 0.0 and loss.requires_grad


def test_choices_name_their_config_keys():
    with pytest.raises(ValueError, match="san.tr_pairing"):
        TripletReIDConstraint(pairing="fixed")
    with pytest.raises(ValueError, match="san.tr_anchor_reduction"):
        TripletReIDConstraint(anchor_reduction="max")
    with pytest.raises(ValueError, match="san.tr_pairing"):
        SANLoss(2, tr_pairing="fixed")
    with pytest.raises(ValueError, match="san.tr_anchor_reduction"):
        SANLoss(2, tr_anchor_reduction="max")
    with pytest.raises(ValueError, match="tr_reduction must be one of.*san.tr_reduction"):
        SANLoss(2, tr_reduction="max")


def test_random_pairing_sum_is_the_mean_times_the_valid_anchors_and_default_unchanged():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(10, 4, 3, 2, generator=gen)
    pids = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])  # pid 2 alone: 9 valid anchors
    mean = TripletReIDConstraint(5.0)(feats, pids, generator=torch.Generator().manual_seed(7))
    total = TripletReIDConstraint(5.0, anchor_reduction="sum")(feats, pids, generator=torch.Generator().manual_seed(7))
    default = TripletReIDConstraint(5.0, pairing="random", anchor_reduction="mean")
    assert total.item() == pytest.approx(9 * mean.item(), rel=1e-6)
    assert torch.equal(default(feats, pids, generator=torch.Generator().manual_seed(7)), mean)
    crit = SANLoss(2)
    assert (crit.criterion_tr.pairing, crit.criterion_tr.anchor_reduction) == ("random", "mean")


def test_offsets_gradients_are_bitwise_repeatable_on_several_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        feats = torch.randn(16, 16, 16, 8, generator=torch.Generator().manual_seed(0))
        crit = TripletReIDConstraint(MARGIN, normalize="all", pairing="offsets", anchor_reduction="sum")

        def grad():
            x = feats.clone().requires_grad_()
            sum(crit(x, pk_pids(4, 4), block=b) for b in range(4)).backward()
            return x.grad

        reference = grad()
        assert reference.abs().sum() > 0 and all(torch.equal(reference, grad()) for _ in range(10))
    finally:
        torch.set_num_threads(threads)
