"""Re-ID evaluation metrics: a fast exact drop-in for torchreid's ``evaluate_rank`` that also reports mINP, and
k-reciprocal re-ranking with torchreid's result in bounded memory."""
from .rank import CUHK03_REPEATS, evaluate_rank
from .reranking import rerank, rerank_features

__all__ = ["evaluate_rank", "CUHK03_REPEATS", "rerank", "rerank_features"]
