"""DensePose interop without detectron2: read ``apply_net.py dump`` files safely and turn per-box
chart results into image-sized IUV sidecars (REFERENCE 1.1).

One module per job, all names importable from here:

- :mod:`~torchreid_dense.dense.densepose_results`: local stand-ins of DensePose's result classes;
- :mod:`~torchreid_dense.dense.densepose_dump`: :func:`load_dump`, restricted unpickling (no pickled code
  ever runs) and validation;
- :mod:`~torchreid_dense.dense.densepose_boxes`: the main-box rule and the pasting rule (exactly
  DensePose's converters, REFERENCE 1.5), per-box results -> image IUV, and the tools' shared default
  score threshold :data:`DEFAULT_MIN_SCORE`;
- :mod:`~torchreid_dense.dense.densepose_sidecars`: writing the sidecars (resumable, atomic, bad files listed and
  skipped) and :func:`import_dump`; its parts: :mod:`~torchreid_dense.dense.sidecar_run` (the bookkeeping),
  :mod:`~torchreid_dense.dense.image_files` (reading the images) and :mod:`~torchreid_dense.dense.densepose_batches`
  (the batched, detectron2-free loop of ``tools/extract_densepose.py``).

Classic Caffe2 DensePose ``<name>_IUV.png`` files are imported by :mod:`torchreid_dense.dense.densepose_caffe2`.
"""
from .densepose_boxes import (DEFAULT_MIN_SCORE, box_xywh_int, dump_entry_to_iuv, instances_to_iuv, main_box_iuv,
                              paste_box_iuv, result_to_iuv, select_main_box)
from .densepose_dump import load_dump
from .densepose_results import (DensePoseChartResult, DensePoseChartResultWithConfidences, DensePoseDumpError,
                                DensePoseResult)
from .densepose_sidecars import (BAD_FILES_FILE, IMAGE_EXTENSIONS, NO_DETECTION_FILE, BadImageError, DensePoseImages,
                                 SidecarRun, decode_image, extract_densepose_sidecars, format_summary, import_dump,
                                 list_dataset_images, read_image_size, same_size_batches, write_densepose_sidecars)

__all__ = [
    "DensePoseDumpError", "DensePoseChartResult", "DensePoseChartResultWithConfidences", "DensePoseResult",
    "load_dump", "select_main_box", "box_xywh_int", "paste_box_iuv", "result_to_iuv", "dump_entry_to_iuv",
    "instances_to_iuv", "main_box_iuv", "DEFAULT_MIN_SCORE",
    "list_dataset_images", "read_image_size", "decode_image", "BadImageError", "SidecarRun",
    "write_densepose_sidecars", "DensePoseImages", "same_size_batches", "extract_densepose_sidecars", "import_dump",
    "format_summary", "NO_DETECTION_FILE", "BAD_FILES_FILE", "IMAGE_EXTENSIONS",
]
