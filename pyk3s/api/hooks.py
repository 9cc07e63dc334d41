"""Kind-specific steps of the write pipeline: Service allocation, CRD status and serving, namespace
protection. :class:`KindHooks` is called at fixed points of a write, by the admission pipeline
(:func:`pyk3s.api.admit.admit`) and by :class:`pyk3s.api.registry.Registry`::

    validate(info, new, old)      before defaults and validation (may fill values kept from ``old``)
    before_write(info, new, old)  just before the store write; returns what to undo if it fails
    after_write(info, new, old)   after a successful write
    before_delete(info, obj)      before a DELETE is carried out (403 for system namespaces)
    after_remove(info, obj)       after the object left the store
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pyk3s.api.allocation import Allocation, AllocationError, ServiceAllocator
from pyk3s.api.catalog import ResourceCatalog
from pyk3s.api.codec import now_rfc3339
from pyk3s.api.crds import crd_status, validate_crd
from pyk3s.api.errors import forbidden
from pyk3s.api.invalid import invalid_field
from pyk3s.api.namespaces import NamespaceGate
from pyk3s.api.resources import ResourceInfo
from pyk3s.api.store.base import KeyNotFound, Store

__all__ = ["KindHooks"]

log = logging.getLogger("pyk3s.api.hooks")

_SERVICES = ("", "services")
_NAMESPACES = ("", "namespaces")
_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
_INGRESSES = ("networking.k8s.io", "ingresses")
_INGRESS_CLASSES = "/registry/networking.k8s.io/ingressclasses/"


def _drop_type_dependent(new: dict[str, Any], old: dict[str, Any]) -> None:
    """A type change drops fields that only fit the old type when the client left them as they were
    (kube-apiserver's dropTypeDependentFields), so `type: ClusterIP` alone is a valid patch."""
    spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
    ntype, otype = spec.get("type") or "ClusterIP", old_spec.get("type") or "ClusterIP"
    if ntype == otype:
        return
    external = ("NodePort", "LoadBalancer")
    if ntype not in external:
        if spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
            spec.pop("externalTrafficPolicy", None)
        old_ports = {(p.get("port"), p.get("protocol") or "TCP"): p.get("nodePort") for p in old_spec.get("ports") or []}
        for p in spec.get("ports") or []:
            if p.get("nodePort") and p.get("nodePort") == old_ports.get((p.get("port"), p.get("protocol") or "TCP")):
                p.pop("nodePort", None)
    if ntype != "LoadBalancer":
        for f in ("healthCheckNodePort", "allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if f in spec and spec.get(f) == old_spec.get(f):
                spec.pop(f, None)
    if ntype == "ExternalName":
        for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if f in spec and spec.get(f) == old_spec.get(f):
                spec.pop(f, None)


def _keep_allocated(new: dict[str, Any], old: dict[str, Any]) -> None:
    """A Service update that leaves allocated values out keeps them (kube-apiserver's
    patchAllocatedValues), so PUT of an edited manifest does not try to change the ClusterIP."""
    spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
    needs_ip = (spec.get("type") or "ClusterIP") != "ExternalName"
    if needs_ip and not spec.get("clusterIP") and old_spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if needs_ip:
        for f in ("ipFamilies", "ipFamilyPolicy"):
            if not spec.get(f) and old_spec.get(f):
                spec[f] = old_spec[f]
    if (spec.get("type") or "ClusterIP") in ("NodePort", "LoadBalancer"):
        old_ports = {(p.get("port"), p.get("protocol") or "TCP"): p.get("nodePort")
                     for p in old_spec.get("ports") or []}
        for p in spec.get("ports") or []:
            if not p.get("nodePort"):
                np = old_ports.get((p.get("port"), p.get("protocol") or "TCP"))
                if np:
                    p["nodePort"] = np
        if not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


class KindHooks:
    def __init__(self, store: Store, allocator: ServiceAllocator, catalog: ResourceCatalog,
                 namespaces: NamespaceGate, system_namespaces: tuple[str, ...]) -> None:
        self.store = store
        self.allocator = allocator
        self.catalog = catalog
        self.namespaces = namespaces
        self.system_namespaces = system_namespaces

    async def validate(self, info: ResourceInfo, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        key = (info.group, info.plural)
        if key == _SERVICES and old is not None:
            _drop_type_dependent(new, old)
            _keep_allocated(new, old)
        elif key == _CRDS and old is not None:
            # A new CRD gets these checks from admission validation, which covers every one of them;
            # an update answers with the first problem found here, before defaults fill the names.
            problems = validate_crd(new)
            if problems:
                fld, value, msg = problems[0]
                raise invalid_field(info, (new.get("metadata") or {}).get("name", ""), fld, value, msg)
        elif key == _INGRESSES and old is None:
            await self._default_ingress_class(new)

    async def _default_ingress_class(self, ing: dict[str, Any]) -> None:
        """kube-apiserver's DefaultIngressClass admission: an Ingress created without a class gets the
        IngressClass annotated ingressclass.kubernetes.io/is-default-class=true (the newest if several)."""
        spec = ing.get("spec")
        annotations = (ing.get("metadata") or {}).get("annotations") or {}
        if not isinstance(spec, dict) or spec.get("ingressClassName") or "kubernetes.io/ingress.class" in annotations:
            return
        _, kvs = await self.store.list(_INGRESS_CLASSES)
        defaults = []
        for kv in kvs:
            meta = json.loads(kv.value).get("metadata") or {}
            if (meta.get("annotations") or {}).get("ingressclass.kubernetes.io/is-default-class") == "true":
                defaults.append((meta.get("creationTimestamp") or "", meta.get("name") or ""))
        if defaults:
            spec["ingressClassName"] = max(defaults)[1]

    async def before_write(self, info: ResourceInfo, new: dict[str, Any], old: dict[str, Any] | None) -> Allocation | None:
        key = (info.group, info.plural)
        if key == _SERVICES:
            meta = new.get("metadata") or {}
            owner = f"{meta.get('namespace')}/{meta.get('name')}"
            try:
                return await self.allocator.allocate(new, old, owner)
            except AllocationError as e:
                raise invalid_field(info, meta.get("name", ""), e.field, e.value, e.message, e.reason) from None
        if key == _CRDS:
            new["status"] = crd_status(new, old, now_rfc3339())
        return None

    async def undo(self, alloc: Allocation | None) -> None:
        if alloc is not None and alloc.keys:
            await self.allocator.release_keys(alloc.keys)

    async def after_write(self, info: ResourceInfo, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        key = (info.group, info.plural)
        if key == _SERVICES and old is not None:
            await self.allocator.release_unused(old, new)
        elif key == _CRDS:
            self.catalog.install_crd(new)
        elif key == _NAMESPACES:
            self.namespaces.observe(new)

    async def before_delete(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        if (info.group, info.plural) == _NAMESPACES:
            name = (obj.get("metadata") or {}).get("name", "")
            if name in self.system_namespaces:
                raise forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                name=name, kind="namespaces")

    async def after_remove(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        key = (info.group, info.plural)
        if key == _SERVICES:
            await self.allocator.release_unused(obj, None)
        elif key == _CRDS:
            rows = self.catalog.uninstall_crd((obj.get("metadata") or {}).get("name", ""))
            if rows:
                await self._purge(rows[0].key_prefix)
        elif key == _NAMESPACES:
            self.namespaces.forget((obj.get("metadata") or {}).get("name", ""))

    async def _purge(self, prefix: str) -> None:
        store = self.store
        while True:
            _, kvs = await store.list(prefix, limit=500)
            if not kvs:
                return
            for kv in kvs:
                try:
                    await store.delete(kv.key)
                except KeyNotFound:
                    pass
