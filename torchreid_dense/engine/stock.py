"""torchreid's stock image engines, registered as ENGINES ``softmax`` and ``triplet``.

``tools/main.py`` trains stock torchreid models (``resnet50``, ``osnet_x1_0``, ...) with these,
picked by ``loss.name``, exactly as deep-person-reid's ``scripts/main.py`` would, with the
plugin's shared machinery (:mod:`torchreid_dense.engine.base`: mixed precision, exact resume,
checkpoints, NaN stop, the fast evaluator, DDP). They remain subclasses of torchreid's
``ImageSoftmaxEngine`` / ``ImageTripletEngine`` (same constructor and criteria, except that the
triplet term is the plugin's vectorised :class:`~torchreid_dense.losses.hard_mine_triplet.BatchHardTripletLoss`,
mined over the whole global batch under DDP).
"""
from .stock_softmax import StockSoftmaxEngine
from .stock_triplet import StockTripletEngine

__all__ = ["StockSoftmaxEngine", "StockTripletEngine"]
