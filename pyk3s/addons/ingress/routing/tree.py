"""Multi-layer routing: routers that name parents in ``parentRefs`` (Traefik pkg/server/router/router.go,
ParseRouterTree; docs routing/multi-layer-routing.md).

A root router (no parentRefs) is matched on its entry points as usual; once it matched and its
middlewares ran, the first of its child routers (priority order) whose rule matches the request as the
middlewares left it takes it, with its own middlewares and service; none: 404. Checks, with Traefik's
messages: a child names a parent that does not exist; a child has entryPoints, tls or observability;
a router is reachable from no root; a router has neither a service nor children, or both; a cycle
(reported on the router that closes it, whose edge is dropped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config.dynamic import Router

__all__ = ["RouterTree", "router_tree"]


@dataclass(slots=True)
class RouterTree:
    roots: list[str] = field(default_factory=list)
    children: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)  # router -> messages
    disabled: set[str] = field(default_factory=set)  # routers an error takes out of service


def router_tree(routers: Mapping[str, Router]) -> RouterTree:
    tree = RouterTree()

    def error(name: str, message: str, critical: bool = True) -> None:
        tree.errors.setdefault(name, []).append(message)
        if critical:
            tree.disabled.add(name)

    for name in sorted(routers):
        r = routers[name]
        if not r.parent_refs:
            tree.roots.append(name)
            continue
        for parent in r.parent_refs:
            if parent in routers:
                kids = tree.children.setdefault(parent, [])
                if name not in kids:
                    kids.append(name)
            else:
                error(name, f'parent router "{parent}" does not exist')
        if r.tls is not None:
            error(name, "non-root router cannot have TLS configuration")
        elif r.observability is not None:
            error(name, "non-root router cannot have Observability configuration")
        elif r.entry_points:
            error(name, "non-root router cannot have Entrypoints configuration")
    visited: set[str] = set()

    def walk(name: str, path: list[str]) -> None:
        if name in path:
            guilty = path[-1]
            error(guilty, "cyclic reference detected in router tree: " + " -> ".join(path[path.index(name):] + [name]),
                  critical=False)
            tree.children[guilty].remove(name)
            return
        if name in visited:
            return
        visited.add(name)
        for child in sorted(tree.children.get(name, ())):
            walk(child, [*path, name])

    for root in tree.roots:
        walk(root, [])
    for name in sorted(routers):
        r = routers[name]
        if name not in visited:
            error(name, "router is not reachable")
        elif not r.service and not tree.children.get(name):
            error(name, "router has no service and no child routers")
        elif r.service and tree.children.get(name):
            error(name, "router has both a service and is referenced as a parent by other routers")
    return tree
