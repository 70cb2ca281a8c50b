"""How DSA-reID combines its streams: the fusions (Sec. 3.2.3, Table 5) and the inference graphs (Sec. 3.2.4)."""
import torch
import torch.nn as nn

from .dsa_branches import BRANCHES, NUM_PARTS, lookup

__all__ = ["AddFusion", "ConcatFCFusion", "FUSIONS", "MFInference", "FusedInference", "concat_features"]


class AddFusion(nn.Module):
    """Element-wise add of the two streams' features (Sec. 3.2.3): ``zG = fG + dG``, ``zL = fL + dL``.

    Parameter-free; takes the same constructor arguments as :class:`ConcatFCFusion`.
    """

    def __init__(self, global_dim, part_dim, branches="both"):
        super().__init__()

    def forward(self, f, d):
        return {k: f[k] + d[k] for k in f}


class ConcatFCFusion(nn.Module):
    """Concatenation + FC fusion, the worse ablation of Table 5: ``z = FC([f, d])`` per branch."""

    def __init__(self, global_dim, part_dim, branches="both"):
        super().__init__()
        keys = lookup(BRANCHES, branches, "branches")
        self.part_dim = part_dim
        dims = {"g": global_dim, "l": NUM_PARTS * part_dim}
        self.fc = nn.ModuleDict({k: nn.Linear(2 * dims[k], dims[k]) for k in keys})

    def forward(self, f, d):
        z = {}
        for k, fc in self.fc.items():  # at most two entries: the global and the local branch
            b = f[k].shape[0]
            zk = fc(torch.cat([f[k].reshape(b, -1), d[k].reshape(b, -1)], 1))
            z[k] = zk.view(b, NUM_PARTS, self.part_dim) if k == "l" else zk
        return z


# dsa.fusion -> the fusion module
FUSIONS = {"add": AddFusion, "concat_fc": ConcatFCFusion}


def concat_features(feats, keys):
    """``[fG, fL]`` (or ``[zG, zL]``) flattened and concatenated, for the keys present."""
    return torch.cat([feats[k].flatten(1) for k in keys if k in feats], 1)


class MFInference(nn.Module):
    """The inference graph of DSA-reID: the MF-Stream alone, ``imgs -> [fG, fL]`` (Sec. 3.2.4)."""

    def __init__(self, mf_stream):
        super().__init__()
        self.mf_stream = mf_stream

    def forward(self, imgs):
        return concat_features(self.mf_stream(imgs), ("g", "l"))


class FusedInference(nn.Module):
    """Two-stream inference graph (Table 3 "fused" rows): ``(imgs, dsap) -> [zG, zL]`` (or one of them)."""

    def __init__(self, mf_stream, dsag_stream, fusion, keys=("g", "l")):
        super().__init__()
        self.mf_stream = mf_stream
        self.dsag_stream = dsag_stream
        self.fusion = fusion
        self.keys = tuple(keys)

    def forward(self, imgs, dsap):
        return concat_features(self.fusion(self.mf_stream(imgs), self.dsag_stream(dsap)), self.keys)
