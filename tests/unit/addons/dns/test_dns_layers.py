"""The DNS core knows no plugin: who may import what inside pyk3s.addons.dns (imports at module level,
under TYPE_CHECKING and inside functions alike)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyk3s.addons.dns as dns_addon

ROOT = Path(dns_addon.__file__).parent
PKG = "pyk3s.addons.dns"
TABLE = f"{PKG}.plugins"                       # ORDER and PLUGINS
TABLE_READERS = {f"{PKG}.config"}              # the one module that turns directives into plugins
SERVER_SIDE = {f"{PKG}.{m}" for m in ("config", "runtime", "cli", "explain", "precompute", "core", "server",
                                      "lane")}


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PKG, *parts])


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved (`from . import x` counts as `.x`)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            out.add(target)
            if node.module is None or target == TABLE:     # names that may be modules: `from . import x`
                out.update(f"{target}.{a.name}" for a in node.names if a.name not in ("ORDER", "PLUGINS"))
    return out


SOURCES = sorted(ROOT.rglob("*.py"))
PLUGIN_FILES = [p for p in SOURCES if "plugins" in p.relative_to(ROOT).parts]
CORE_FILES = [p for p in SOURCES if p not in PLUGIN_FILES]


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_plugin(path: Path) -> None:
    imported = _imports(path)
    assert not [m for m in imported if m.startswith(TABLE + ".")], "only the table in plugins/ names a plugin"
    if _module(path) not in TABLE_READERS:
        assert TABLE not in imported, "the plugin table is read by config.py alone"


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_use_only_the_contract(path: Path) -> None:
    assert not _imports(path) & SERVER_SIDE, "a plugin gets what it may use through plugin.Host"
