"""The ingress's own layering, counting imports inside functions and those made for type checking only:
its packages (the top package's own modules, and each subpackage) import one another without a cycle,
and among the top modules the commands sit above the runner."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pyk3s.addons.ingress

PACKAGE = "pyk3s.addons.ingress"
ROOT = Path(pyk3s.addons.ingress.__file__).parent
TOP = "(top)"


def _module(path: Path) -> tuple[str, str]:
    """(module name, its package) for a file of the ingress."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        name = ".".join([PACKAGE, *parts[:-1]])
        return name, name
    name = ".".join([PACKAGE, *parts])
    return name, name.rsplit(".", 1)[0]


def _imported(path: Path) -> set[str]:
    """Modules (absolute names) that a file imports anywhere in its body."""
    _, package = _module(path)
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import crd`
    return out


def _package_of(module: str) -> str | None:
    """The ingress package that holds a module: TOP for the top package's own modules."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    rest = module[len(PACKAGE) + 1:].split(".") if module != PACKAGE else []
    if rest and (ROOT / rest[0]).is_dir():
        return rest[0]
    return TOP


def _graph(node_of: dict[Path, str], resolve: Callable[[str], str | None]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path, src in node_of.items():
        for module in _imported(path):
            dst = resolve(module)
            if dst is not None and dst != src:
                graph.setdefault(src, set()).add(dst)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def _packages() -> dict[str, set[str]]:
    files = {path: _package_of(_module(path)[0]) or TOP for path in ROOT.rglob("*.py")}
    return _graph(files, _package_of)


def test_no_cycle_between_the_packages_of_the_ingress():
    graph = _packages()
    assert {TOP, "proxy", "middlewares", "providers", "routing", "rules"} <= set(graph)
    assert _cycles(graph) == []


def test_the_http_messages_and_the_routing_table_sit_below_the_proxy():
    graph = _packages()
    assert "proxy" in graph[TOP]
    for part in ("config", "http", "rules", "providers", "middlewares", "routing"):
        assert "proxy" not in graph.get(part, set()), part
        assert TOP not in graph.get(part, set()), part


def test_the_commands_sit_above_the_runner():
    top = {path: _module(path)[0] for path in ROOT.glob("*.py")}
    graph = _graph(top, lambda m: m if m in top.values() else None)
    assert f"{PACKAGE}.runner" in graph[f"{PACKAGE}.explain"]
    assert f"{PACKAGE}.explain" not in graph.get(f"{PACKAGE}.runner", set())
    assert not any(f"{PACKAGE}.cli" in deps for deps in graph.values())
    assert _cycles(graph) == []
