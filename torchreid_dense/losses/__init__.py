"""torchreid_dense.losses"""
from .triplet_reid import TripletReIDConstraint  # noqa: F401  (registers 'triplet_reid_constraint')
from .reconstruction import ReconstructionLoss  # noqa: F401  (registers 'reconstruction')
from .san_loss import SANLoss  # noqa: F401  (registers 'san')
from .dsa_loss import DSALoss  # noqa: F401  (registers 'dsa')
