"""ServiceLB: a svclb DaemonSet per LoadBalancer Service, and the Service's status and events.

Level-triggered: any change to a Service, its DaemonSet or pods, any Node, any pod holding host
ports, or the Service's EndpointSlices enqueues the Service key; ``reconcile`` recomputes everything
from the caches. Node label changes always recompute the allow-list selector (K3s #14625 leaves a
stale selector when the last ``enablelb`` label goes; pyk3s does not).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import UTC, datetime
from typing import Any

from pyk3s.client import ApiError, Client, Conflict, NotFound, object_key
from pyk3s.client.controller import Result
from pyk3s.controllers.common.loop import Loop
from pyk3s.controllers.common.settings import ControllerSettings
from pyk3s.controllers.deploy.objectset import contained
from pyk3s.k3s.names import SERVICE_NAME_LABEL

from .desired import (
    NODESELECTOR,
    SVCNAME,
    SVCNAMESPACE,
    ServiceError,
    desired_daemonset,
    wants_load_balancer,
)
from .status import CONDITION, explain, lb_ingress, only_starting, pending_message

__all__ = ["FINALIZER", "ServiceLB", "remove_servicelb"]

log = logging.getLogger("pyk3s.servicelb")

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
COMPONENT = "service-lb-controller"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ips(ingress: list[dict[str, Any]]) -> list[str]:
    return [i.get("ip") or i.get("hostname", "") for i in ingress]


class ServiceLB(Loop):
    name = "servicelb"

    def __init__(self, client: Client, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.s = self.settings.servicelb
        self.services = self.informer("v1", "services")
        self.nodes = self.informer("v1", "nodes")
        self.pods = self.informer("v1", "pods")
        self.daemonsets = self.informer("apps/v1", "daemonsets", namespace=self.s.namespace,
                                        label_selector=NODESELECTOR)
        self.slices = self.informer("discovery.k8s.io/v1", "endpointslices")
        self.svc_api = client.resource("v1", "services")
        self.ds_api = client.resource("apps/v1", "daemonsets")
        self.controller.watch(self.services)
        self.controller.watch(self.daemonsets, self._owner_key)
        self.controller.watch(self.pods, self._pod_keys)
        self.controller.watch(self.nodes, self._lb_keys)
        self.controller.watch(self.slices, self._slice_keys)
        self._explained: dict[str, str] = {}
        # key -> (resourceVersion, status) of our last status write: the informer may not have seen
        # it yet, and comparing against its older copy would write (and announce) the same IPs twice.
        self._written: dict[str, tuple[int, dict[str, Any]]] = {}

    # -- event -> keys ----------------------------------------------------------------------------
    def _lb_keys(self, _obj: dict[str, Any] | None = None) -> list[str]:
        return [object_key(s) for s in self.services.list() if (s.get("spec") or {}).get("type") == "LoadBalancer"]

    @staticmethod
    def _owner_key(obj: dict[str, Any]) -> list[str]:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if SVCNAME in labels:
            return [f"{labels.get(SVCNAMESPACE, 'default')}/{labels[SVCNAME]}"]
        return []

    def _pod_keys(self, pod: dict[str, Any]) -> list[str]:
        keys = self._owner_key(pod)
        has_host_port = any(
            cp.get("hostPort") for c in (pod.get("spec") or {}).get("containers") or [] for cp in c.get("ports") or []
        )
        return keys + (self._lb_keys() if has_host_port and not keys else [])

    @staticmethod
    def _slice_keys(es: dict[str, Any]) -> list[str]:
        meta = es.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        return [f"{meta.get('namespace')}/{svc}"] if svc else []

    # -- run --------------------------------------------------------------------------------------
    def worker_count(self) -> int:
        return max(2, self.settings.workers)

    async def start(self) -> None:
        await self._ensure_namespace_and_account()
        await super().start()

    async def _ensure_namespace_and_account(self) -> None:
        ns_api = self.client.resource("v1", "namespaces")
        if await ns_api.get_or_none(self.s.namespace) is None:
            try:
                await ns_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.s.namespace}})
            except ApiError:
                pass
        sa_api = self.client.resource("v1", "serviceaccounts")
        if await sa_api.get_or_none("svclb", self.s.namespace) is None:
            try:
                await sa_api.create({"apiVersion": "v1", "kind": "ServiceAccount",
                                     "metadata": {"name": "svclb", "namespace": self.s.namespace}})
            except ApiError:
                pass

    # -- reconcile --------------------------------------------------------------------------------
    def _daemonset_for(self, key: str) -> dict[str, Any] | None:
        ns, _, name = key.partition("/")
        for ds in self.daemonsets.list():
            labels = ds["metadata"].get("labels") or {}
            if labels.get(SVCNAME) == name and labels.get(SVCNAMESPACE) == ns:
                return ds
        return None

    async def _event(self, svc: dict[str, Any], type_: str, reason: str, message: str) -> None:
        await self.client.record_event({**svc, "apiVersion": "v1", "kind": "Service"}, type=type_,
                                       reason=reason, message=message, component=COMPONENT)

    async def reconcile(self, key: str) -> Result | None:
        svc = self.services.get(key)
        ds = self._daemonset_for(key)
        deleting = svc is not None and (svc.get("metadata") or {}).get("deletionTimestamp")
        if svc is None or not wants_load_balancer(svc) or deleting:
            await self._teardown(key, svc, ds)
            return None
        ns, name = svc["metadata"].get("namespace", "default"), svc["metadata"]["name"]
        if FINALIZER not in (svc["metadata"].get("finalizers") or []):
            svc = await self.svc_api.patch(
                name, {"metadata": {"finalizers": [*(svc["metadata"].get("finalizers") or []), FINALIZER],
                                    "resourceVersion": svc["metadata"]["resourceVersion"]}},
                ns, field_manager=COMPONENT)
        try:
            want = desired_daemonset(svc, self.nodes.list(), self.s)
        except ServiceError as err:
            message = f"Error syncing load balancer: {err}"
            if self._explained.get(key) != message:
                await self._event(svc, "Warning", "SyncLoadBalancerFailed", message)
                self._explained[key] = message
            # The DaemonSet keeps serving the last valid spec, so the addresses stay; the condition says why
            # the change was not applied.
            await self._write_status(svc, ds, reason="InvalidService",
                                     message=f"{err}; the load balancer keeps its previous configuration")
            return None
        if ds is None or not self._matches(want, ds):
            await self._event(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
            ds = await self._apply(want, ds)
            await self._event(svc, "Normal", "AppliedDaemonSet",
                              f"Applied LoadBalancer DaemonSet {self.s.namespace}/{want['metadata']['name']}")
        await self._write_status(svc, ds)
        return None

    @staticmethod
    def _matches(want: dict[str, Any], live: dict[str, Any]) -> bool:
        wl = want["metadata"]["labels"]
        ll = live["metadata"].get("labels") or {}
        if any(ll.get(k) != v for k, v in wl.items()):
            return False
        if not contained(want["spec"], live.get("spec") or {}):
            return False
        # A selector or nodeSelector the Service no longer wants must go (contained() ignores extras).
        want_sel = want["spec"]["template"]["spec"].get("nodeSelector") or {}
        live_sel = ((live.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeSelector") or {}
        return want_sel == live_sel

    async def _apply(self, want: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
        if live is None:
            try:
                return await self.ds_api.create(want, self.s.namespace, field_manager=COMPONENT)
            except ApiError as err:
                if err.status != 409:
                    raise
                live = await self.ds_api.get(want["metadata"]["name"], self.s.namespace)
        body = copy.deepcopy(live)
        body["metadata"]["labels"] = {**(live["metadata"].get("labels") or {}), **want["metadata"]["labels"]}
        body["spec"] = want["spec"]
        body.pop("status", None)
        return await self.ds_api.update(body, self.s.namespace, field_manager=COMPONENT)

    async def _write_status(self, svc: dict[str, Any], ds: dict[str, Any] | None, *, reason: str = "",
                            message: str = "") -> None:
        key = object_key(svc)
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        ns = svc["metadata"].get("namespace", "default")
        slices = [s for s in self.slices.list()
                  if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == svc["metadata"]["name"]
                  and s["metadata"].get("namespace") == ns]
        pods = self.pods.list()
        ingress = lb_ingress(svc, pods, nodes, slices) if ds is not None else []
        starting = False
        invalid = bool(message)
        if invalid:
            cond = {"type": CONDITION, "status": "False", "reason": reason, "message": message}
        elif ingress:
            cond = {"type": CONDITION, "status": "True", "reason": "Serving",
                    "message": "served by nodes " + ", ".join(_ips(ingress))}
        else:
            reasons = explain(svc, ds, pods, nodes)
            starting = only_starting(reasons)
            cond = {"type": CONDITION, "status": "False", "reason": reason or "NoNodeAvailable",
                    "message": pending_message(reasons)}
        status = svc.get("status") or {}
        written = self._written.get(key)
        if written is not None and int(svc["metadata"].get("resourceVersion") or 0) <= written[0]:
            status = written[1]
        old_ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != CONDITION]
        old_cond = next((c for c in status.get("conditions") or [] if c.get("type") == CONDITION), None)
        same_cond = old_cond is not None and all(old_cond.get(k) == cond[k] for k in ("status", "reason", "message"))
        if _ips(old_ingress) == _ips(ingress) and same_cond:
            return
        cond["lastTransitionTime"] = (
            old_cond["lastTransitionTime"] if old_cond and old_cond.get("status") == cond["status"]
            and old_cond.get("lastTransitionTime") else _now()
        )
        cond["observedGeneration"] = svc["metadata"].get("generation", 1)
        patch = {"status": {"loadBalancer": {"ingress": ingress}, "conditions": [*conditions, cond]}}
        try:
            done = await self.svc_api.patch(svc["metadata"]["name"], patch, ns, field_manager=COMPONENT,
                                            subresource="status")
        except NotFound:
            return
        self._written[key] = (int(done["metadata"].get("resourceVersion") or 0), done.get("status") or {})
        if _ips(old_ingress) != _ips(ingress):
            if ingress:
                await self._event(svc, "Normal", "UpdatedLoadBalancer",
                                  f"Updated LoadBalancer with new IPs: {_ips(old_ingress)} -> {_ips(ingress)}")
            else:
                await self._event(svc, "Warning", "UnAvailableLoadBalancer",
                                  "There are no available nodes for LoadBalancer")
        if invalid:
            return
        if not ingress and not starting and self._explained.get(key) != cond["message"]:
            self._explained[key] = cond["message"]
            await self._event(svc, "Warning", "LoadBalancerPending", cond["message"])
        elif ingress:
            self._explained.pop(key, None)

    async def _teardown(self, key: str, svc: dict[str, Any] | None, ds: dict[str, Any] | None) -> None:
        if ds is not None:
            if svc is not None:
                await self._event(svc, "Normal", "DeletingLoadBalancer", "Deleting load balancer")
            try:
                await self.ds_api.delete(ds["metadata"]["name"], self.s.namespace, propagation_policy="Background")
                if svc is not None:
                    await self._event(svc, "Normal", "DeletedDaemonSet",
                                      f"Deleted LoadBalancer DaemonSet {self.s.namespace}/{ds['metadata']['name']}")
            except NotFound:
                pass
        if svc is None:
            self._explained.pop(key, None)
            self._written.pop(key, None)
            return
        meta = svc["metadata"]
        finalizers = meta.get("finalizers") or []
        if FINALIZER in finalizers:
            try:
                await self.svc_api.patch(
                    meta["name"],
                    {"metadata": {"finalizers": [f for f in finalizers if f != FINALIZER],
                                  "resourceVersion": meta["resourceVersion"]}},
                    meta.get("namespace"), field_manager=COMPONENT)
            except (NotFound, Conflict):
                return
            await self._event(svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer")
            status = svc.get("status") or {}
            if (status.get("loadBalancer") or {}).get("ingress") or any(
                    c.get("type") == CONDITION for c in status.get("conditions") or []):
                try:
                    await self.svc_api.patch(
                        meta["name"],
                        {"status": {"loadBalancer": {"ingress": None},
                                    "conditions": [c for c in status.get("conditions") or []
                                                   if c.get("type") != CONDITION] or None}},
                        meta.get("namespace"), field_manager=COMPONENT, subresource="status")
                except NotFound:
                    pass


async def remove_servicelb(client: Client, namespace: str = "kube-system") -> None:
    """`--disable servicelb`: delete every svclb DaemonSet and release our finalizer on Services, so
    another load-balancer implementation (MetalLB) can take over and deletions never hang."""
    ds_api = client.resource("apps/v1", "daemonsets")
    for ds in (await ds_api.list(namespace, label_selector=NODESELECTOR)).get("items") or []:
        try:
            await ds_api.delete(ds["metadata"]["name"], namespace, propagation_policy="Background")
            log.info("servicelb disabled: deleted DaemonSet %s/%s", namespace, ds["metadata"]["name"])
        except NotFound:
            pass
    svc_api = client.resource("v1", "services")
    for svc in (await svc_api.list()).get("items") or []:
        meta = svc["metadata"]
        fins = meta.get("finalizers") or []
        if FINALIZER in fins:
            try:
                await svc_api.patch(meta["name"], {"metadata": {"finalizers": [f for f in fins if f != FINALIZER]}},
                                    meta.get("namespace"), field_manager=COMPONENT)
            except ApiError:
                pass
        # Addresses ServiceLB published are no longer served: the Service goes back to <pending>.
        status = svc.get("status") or {}
        ours = [c for c in status.get("conditions") or [] if c.get("type") == CONDITION]
        if ours and wants_load_balancer(svc):
            rest = [c for c in status.get("conditions") or [] if c.get("type") != CONDITION]
            try:
                await svc_api.patch(meta["name"],
                                    {"status": {"loadBalancer": {"ingress": None}, "conditions": rest or None}},
                                    meta.get("namespace"), field_manager=COMPONENT, subresource="status")
            except ApiError:
                pass
    await asyncio.sleep(0)
