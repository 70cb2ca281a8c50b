"""torchreid_dense.engine"""
from .dsa import DSAEngine  # noqa: F401  (registers "dsa")
from .san import SANEngine  # noqa: F401  (registers 'san')
from .san_pg import SANPGEngine  # noqa: F401  (registers 'san_pg')
from . import san_pipeline  # noqa: F401  (registers the SAN steps run before a 'san' job)
from .stock import StockSoftmaxEngine, StockTripletEngine  # noqa: F401  (registers "softmax" and "triplet")
