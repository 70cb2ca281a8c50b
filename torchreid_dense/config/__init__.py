"""torchreid_dense.config: the yacs configuration (deep-person-reid's keys + the plugin's), its adapters and
:func:`load_config` (a file and overrides over the defaults)."""
from .defaults import (  # noqa: F401
    ConfigKeyError,
    ConfigValueError,
    DenseCfgNode,
    add_data_config,
    add_dense_config,
    add_dsa_config,
    add_san_config,
    add_synth_config,
    add_torchreid_config,
    add_train_config,
    engine_run_kwargs,
    get_default_config,
    imagedata_kwargs,
    lr_scheduler_kwargs,
    model_kwargs,
    optimizer_kwargs,
)
from .load import load_config  # noqa: F401
