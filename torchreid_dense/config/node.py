"""The plugin's yacs node: strict merges that speak to the user.

An unknown key raises :class:`ConfigKeyError` (``configs/x.yaml: unknown config key 'train.lrr' (did you mean
'train.lr'?)``) and a value of the wrong type raises :class:`ConfigValueError` naming the key, the expected and
the given type.
"""
import difflib
from ast import literal_eval

import yaml
from yacs.config import CfgNode

__all__ = ["DenseCfgNode", "ConfigKeyError", "ConfigValueError"]


class ConfigKeyError(KeyError):
    """A config file or override names a key the configuration does not have."""

    def __str__(self):  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class ConfigValueError(ValueError):
    """A config value does not have the type of the key's default."""


def _type_name(value):
    return type(value).__name__


def _all_keys(node, prefix=""):
    keys = []
    for k, v in node.items():
        full = prefix + k
        keys.append(full)
        if isinstance(v, CfgNode):
            keys.extend(_all_keys(v, full + "."))
    return keys


def _decode(raw, default):
    """Python literal of a string value (``'0.1'`` -> 0.1); str-typed keys keep the raw string."""
    if not isinstance(raw, str) or isinstance(default, str):
        return raw
    if isinstance(default, bool) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def _coerce(value, default, full_key, source):
    """``value`` converted to the type of ``default``; a clear error otherwise.

    Accepted conversions: int -> float, tuple -> list, a scalar -> a one-element list of a
    list-typed key (``data.sources market1501``). Everything else must match exactly
    (bool is not an int here).
    """

    def fail(expected):
        raise ConfigValueError(
            f"{source}: config key '{full_key}' expects {expected}, "
            f"got {_type_name(value)} {value!r}"
        )

    value = _decode(value, default)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            fail("bool")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            fail("int")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("float")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            fail("str")
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            value = [value]
        if default:
            proto = default[0]
            value = [
                _coerce(v, proto, f"{full_key}[{i}]", source) for i, v in enumerate(value)
            ]
        return type(default)(value)
    if default is None:
        return value
    fail(_type_name(default))


def _merge_mapping(node, mapping, source, prefix=""):
    """Merge a plain mapping into ``node`` key by key, checking names and types."""
    for key, value in mapping.items():
        full_key = prefix + str(key)
        if key not in node:
            _unknown_key(node, full_key, source, prefix)
        default = node[key]
        if isinstance(default, CfgNode):
            if not isinstance(value, dict):
                raise ConfigValueError(
                    f"{source}: config key '{full_key}' is a section; it expects a mapping of "
                    f"its keys, got {_type_name(value)} {value!r}"
                )
            _merge_mapping(default, value, source, full_key + ".")
        else:
            if isinstance(value, dict):
                raise ConfigValueError(
                    f"{source}: config key '{full_key}' is a value of type "
                    f"{_type_name(default)}, not a section; got a mapping {dict(value)!r}"
                )
            node[key] = _coerce(value, default, full_key, source)


def _unknown_key(node, full_key, source, prefix):
    root_keys = _all_keys(node, prefix)
    close = difflib.get_close_matches(full_key, root_keys, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigKeyError(f"{source}: unknown config key '{full_key}'{hint}")


class DenseCfgNode(CfgNode):
    """A yacs ``CfgNode`` whose merges fail with the file, the key and what was wrong."""

    def merge_from_file(self, cfg_filename):
        """Merge a YAML file; unknown keys and wrongly typed values raise naming the file."""
        try:
            with open(cfg_filename, "r") as f:
                data = yaml.safe_load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"config file '{cfg_filename}' does not exist") from None
        except yaml.YAMLError as err:
            raise ConfigValueError(f"{cfg_filename}: not valid YAML: {err}") from None
        if data is None:
            return
        if not isinstance(data, dict):
            raise ConfigValueError(
                f"{cfg_filename}: a config file must hold a mapping of sections "
                f"(model:, data:, train:, ...), got {_type_name(data)}"
            )
        self._check_mutable(cfg_filename)
        _merge_mapping(self, data, str(cfg_filename))

    def merge_from_other_cfg(self, cfg_other):
        """Merge another config (or dict) with the same key and type checks."""
        self._check_mutable("<config>")
        _merge_mapping(self, _to_dict(cfg_other), "<config>")

    def merge_from_list(self, cfg_list, source="command line"):
        """Merge ``[KEY, VALUE, KEY, VALUE, ...]`` (e.g. the command line's trailing options)."""
        cfg_list = list(cfg_list)
        if len(cfg_list) % 2:
            raise ConfigValueError(
                f"{source}: overrides must come in KEY VALUE pairs, got {len(cfg_list)} items: "
                f"{cfg_list}"
            )
        self._check_mutable(source)
        for full_key, value in zip(cfg_list[0::2], cfg_list[1::2]):
            node = self
            parts = str(full_key).split(".")
            for i, part in enumerate(parts):
                if not isinstance(node, CfgNode) or part not in node:
                    _unknown_key(self, str(full_key), source, "")
                if i < len(parts) - 1:
                    node = node[part]
            default = node[parts[-1]]
            if isinstance(default, CfgNode):
                raise ConfigValueError(
                    f"{source}: config key '{full_key}' is a section; override its keys "
                    f"one by one ('{full_key}.<key> VALUE')"
                )
            node[parts[-1]] = _coerce(value, default, str(full_key), source)

    def _check_mutable(self, source):
        if self.is_frozen():
            raise AttributeError(f"{source}: the config is frozen; merge before cfg.freeze()")


def _to_dict(node):
    if isinstance(node, CfgNode) or isinstance(node, dict):
        return {k: _to_dict(v) for k, v in node.items()}
    return node

