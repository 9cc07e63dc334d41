"""The ingress's own layering: its parts (each top-level module and each subpackage) import one another
without a cycle, counting imports inside functions and those made for type checking only."""

from __future__ import annotations

import ast
from pathlib import Path

import pyk3s.addons.ingress

PACKAGE = "pyk3s.addons.ingress"
ROOT = Path(pyk3s.addons.ingress.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def _part(module: str) -> str | None:
    """The part of the ingress a module belongs to: ``proxy`` for ``...ingress.proxy.client``."""
    if not module.startswith(PACKAGE + "."):
        return None
    return module[len(PACKAGE) + 1:].split(".")[0]


def _imported(path: Path) -> set[str]:
    """Modules (absolute names) that a file imports anywhere in its body."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
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


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        src = _part(_module_name(path))
        if src is None:
            continue
        for module in _imported(path):
            dst = _part(module)
            if dst is not None and dst != src and ((ROOT / dst).is_dir() or (ROOT / f"{dst}.py").exists()):
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
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_cycle_between_the_parts_of_the_ingress():
    graph = _graph()
    assert {"proxy", "middlewares", "providers", "runner", "explain"} <= set(graph)
    assert _cycles(graph) == []


def test_the_http_messages_and_the_routing_table_sit_below_the_proxy():
    graph = _graph()
    assert "proxy" in graph["runner"]
    for part in ("http", "middlewares", "compile", "routing", "api", "providers", "rules", "services"):
        assert "proxy" not in graph.get(part, set()), part
    assert "explain" not in graph["runner"] and "runner" in graph["explain"]
    assert not any("cli" in deps for deps in graph.values())
