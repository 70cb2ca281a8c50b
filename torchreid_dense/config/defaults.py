"""The plugin's yacs configuration: deep-person-reid's keys plus the plugin's own namespaces.

``get_default_config()`` returns every key of deep-person-reid's ``scripts/default_config.py``
with the same name, default and meaning, a top-level ``use_gpu``, and the plugin's sections,
each added by one composable ``add_*_config(cfg)`` function that owns its namespace: the extra
``data.*`` and ``train.*`` keys, ``dense.*``, ``dsa.*`` (DSA-reID), ``san.*`` (SAN) and ``synth.*``
(listed in :mod:`~torchreid_dense.config.plugin_keys`; deep-person-reid's own keys in
:mod:`~torchreid_dense.config.torchreid_keys`).

Merging is strict (:mod:`~torchreid_dense.config.node`) and speaks to the user: an unknown key
raises :class:`ConfigKeyError` (``configs/x.yaml: unknown config key 'train.lrr' (did you mean
'train.lr'?)``) and a value of the wrong type raises :class:`ConfigValueError` naming the key, the
expected and the given type.

The ``*_kwargs(cfg)`` adapters (:mod:`~torchreid_dense.config.adapters`) turn the config into plain
keyword arguments, so library code never reads the config object (engines read their own keys in
``from_config`` only).

Example::

    >>> from torchreid_dense.config import get_default_config, optimizer_kwargs
    >>> cfg = get_default_config()
    >>> cfg.merge_from_list(["train.lr", "0.0008", "data.sources", "market1501_dsap"])
    >>> optimizer_kwargs(cfg)["lr"]
    0.0008
"""
from .adapters import engine_run_kwargs, imagedata_kwargs, lr_scheduler_kwargs, model_kwargs, optimizer_kwargs
from .node import ConfigKeyError, ConfigValueError, DenseCfgNode
from .plugin_keys import (add_data_config, add_dense_config, add_dsa_config, add_san_config, add_synth_config,
                          add_train_config)
from .torchreid_keys import add_torchreid_config

__all__ = [
    "DenseCfgNode",
    "ConfigKeyError",
    "ConfigValueError",
    "get_default_config",
    "add_torchreid_config",
    "add_data_config",
    "add_train_config",
    "add_dense_config",
    "add_dsa_config",
    "add_san_config",
    "add_synth_config",
    "imagedata_kwargs",
    "optimizer_kwargs",
    "lr_scheduler_kwargs",
    "engine_run_kwargs",
    "model_kwargs",
]


def get_default_config():
    """Default config: deep-person-reid's ``scripts/default_config.py`` keys plus the plugin's."""
    cfg = DenseCfgNode()
    add_torchreid_config(cfg)
    add_data_config(cfg)
    add_train_config(cfg)
    add_dense_config(cfg)
    add_dsa_config(cfg)
    add_san_config(cfg)
    add_synth_config(cfg)
    return cfg
