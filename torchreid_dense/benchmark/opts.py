"""A suite's config overrides: ``{KEY: VALUE}`` / ``[KEY, VALUE, ...]`` as yacs' flat list, and the
``{<run>.dir}`` / ``{<run>.checkpoint}`` / ``{suite.dir}`` placeholders in their values."""
import re

__all__ = ["SuiteError", "opts_to_list", "placeholders", "RUNNER_KEYS", "SUITE_PLACEHOLDER", "PLACEHOLDER"]

RUNNER_KEYS = ("train.seed", "data.save_dir")  # set per job by the runner, not by a suite
SUITE_PLACEHOLDER = "suite"  # {suite.dir}: the suite's output directory (no run may be named so)
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.\-]+?)\.(dir|checkpoint)\}")


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file, the entry and the fix."""


def _fmt_value(value):
    """A YAML scalar/list as the string yacs' ``merge_from_list`` expects."""
    if isinstance(value, str):
        return value
    return repr(value)


def opts_to_list(opts, where="opts"):
    """``{KEY: VALUE}`` or ``[KEY, VALUE, ...]`` -> flat list of strings ``[KEY, VALUE, ...]``.

    Raises:
        SuiteError: odd-length list, non-string key, or a key the runner owns (``RUNNER_KEYS``).
    """
    if opts is None:
        return []
    if isinstance(opts, dict):
        pairs = list(opts.items())
    elif isinstance(opts, (list, tuple)):
        if len(opts) % 2:
            raise SuiteError(f"{where}: expected KEY VALUE pairs, got an odd number of items {list(opts)}")
        pairs = list(zip(opts[0::2], opts[1::2]))
    else:
        raise SuiteError(f"{where}: expected a mapping {{KEY: VALUE}} or a list [KEY, VALUE, ...], got {opts!r}")
    out = []
    for key, value in pairs:
        if not isinstance(key, str) or not key:
            raise SuiteError(f"{where}: config keys are dotted strings like 'train.max_epoch', got {key!r}")
        if key in RUNNER_KEYS:
            raise SuiteError(
                f"{where}: '{key}' is set by the benchmark runner for every job (seeds: use 'seeds'; "
                "output directory: tools/benchmark.py --output); remove it from the suite"
            )
        out += [key, _fmt_value(value)]
    return out


def placeholders(opts):
    """``[(run_name, what), ...]`` referenced by ``{run.dir}`` / ``{run.checkpoint}`` in ``opts``."""
    return [m.groups() for value in opts for m in PLACEHOLDER.finditer(value)]
