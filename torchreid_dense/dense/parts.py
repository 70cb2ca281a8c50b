"""DensePose body-surface charts and DSA-reID's two-level part merging (Sec. 3.2.1, Fig. 4).

Charts are 1-based (0 is background) as in DensePose's fine segmentation.
"""
import numpy as np
import torch

__all__ = [
    "NUM_CHARTS", "PART_NAMES", "MERGE_LEVEL1", "MERGE_LEVEL1_NAMES", "MERGE_LEVEL2",
    "MERGE_LEVEL2_NAMES", "LEVEL2_FROM_LEVEL1", "FLIP_CHART", "merge_matrix",
]

NUM_CHARTS = 24

# Index i holds the name of chart i + 1 (DensePose's fine-segmentation names).
PART_NAMES = (
    "torso front", "torso back", "right hand", "left hand", "left foot", "right foot",
    "upper leg right front", "upper leg left front", "upper leg right back", "upper leg left back",
    "lower leg right front", "lower leg left front", "lower leg right back", "lower leg left back",
    "upper arm left front", "upper arm right front", "upper arm left back", "upper arm right back",
    "lower arm left front", "lower arm right front", "lower arm left back", "lower arm right back",
    "head right", "head left",
)

# Level 1: left/right symmetric charts are added, 24 -> 13 branches.
MERGE_LEVEL1 = (
    (1,), (2,), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14),
    (15, 16), (17, 18), (19, 20), (21, 22), (23, 24),
)
MERGE_LEVEL1_NAMES = (
    "torso front", "torso back", "hands", "feet", "upper legs front", "upper legs back",
    "lower legs front", "lower legs back", "upper arms front", "upper arms back",
    "lower arms front", "lower arms back", "head",
)

# Level 2: front/back pairs are added, 13 -> 8 branches (chart ids of each merged part).
MERGE_LEVEL2 = (
    (1, 2), (7, 8, 9, 10), (11, 12, 13, 14), (15, 16, 17, 18),
    (19, 20, 21, 22), (3, 4), (5, 6), (23, 24),
)
MERGE_LEVEL2_NAMES = (
    "torso", "upper legs", "lower legs", "upper arms", "lower arms", "hands", "feet", "head",
)


def _groups_of(coarse, fine):
    """0-based indices of the ``fine`` groups whose charts make up each ``coarse`` group."""
    out = []
    for group in coarse:
        members = tuple(j for j, f in enumerate(fine) if set(f) <= set(group))
        if sorted(c for j in members for c in fine[j]) != sorted(group):
            raise ValueError(f"group {group} is not a union of the finer groups {fine}")
        out.append(members)
    return tuple(out)


# Level 2 expressed on the 13 level-1 branches.
LEVEL2_FROM_LEVEL1 = _groups_of(MERGE_LEVEL2, MERGE_LEVEL1)


def _flip_table():
    pairs = [(3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18),
             (19, 20), (21, 22), (23, 24)]
    table = np.arange(NUM_CHARTS + 1, dtype=np.int64)
    for a, b in pairs:
        table[a], table[b] = b, a
    return table


# Label -> the label of its left/right mirror chart (0, 1, 2 map to themselves).
FLIP_CHART = _flip_table()


def merge_matrix(src_groups, dst_groups):
    """``[len(dst), len(src)]`` 0/1 matrix adding the ``src`` groups that make up each ``dst`` group.

    Groups are tuples of chart ids; ``merge_matrix(((c,) for c in 1..24), MERGE_LEVEL1)`` is the
    24 -> 13 merge and ``merge_matrix(MERGE_LEVEL1, MERGE_LEVEL2)`` the 13 -> 8 one.
    """
    src_groups, dst_groups = tuple(map(tuple, src_groups)), tuple(map(tuple, dst_groups))
    members = _groups_of(dst_groups, src_groups)
    m = torch.zeros(len(dst_groups), len(src_groups))
    for i, js in enumerate(members):
        m[i, list(js)] = 1.0
    return m
