"""The package's layers hold: no import reaches upward, and packages import each other in one direction.

Layers, low to high (ARCHITECTURE.md): ``k3s`` < ``api`` < ``client`` < ``images``, ``manifests``,
``netpol`` < ``controllers``, ``agent``, ``addons`` < ``server``, ``netmap`` < ``cli``. Modules of one layer's
different top-level packages do not import each other (an add-on never imports a controller), and the
add-ons are independent of each other. Imports inside functions count as much as module-level ones.
Between any two packages (subpackages included) imports go one way only: a cycle between packages
fails even when each single import looks harmless.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "pyk3s"

LAYERS: dict[str, int] = {
    "k3s": 0,
    "api": 1,
    "client": 2,
    "images": 3,
    "manifests": 3,
    "netpol": 3,
    "controllers": 4,
    "agent": 4,
    "addons": 4,
    "server": 5,
    "netmap": 5,
    "cli": 6,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(module: str, is_pkg: bool) -> str:
    return module if is_pkg else module.rpartition(".")[0]


def _imports(path: Path, with_typing: bool = True) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of a pyk3s module in the file, at any depth; imports
    under ``if TYPE_CHECKING:`` count unless ``with_typing`` is false (a name used only in annotations
    still makes the module depend on the other's meaning, but creates no import-time cycle)."""
    return _imports_in(path.read_text(), _module_name(path), path.name == "__init__.py", with_typing)


def _imports_in(source: str, module: str, is_pkg: bool, with_typing: bool = True) -> list[tuple[int, str]]:
    package = _package_of(module, is_pkg)
    tree = ast.parse(source)
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in typing_only and not with_typing:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "pyk3s"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "pyk3s":
                continue
            # `from pkg import sub` names a submodule when one exists
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                sub_path = ROOT.parent / sub.replace(".", "/")
                found.append((node.lineno, sub if sub_path.with_suffix(".py").exists() or sub_path.is_dir() else target))
    return found


def _all_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _addon(module: str) -> str:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "addons" else ""


def test_every_top_level_package_has_a_layer() -> None:
    tops = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert tops <= set(LAYERS), f"give these packages a layer in LAYERS: {sorted(tops - set(LAYERS))}"


def _violations() -> list[str]:
    bad: list[str] = []
    for module, path in _all_modules().items():
        src_top = _top(module)
        if src_top not in LAYERS:
            continue
        for line, target in _imports(path):
            dst_top = _top(target)
            if dst_top not in LAYERS or dst_top == src_top:
                if src_top == dst_top == "addons" and _addon(module) and _addon(target) and _addon(module) != _addon(target):
                    bad.append(f"{path.relative_to(ROOT.parent)}:{line}: add-on {_addon(module)} imports add-on {target}")
                continue
            if LAYERS[dst_top] > LAYERS[src_top]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line}: {src_top} (layer {LAYERS[src_top]}) imports "
                           f"{target} (layer {LAYERS[dst_top]})")
            elif LAYERS[dst_top] == LAYERS[src_top]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line}: {src_top} imports its sibling {target}")
    return bad


def test_no_import_reaches_upward_or_sideways() -> None:
    bad = _violations()
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def _module_graph(with_typing: bool = True) -> tuple[dict[str, dict[str, list[str]]], dict[str, str]]:
    """module -> imported module -> 'file:line' entries, and each module's package."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    modules = _all_modules()
    package = {m: _package_of(m, p.name == "__init__.py") for m, p in modules.items()}
    for module, path in modules.items():
        for line, target in _imports(path, with_typing):
            if target in modules and target != module:
                graph[module][target].append(f"{path.relative_to(ROOT.parent)}:{line}")
    return graph, package


def _cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    nodes = sorted(set(graph) | {d for edges in graph.values() for d in edges})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, {})))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def _describe(graph: dict[str, dict[str, list[str]]], comp: list[str]) -> list[str]:
    lines = [" <-> ".join(comp)]
    for a in comp:
        for b in comp:
            if b in graph.get(a, {}):
                lines.append(f"    {a} -> {b}: {', '.join(graph[a][b][:2])}")
    return lines


def test_no_cycles_between_packages() -> None:
    graph, package = _module_graph()
    spanning = [c for c in _cycles(graph) if len({package[m] for m in c}) > 1]
    assert not spanning, "import cycles between packages:\n" + "\n".join(
        line for comp in spanning for line in _describe(graph, comp))


def test_no_import_cycles_between_modules() -> None:
    graph, _ = _module_graph(with_typing=False)
    cycles = _cycles(graph)
    assert not cycles, "import cycles between modules:\n" + "\n".join(
        line for comp in cycles for line in _describe(graph, comp))


def test_the_walker_sees_imports_inside_functions_and_relative_ones() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from ..client import api\n"
        "if TYPE_CHECKING:\n"
        "    from pyk3s.server import config\n"
        "def f():\n"
        "    import pyk3s.cli.main\n"
        "    from . import registry\n"
    )
    found = {target for _, target in _imports_in(source, "pyk3s.api.app", False)}
    assert found == {"pyk3s.client.api", "pyk3s.server.config", "pyk3s.cli.main", "pyk3s.api.registry"}
    without_typing = {target for _, target in _imports_in(source, "pyk3s.api.app", False, with_typing=False)}
    assert "pyk3s.server.config" not in without_typing


def test_no_two_classes_share_a_name() -> None:
    """One name, one thing: a reader who greps for a class finds exactly one."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                where[node.name].append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    shared = {name: places for name, places in where.items() if len(places) > 1}
    assert not shared, "classes that share a name:\n" + "\n".join(f"{n}: {', '.join(p)}" for n, p in shared.items())
