"""Shared losses against independent references."""
import torch

from torchreid_dense import compat
from torchreid_dense.losses.hard_mine_triplet import BatchHardTripletLoss


def test_batch_hard_triplet_equals_torchreid():
    g = torch.Generator().manual_seed(0)
    for margin in (0.3, 1.0):
        for _ in range(3):
            x = torch.randn(24, 16, generator=g)
            y = torch.randint(0, 6, (24,), generator=g)
            ours = BatchHardTripletLoss(margin)(x, y)
            ref = compat.losses.TripletLoss(margin=margin)(x, y)
            assert torch.allclose(ours, ref, atol=1e-6), (ours, ref)


def test_batch_hard_triplet_hand_computed():
    # 1-d features: ids 0 at {0, 1}, id 1 at {3}; hardest positive / negative per anchor:
    # a=0: ap=1, an=3 -> max(0, 1-3+0.5)=0 ; a=1: ap=1, an=2 -> 0 ; a=3: ap=0 (alone), an=2 -> 0
    x = torch.tensor([[0.0], [1.0], [3.0]])
    y = torch.tensor([0, 0, 1])
    assert BatchHardTripletLoss(0.5)(x, y).item() == 0.0
    # margin 2.5: a=0: 1-3+2.5=0.5 ; a=1: 1-2+2.5=1.5 ; a=3: 0-2+2.5=0.5 -> mean 2.5/3
    assert abs(BatchHardTripletLoss(2.5)(x, y).item() - 2.5 / 3) < 1e-5


def test_batch_hard_triplet_single_identity_and_grad():
    x = torch.randn(4, 8, requires_grad=True)
    loss = BatchHardTripletLoss(0.3)(x, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and x.grad is not None
