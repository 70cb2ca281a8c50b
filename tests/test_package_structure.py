"""The house stays clean (issue 27): no import cycle between the modules of ``torchreid_dense``, and no module
over 300 lines without saying why (none over 400).

The import graph is read with :mod:`ast` from every ``.py`` file of the package. A node is a module (a package
is its ``__init__.py``). An edge ``a -> b`` is any import of ``b`` written in ``a``, wherever it stands: at module
level, inside a function (a lazy import is a cycle all the same, only a later one), a class or an ``if``/``try``;
and ``importlib.import_module("b")`` / ``__import__("b")`` with a literal name. A dynamic import with a computed
name cannot be followed, so it is an error of its own. Relative imports are resolved; ``from x import y`` is an
edge to the module ``x.y`` when there is one, else to ``x``; imports of other distributions are left out.

The one exception, and how narrow it is: importing ``a.b.c`` is an edge to ``a.b.c`` only, not to ``a`` and
``a.b``, whose ``__init__.py`` Python runs first. So a package's ``__init__.py`` importing (re-exporting) its own
submodules is no cycle by itself; but a submodule that names its package (``from a.b import name``, or
``from . import name`` where ``name`` is not a submodule) has an edge to ``a.b`` like any other import, and
closes a cycle when ``a.b`` imports it.
"""
import ast
import os.path as osp
import textwrap
from collections import deque
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "torchreid_dense"
LINES_WITHOUT_REASON = 300  # above this a module's docstring says why it is not split
MAX_LINES = 400  # above this, no reason is enough
REASON = "over 300 lines because"
_DYNAMIC_IMPORTS = {"import_module", "__import__"}


def package_modules(package_dir):
    """``{dotted module name: (path, is_package)}`` of every ``.py`` file under ``package_dir``."""
    package_dir = Path(package_dir)
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = (path, is_package)
    return modules


