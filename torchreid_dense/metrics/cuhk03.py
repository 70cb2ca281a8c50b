"""CUHK03 single-gallery-shot CMC with torchreid's ``eval_cuhk03`` draws (see :func:`evaluate_rank`)."""
import numpy as np
import torch

from .device_ops import argsort_rows, sort_rows

__all__ = ["CUHK03_REPEATS", "cuhk03_cmc"]

# Random single-gallery-shot draws per query in CUHK03 mode (torchreid's ``num_repeats``).
CUHK03_REPEATS = 10


def cuhk03_cmc(d, valid, g_labels, q_labels, rem_rows, rem_cols, length, cmc_sum32):
    """Add the valid queries' CUHK03 single-gallery-shot CMC to ``cmc_sum32`` (torchreid's ``eval_cuhk03`` draws).

    Returns:
        (numpy.ndarray, int): the updated float32 running sum ``[length]``, and the largest number of
        gallery identities a valid query of the chunk keeps.
    """
    c, g = d.shape
    device = d.device
    num_labels = int(g_labels.max()) + 1
    order = argsort_rows(d)
    removed = torch.zeros(c, g, dtype=torch.bool, device=device)
    removed[rem_rows, rem_cols] = True
    removed = removed.gather(1, order)
    kept_pos = torch.cumsum(~removed, 1) - 1  # position among the row's kept items
    # group each row's kept items by identity, ascending position inside a group; removed items last
    keys = torch.where(removed, num_labels * g, g_labels[order] * g + kept_pos)
    keys = sort_rows(keys[valid])
    label, pos = keys // g, keys % g
    del keys, order, removed, kept_pos
    kept = label < num_labels
    is_start = kept.clone()
    is_start[:, 1:] &= label[:, 1:] != label[:, :-1]
    grp_row, grp_col = is_start.nonzero(as_tuple=True)  # one entry per (query, identity)
    next_col = torch.roll(grp_col, -1)
    last = torch.ones(grp_row.numel(), dtype=torch.bool, device=device)
    last[:-1] = grp_row[1:] != grp_row[:-1]
    grp_size = torch.where(last, kept.sum(1)[grp_row], next_col) - grp_col
    grp_first = pos[grp_row, grp_col]
    # torchreid's dict order: identities by first appearance in the ranking
    by_first = argsort_rows((grp_row * g + grp_first)[None])[0]
    grp_row, grp_col, grp_size = grp_row[by_first], grp_col[by_first], grp_size[by_first]
    is_query_id = label[grp_row, grp_col] == q_labels[valid][grp_row]

    n_valid = int(valid.sum())
    per_row = torch.bincount(grp_row, minlength=n_valid)
    row_first = torch.cumsum(per_row, 0) - per_row
    # draw order: query, repeat, identity
    draw_row = torch.repeat_interleave(torch.arange(n_valid, device=device), per_row * CUHK03_REPEATS)
    e = torch.arange(draw_row.numel(), device=device) - (row_first * CUHK03_REPEATS)[draw_row]
    draw_grp = row_first[draw_row] + e % per_row[draw_row]
    draw_seg = draw_row * CUHK03_REPEATS + e // per_row[draw_row]
    picks = np.random.randint(0, grp_size[draw_grp].cpu().numpy())
    picks = torch.from_numpy(np.asarray(picks, dtype=np.int64)).to(device)
    chosen = pos[draw_row, grp_col[draw_grp] + picks]
    # rank of the query identity's drawn image among the drawn images of its (query, repeat)
    num_seg = n_valid * CUHK03_REPEATS
    hit = is_query_id[draw_grp]
    target = torch.zeros(num_seg, dtype=chosen.dtype, device=device)
    target[draw_seg[hit]] = chosen[hit]
    rank = torch.bincount(draw_seg, weights=(chosen < target[draw_seg]).double(), minlength=num_seg).long()
    rank = rank.clamp_(max=length).reshape(n_valid, CUHK03_REPEATS)
    hits = torch.zeros(n_valid, length + 1, dtype=torch.int64, device=device)
    hits.scatter_add_(1, rank, torch.ones_like(rank))
    per_query = (torch.cumsum(hits, 1)[:, :length].cpu().numpy().astype(np.float32) / np.float32(CUHK03_REPEATS))
    # torchreid sums the per-query float32 curves one after the other; a cumulative sum keeps that order
    cmc_sum32 = np.cumsum(np.vstack([cmc_sum32[None], per_query]), axis=0, dtype=np.float32)[-1]
    return cmc_sum32, int(per_row.max())
