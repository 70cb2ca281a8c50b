"""Data sets of the plugin; importing this package registers them in ``registry.DATASETS``."""
from .synthreid import SynthReID, SynthReIDFull, SynthReIDTiny

__all__ = ["SynthReID", "SynthReIDTiny", "SynthReIDFull"]
from .partial import PartialiLIDS, PartialREID  # noqa: F401  (registers partial_reid, partial_ilids)
