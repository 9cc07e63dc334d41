"""Objects the API server itself keeps (spec 6.8): the system namespaces and the ``kubernetes``
Service in ``default`` (first service address, port 443 -> advertise_port) with its Endpoints and
EndpointSlice pointing at this server's advertise address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pyk3s.api.config import ApiConfig
from pyk3s.api.errors import StatusError
from pyk3s.api.registry import Registry
from pyk3s.api.request import WriteOptions
from pyk3s.api.resources import ResourceTable

__all__ = ["bootstrap"]

_MANAGER = "pyk3s-apiserver"


async def _ensure(registry: Registry, resources: ResourceTable, group: str, plural: str, ns: str | None,
                  obj: dict[str, Any], reconcile: tuple[str, ...] = ()) -> None:
    info = resources.get(group, "v1", plural)
    assert info is not None
    opts = WriteOptions(field_manager=_MANAGER)
    try:
        await registry.get(info, ns, obj["metadata"]["name"])
        exists = True
    except StatusError as e:
        if e.code != 404:
            raise
        exists = False
    # Create only what is missing: on a restart the kubernetes Service exists and creating it again would
    # fail allocating its (already allocated) ClusterIP before the store could answer "already exists".
    if not exists:
        try:
            await registry.create(info, ns, obj, opts)
            return
        except StatusError as e:
            if e.code != 409:
                raise
    if not reconcile:
        return
    name = obj["metadata"]["name"]

    def compute(cur: dict[str, Any]) -> dict[str, Any]:
        for f in reconcile:
            cur[f] = obj[f]
        return cur

    await registry.update(info, ns, name, compute, opts)


async def bootstrap(registry: Registry, resources: ResourceTable, cfg: ApiConfig, kubernetes_ip: str) -> None:
    """Create what is missing, and point the ``kubernetes`` Endpoints at ``cfg.advertise_address``."""
    for ns in cfg.system_namespaces:
        await _ensure(registry, resources, "", "namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    labels = {"component": "apiserver", "provider": "kubernetes"}
    port = {"name": "https", "port": 443, "protocol": "TCP", "targetPort": cfg.advertise_port}
    await _ensure(registry, resources, "", "services", "default", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
        "spec": {"type": "ClusterIP", "clusterIP": kubernetes_ip, "ports": [port],
                 "sessionAffinity": "None"},
    })
    ep_port = {"name": "https", "port": cfg.advertise_port, "protocol": "TCP"}
    await _ensure(registry, resources, "", "endpoints", "default", {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": cfg.advertise_address}], "ports": [ep_port]}],
    }, reconcile=("subsets",))
    family = "IPv6" if ipaddress.ip_address(cfg.advertise_address).version == 6 else "IPv4"
    await _ensure(registry, resources, "discovery.k8s.io", "endpointslices", "default", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes",
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": family,
        "endpoints": [{"addresses": [cfg.advertise_address], "conditions": {"ready": True}}],
        "ports": [ep_port],
    }, reconcile=("endpoints", "ports", "addressType"))