def _known(name, modules):
    """``name`` or its longest prefix that is a module of the package (None: another distribution's)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def module_imports(name, path, is_package, modules):
    """``([(imported module, line), ...], [line of each dynamic import whose name is not a literal])``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = name.split(".") if is_package else name.split(".")[:-1]  # what a level-1 relative import starts from
    found, dynamic = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[:len(here) - node.level + 1] + [node.module or ""]).strip(".") if node.level \
                else node.module
            found += [(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base, node.lineno)
                      for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if func in _DYNAMIC_IMPORTS:
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((arg.value, node.lineno))
                else:
                    dynamic.append(node.lineno)
    edges = [(_known(target, modules), line) for target, line in found]
    return [(target, line) for target, line in edges if target is not None and target != name], dynamic


def import_graph(package_dir):
    """``({module: {imported module: first line}}, ["path:line", ...] of dynamic imports with computed names)``."""
    modules = package_modules(package_dir)
    graph, dynamic = {}, []
    for name, (path, is_package) in modules.items():
        edges, computed = module_imports(name, path, is_package, modules)
        graph[name] = {}
        for target, line in edges:
            graph[name].setdefault(target, line)
        dynamic += [f"{path}:{line}" for line in computed]
    return graph, dynamic


def _reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _shortest_cycle(graph, start, within):
    """The shortest chain ``start -> ... -> start`` through modules of ``within``."""
    parent, todo = {}, deque([start])
    while todo:
        node = todo.popleft()
        for nxt in sorted(graph[node]):
            if nxt == start:
                chain = [node]
                while chain[-1] != start:
                    chain.append(parent[chain[-1]])
                return chain[::-1] + [start]
            if nxt in within and nxt not in parent:
                parent[nxt] = node
                todo.append(nxt)
    raise AssertionError(f"no cycle through {start}")


def find_cycles(graph):
    """One chain ``[a, b, ..., a]`` per group of modules that import each other (directly or not), sorted."""
    reach = {node: _reachable(graph, node) for node in graph}
    cycles, placed = [], set()
    for node in sorted(graph):
        if node in placed or node not in reach[node]:
            continue
        group = {other for other in reach[node] if node in reach[other]}
        placed |= group
        cycles.append(_shortest_cycle(graph, node, group))
    return cycles


def describe(cycle, graph):
    """``a -> b (line 3) -> a (line 12)``: each import with the line of the importing module it stands on."""
    steps = [cycle[0]] + [f"{b} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(steps)


def test_no_import_cycle_between_the_modules_of_the_package():
    graph, dynamic = import_graph(PACKAGE)
    assert len(graph) > 100 and sum(map(len, graph.values())) > 300  # the whole package was read
    # a lazy import is an edge: the SAN pipeline runs SAN-PG as a launcher job
    assert "torchreid_dense.engine.launch" in graph["torchreid_dense.engine.san_pipeline"]
    assert dynamic == [], f"dynamic imports the graph cannot follow (use a literal name): {dynamic}"
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles in torchreid_dense:\n" + "\n".join(describe(c, graph) for c in cycles)


def write_package(root, files):
    for rel, text in files.items():
        path = Path(root, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return Path(root, sorted(files)[0].split("/")[0])


def test_the_checker_finds_module_level_lazy_and_dynamic_cycles(tmp_path):
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "from .a import f\nfrom . import c\n",
        "pkg/a.py": "import os\nfrom .b import g\n\ndef f():\n    return g()\n",
        "pkg/b.py": "def g():\n    from .a import f  # lazy: imported when g runs\n    return f\n",
        "pkg/c.py": "import pkg.sub.d\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/d.py": "import importlib\n\ndef h():\n    return importlib.import_module('pkg.c')\n",
        "pkg/e.py": "from .sub import d\nfrom pkg import f\n",
    })
    graph, dynamic = import_graph(pkg)
    assert dynamic == []
    assert graph["pkg.e"] == {"pkg.sub.d": 1, "pkg": 2}  # a submodule by its package; a name of a package
    cycles = find_cycles(graph)
    assert [describe(c, graph) for c in cycles] == [
        "pkg.a -> pkg.b (line 2) -> pkg.a (line 2)",
        "pkg.c -> pkg.sub.d (line 1) -> pkg.c (line 4)",
    ]


def test_a_package_re_exporting_its_submodules_is_no_cycle_but_a_submodule_naming_its_package_is(tmp_path):
    clean = write_package(tmp_path / "clean", {
        "pkg/__init__.py": "from .a import f\nfrom .sub import g\nfrom . import sub\n",
        "pkg/a.py": "from .sub.b import g\n\ndef f():\n    return g()\n",
        "pkg/sub/__init__.py": "from .b import g\n",
        "pkg/sub/b.py": "from ..util import one\n\ndef g():\n    return one()\n",
        "pkg/util.py": "def one():\n    return 1\n",
    })
    graph, _ = import_graph(clean)
    assert find_cycles(graph) == []
    back = write_package(tmp_path / "back", {
        "pkg/__init__.py": "from .a import f\n",
        "pkg/a.py": "def f():\n    from . import VERSION  # a name of the package, not a submodule\n    return VERSION\n",
    })
    graph, _ = import_graph(back)
    assert [describe(c, graph) for c in find_cycles(graph)] == ["pkg -> pkg.a (line 1) -> pkg (line 2)"]


def test_a_dynamic_import_with_a_computed_name_is_reported(tmp_path):
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "import importlib\n\nfor name in ('pkg.a',):\n    importlib.import_module(name)\n",
        "pkg/a.py": "",
    })
    _, dynamic = import_graph(pkg)
    assert dynamic == [f"{pkg / '__init__.py'}:4"]


def module_lengths():
    return {path: len(path.read_text(encoding="utf-8").splitlines()) for path, _ in package_modules(PACKAGE).values()}


def test_no_module_is_long_without_a_reason_and_none_is_too_long():
    lengths = module_lengths()
    long = {path: n for path, n in lengths.items() if n > LINES_WITHOUT_REASON}
    unexplained = [f"{osp.relpath(path, REPO)} ({n} lines)" for path, n in sorted(long.items())
                   if REASON not in (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "")]
    assert unexplained == [], f"split these modules, or say in their docstring why they are {REASON} ...: {unexplained}"
    too_long = [f"{osp.relpath(path, REPO)} ({n} lines)" for path, n in sorted(lengths.items()) if n > MAX_LINES]
    assert too_long == [], f"modules over {MAX_LINES} lines: {too_long}"


@pytest.mark.parametrize("module", ["torchreid_dense.models.dsa_reid", "torchreid_dense.models.san",
                                    "torchreid_dense.dense.densepose_sidecars", "torchreid_dense.benchmark.suite",
                                    "torchreid_dense.engine.launch"])
def test_split_modules_still_export_their_public_names(module):
    import importlib

    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []
