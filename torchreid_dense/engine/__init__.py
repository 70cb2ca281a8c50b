"""torchreid_dense.engine"""
from .dsa import DSAEngine  # noqa: F401  (registers "dsa")
from .san import SANEngine, SANPGEngine  # noqa: F401  (registers engines 'san' and 'san_pg')
from .stock import StockSoftmaxEngine, StockTripletEngine  # noqa: F401  (registers "softmax" and "triplet")
