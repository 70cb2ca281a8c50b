"""Data sets of the plugin; importing this package registers them in ``registry.DATASETS``."""
from .base import SafeImageDataset, SafeImageReading
from .synthreid import SynthReID, SynthReIDFull, SynthReIDTiny

__all__ = ["SynthReID", "SynthReIDTiny", "SynthReIDFull", "SafeImageDataset", "SafeImageReading"]
from .partial import PartialiLIDS, PartialREID  # noqa: F401  (registers partial_reid, partial_ilids)
