"""The map's views computed from the caches, each kept until one of its sources changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .cache import INGRESS_SOURCES, MapCache
from .ingress import IngressModel, build_model, ingress_view
from .nodes import nodes_view
from .services import cluster_domain, services_view

if TYPE_CHECKING:
    from pyk3s.client import Client

__all__ = ["MapState"]

T = TypeVar("T")


class MapState:
    def __init__(self, cache: MapCache, kubeconfig: str | None, server: str = "",
                 client_factory: Callable[[str | None], Client] | None = None) -> None:
        """``client_factory`` makes the API clients of the DNS explain engine (default: from the kubeconfig,
        as ``pyk3s dns explain`` does)."""
        self.cache, self.kubeconfig, self.server = cache, kubeconfig, server
        self.client_factory = client_factory
        self._memo: dict[str, tuple[int, Any]] = {}

    def memoized(self, name: str, view: str, compute: Callable[[], T]) -> T:
        """``compute()``, kept until ``view``'s sources change."""
        rev = self.cache.revisions[view]
        hit = self._memo.get(name)
        if hit is not None and hit[0] == rev:
            return hit[1]  # type: ignore[no-any-return]
        value = compute()
        self._memo[name] = (rev, value)
        return value

    def objects(self, name: str) -> list[dict[str, Any]]:
        return self.cache.objects(name)

    def ingress_objects(self) -> list[dict[str, Any]]:
        return [o for name in INGRESS_SOURCES for o in self.cache.objects(name)]

    def domain(self) -> str:
        return self.memoized("domain", "dns", lambda: cluster_domain(self.objects("configmaps")))

    def nodes(self) -> dict[str, Any]:
        return self.memoized("nodes", "nodes", lambda: nodes_view(self.objects("nodes"), self.objects("pods")))

    def services(self) -> dict[str, Any]:
        return self.memoized("services", "services", lambda: services_view(
            self.objects("namespaces"), self.objects("services"), self.objects("endpointslices"),
            self.objects("pods"), self.objects("events"), self.domain()))

    def ingress_model(self) -> IngressModel:
        return self.memoized("ingress_model", "ingress", lambda: build_model(
            self.objects("deployments"), self.ingress_objects()))

    def ingress(self) -> dict[str, Any]:
        return self.memoized("ingress", "ingress", lambda: ingress_view(
            self.ingress_model(), self.ingress_objects(), self.objects("endpointslices"), self.objects("pods"),
            self.objects("events")))

    def overview(self) -> dict[str, Any]:
        nodes = self.nodes()["nodes"]
        namespaces = self.services()["namespaces"]
        services = [s for ns in namespaces for s in ns["services"]]
        ingress = self.ingress()
        lbs = [s for s in services if s["lb"] is not None]
        return {
            "server": self.server, "revision": self.cache.revision, "domain": self.domain(),
            "nodes": {"total": len(nodes), "ready": sum(1 for n in nodes if n["ready"])},
            "namespaces": len(namespaces),
            "services": {"total": len(services), "withoutEndpoints": sum(
                1 for s in services if s["type"] != "ExternalName" and not s["ready"])},
            "loadBalancers": {"total": len(lbs), "pending": sum(1 for s in lbs if s["lb"]["state"] != "ready")},
            "routers": ingress["counts"],
            "policies": len(self.objects("networkpolicies")),
            "watch": self.cache.status(),
        }
