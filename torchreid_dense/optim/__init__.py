"""torchreid_dense.optim: torchreid's optimisers and a registry of (warm-up) lr schedulers."""
from .build import SCHEDULERS, build_lr_scheduler, build_optimizer  # noqa: F401
from .lr_scheduler import WarmupLR, WarmupMultiStepLR, WarmupStepLR  # noqa: F401
