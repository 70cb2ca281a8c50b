"""Dense semantics: DensePose IUV maps, DSAP-images, texture atlases, part merging, sidecars."""
from .atlas import (atlas_index, atlas_shape, atlas_to_dsap, dsap_cells_to_tile, dsap_to_atlas,
                    partial_atlas, render_from_atlas, tile_to_dsap_cells)
from .dsap import crop_parts, warp_dsap
from .iuv import IUVFormatError, dequantize_iuv, quantize_iuv, read_iuv, unpack_iuv, validate_iuv, write_iuv
from .parts import (FLIP_CHART, LEVEL2_FROM_LEVEL1, MERGE_LEVEL1, MERGE_LEVEL2, NUM_CHARTS, PART_NAMES,
                    merge_matrix)
from .sidecar import SIDECAR_KINDS, sidecar_path, sidecar_root
