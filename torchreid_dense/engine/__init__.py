"""torchreid_dense.engine"""
from .dsa import DSAEngine  # noqa: F401  (registers "dsa")
from .san import SANEngine, SANPGEngine  # noqa: F401  (registers engines 'san' and 'san_pg')
