"""Re-ID evaluation metrics: a fast exact drop-in for torchreid's ``evaluate_rank`` that also reports mINP."""
from .rank import CUHK03_REPEATS, evaluate_rank

__all__ = ["evaluate_rank", "CUHK03_REPEATS"]
