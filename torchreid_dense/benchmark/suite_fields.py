"""The values of a suite file (:mod:`.suite`) checked one by one: keys, seeds, config paths, deltas, and the
dependency order of the runs; each error is a :class:`SuiteError` naming the file and the entry."""
import os
import os.path as osp

from .opts import SuiteError

__all__ = ["DELTA_KEYS", "check_keys", "read_seeds", "resolve_config", "dependency_order", "read_deltas"]

DELTA_KEYS = {"name", "plus", "minus"}


def read_seeds(value, where):
    """``value`` (an integer or a non-empty list of distinct integers) as a tuple of ``train.seed`` values."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in value)):
        raise SuiteError(f"{where}: seeds must be a non-empty list of integers, got {value!r}")
    if len(set(value)) != len(value):
        raise SuiteError(f"{where}: seeds repeat: {list(value)}")
    return tuple(int(s) for s in value)


def read_threads(value, where):
    """``value`` (an integer >= 0) as the torch thread count of every training job (0: the environment's)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SuiteError(f"{where}: train_threads must be an integer >= 0 (0: the environment's), got {value!r}")
    return int(value)


def check_keys(entry, allowed, where):
    """SuiteError unless ``entry`` is a mapping whose keys are all in ``allowed``."""
    if not isinstance(entry, dict):
        raise SuiteError(f"{where}: expected a mapping, got {entry!r}")
    extra = sorted(set(entry) - allowed)
    if extra:
        raise SuiteError(f"{where}: unknown key(s) {extra}; allowed: {sorted(allowed)}")


def resolve_config(path, suite_path, where):
    """``path`` as given (working directory), else relative to the suite file or one of its parents."""
    if not isinstance(path, str) or not path:
        raise SuiteError(f"{where}: 'config' must be the path of a yacs config file")
    candidates = [path]
    if not osp.isabs(path):
        parent = osp.dirname(osp.abspath(suite_path))
        while True:
            candidates.append(osp.join(parent, path))
            up = osp.dirname(parent)
            if up == parent:
                break
            parent = up
    for candidate in candidates:
        if osp.isfile(candidate):
            return osp.relpath(candidate) if not osp.isabs(path) else candidate
    raise SuiteError(
        f"{where}: config file '{path}' not found (looked in the working directory '{os.getcwd()}' and "
        f"above the suite file); run from the repository root or give an absolute path"
    )


def dependency_order(runs, where):
    """Runs sorted so that each comes after its dependencies (stable); SuiteError on a cycle."""
    by_name = {r.name: r for r in runs}
    done, order, visiting = set(), [], []

    def visit(run):
        if run.name in done:
            return
        if run.name in visiting:
            cycle = visiting[visiting.index(run.name):] + [run.name]
            raise SuiteError(f"{where}: dependency cycle {' -> '.join(cycle)}")
        visiting.append(run.name)
        for dep in run.depends_on:
            visit(by_name[dep])
        visiting.pop()
        done.add(run.name)
        order.append(run)

    for run in runs:
        visit(run)
    return tuple(order)


def read_deltas(entries, names, path):
    """``((name, plus, minus), ...)`` of the suite's ``deltas`` list, each naming two runs."""
    out = []
    for i, entry in enumerate(entries or []):
        where = f"{path}: deltas[{i}]"
        if not isinstance(entry, dict):
            raise SuiteError(f"{where}: expected {{name, plus, minus}}, got {entry!r}")
        check_keys(entry, DELTA_KEYS, where)
        missing = [k for k in ("plus", "minus") if entry.get(k) not in names]
        if missing:
            raise SuiteError(f"{where}: {missing} must name runs of the suite; runs: {sorted(names)}")
        out.append((str(entry.get("name") or f"{entry['plus']} - {entry['minus']}"), entry["plus"], entry["minus"]))
    return tuple(out)
