"""The branch layout shared by the DSA-reID streams (Sec. 3.2): 8 merged body parts, the branch choices."""
from ..dense.parts import MERGE_LEVEL2

__all__ = ["NUM_PARTS", "BRANCHES", "lookup"]

NUM_PARTS = len(MERGE_LEVEL2)  # 8 merged body parts

# branches -> the feature branches built ('g' global, 'l' part-aware/local); Table 3's single-branch ablations
BRANCHES = {"both": ("g", "l"), "global": ("g",), "local": ("l",)}


def lookup(table, name, what):
    """``table[name]``, or a ValueError naming ``what`` and the choices."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} '{name}'; choose one of {sorted(table)}") from None
