"""Local stand-ins for DensePose's result classes, so that dumps load without detectron2 (REFERENCE 1.1).

Versions: ``densepose.structures.chart_result.DensePoseChartResult[WithConfidences]`` (2020-10 on),
``densepose.data.structures.DensePoseResult`` (v0.1.2-v0.2.1) and ``densepose.structures.DensePoseResult``
(v0.1, v0.1.1); the two legacy ones hold per-box PNG-encoded IUV (:class:`DensePoseResult`).
"""
import base64
import io
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from PIL import Image

__all__ = ["DensePoseDumpError", "DensePoseChartResult", "DensePoseChartResultWithConfidences", "DensePoseResult"]


class DensePoseDumpError(ValueError):
    """A DensePose dump that cannot (or must not) be loaded, or whose content is not DensePose results."""


@dataclass
class DensePoseChartResult:
    """Local stand-in for ``densepose.structures.chart_result.DensePoseChartResult`` (per-box I and UV)."""

    labels: torch.Tensor
    uv: torch.Tensor


@dataclass
class DensePoseChartResultWithConfidences:
    """Local stand-in for ``densepose.structures.chart_result.DensePoseChartResultWithConfidences``."""

    labels: torch.Tensor
    uv: torch.Tensor
    sigma_1: Optional[torch.Tensor] = None
    sigma_2: Optional[torch.Tensor] = None
    kappa_u: Optional[torch.Tensor] = None
    kappa_v: Optional[torch.Tensor] = None
    fine_segm_confidence: Optional[torch.Tensor] = None
    coarse_segm_confidence: Optional[torch.Tensor] = None


class DensePoseResult:
    """Local stand-in for the legacy ``DensePoseResult`` of DensePose v0.1-v0.2.1 (2019-2020):
    ``densepose.structures.DensePoseResult`` (v0.1, v0.1.1), ``densepose.data.structures.DensePoseResult``
    (v0.1.2-v0.2.1); both pickle the same two attributes.

    ``results[i]`` is ``(shape, png)``: the ``[3, h, w]`` quantized IUV of box ``i`` (I, U, V) as a base64
    PNG, ``h x w`` being the box size of :func:`box_xywh_int`; ``boxes_xywh[i]`` is its float32 box.
    """

    def __init__(self, results=(), boxes_xywh=()):
        self.results = list(results)
        self.boxes_xywh = list(boxes_xywh)

    def __len__(self):
        return len(self.results)

    def decode(self, index):
        """The ``[3, h, w]`` uint8 IUV of box ``index`` (decoding the base64 PNG)."""
        shape, encoded = self.results[index]
        try:
            with Image.open(io.BytesIO(base64.decodebytes(encoded.encode("ascii")))) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as e:  # noqa: BLE001 - any decoding failure is a malformed result
            raise DensePoseDumpError(f"legacy DensePoseResult box {index}: cannot decode its PNG data ({e})") from e
        iuv = np.ascontiguousarray(arr.transpose(2, 0, 1))
        if tuple(iuv.shape) != tuple(shape):
            raise DensePoseDumpError(f"legacy DensePoseResult box {index}: PNG data is {iuv.shape}, "
                                     f"its recorded shape is {tuple(shape)}")
        return iuv
