"""Texture data-set wrappers: items gain SAN's (pseudo) full-texture target (Sec. 3.2)."""
import os.path as osp

from ..texture_io import check_texture_range, empty_texture, load_texture
from .base import SidecarDataset

__all__ = ["TextureDataset"]


class TextureDataset(SidecarDataset):
    """Adds ``texture`` ``[3, Ht, Wt]`` (normalised like the image, or [-1, 1]) and ``texture_valid`` ``[1, Ht, Wt]``.

    Any texture image works as a target (the project's DensePose atlases, or the SAN authors' 256x256
    pseudo textures): it is resized to ``texture_size``. Options: texture_size ``(Ht, Wt)``, strict,
    texture_range (``san.texture_range``: ``'normalized'`` like the image, or ``'tanh'``, ``x/127.5 - 1`` as the SAN
    authors' code, docs/san_authors_code.md §5; see :func:`~torchreid_dense.data.texture_io.convert_texture_range`).
    Images without a texture sidecar get zeros with ``texture_valid`` all False.
    """

    sidecar_kind = "textures"
    default_options = {"texture_size": (240, 160), "strict": False, "texture_range": "normalized"}
    fallback_description = "a zero texture with texture_valid all False (no L_Rec for these images)"
    create_hints = {
        "textures": "python tools/main.py --config-file configs/san_<data set>.yaml (dense.sidecar_root '') runs "
                    "SAN's steps first: SAN-PG (or san.init_weights) predicts them apart from the data set; or python "
                    "tools/generate_textures.py --config-file configs/san_pg.yaml --weights SAN_PG.pth --dataset "
                    "{name} --output-dir DIR, then dense.sidecar_root DIR",
    }

    def _set_options(self, options):
        """Options as :class:`SidecarDataset`'s, refusing an unknown ``texture_range`` at construction."""
        super()._set_options(options)
        check_texture_range(self.options["texture_range"])

    def _sidecar_item(self, image, path):
        tex_path = self.sidecar_of(path)
        size = tuple(self.options["texture_size"])
        if osp.exists(tex_path):
            texture, valid = load_texture(tex_path, size, self.options["norm_mean"], self.options["norm_std"],
                                          self.options["texture_range"])
        else:
            texture, valid = empty_texture(size)
        return {"texture": texture, "texture_valid": valid}
