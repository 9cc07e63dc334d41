"""The map's unit-test cluster: the real API core on a memory store (in-process client), the packaged
Traefik CRDs, Deployment and Service as K3s installs them, and objects written as the controllers and
kubelets would (pods Running with addresses, EndpointSlices, ServiceLB's status)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from packaged_traefik import packaged_traefik

from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.client import Client

__all__ = ["PLURALS", "Cluster", "demo", "packaged_traefik", "started"]

PLURALS = {
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", "customresourcedefinitions"),
    "Namespace": ("v1", "namespaces"), "Node": ("v1", "nodes"), "Pod": ("v1", "pods"), "Service": ("v1", "services"),
    "Secret": ("v1", "secrets"), "ConfigMap": ("v1", "configmaps"), "Event": ("v1", "events"),
    "EndpointSlice": ("discovery.k8s.io/v1", "endpointslices"), "Deployment": ("apps/v1", "deployments"),
    "Ingress": ("networking.k8s.io/v1", "ingresses"), "IngressClass": ("networking.k8s.io/v1", "ingressclasses"),
    "IngressRoute": ("traefik.io/v1alpha1", "ingressroutes"), "Middleware": ("traefik.io/v1alpha1", "middlewares"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies"),
}


def node(name: str, ip: str, cidr: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": ip}]}}


def pod(ns: str, name: str, labels: dict[str, str], node_name: str, ip: str, *, ready: bool = True,
        ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "pyk3s/whoami",
                                                              "ports": ports or [{"name": "http", "containerPort": 80}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def slice_of(ns: str, svc: str, port: int, pods: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{svc}-abcde", "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [p["status"]["podIP"]], "nodeName": p["spec"]["nodeName"],
                           "conditions": {"ready": p["status"]["conditions"][0]["status"] == "True"},
                           "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns}}
                          for p in pods]}


def demo() -> list[dict[str, Any]]:
    """Two nodes; demo/web (two pods) behind a ClusterIP Service, a LoadBalancer that ServiceLB reports
    Pending, an Ingress, an IngressRoute with a middleware and one whose middleware does not exist; a
    client pod, and two NetworkPolicies: default deny in demo, web open to client on its http port."""
    web = [pod("demo", "web-1", {"app": "web"}, "n0", "10.42.0.10"), pod("demo", "web-2", {"app": "web"}, "n1", "10.42.1.10")]
    traefik = pod("kube-system", "traefik-1", {"app.kubernetes.io/name": "traefik",
                                               "app.kubernetes.io/instance": "traefik-kube-system"}, "n0", "10.42.0.5",
                  ports=[{"name": "web", "containerPort": 8000}, {"name": "websecure", "containerPort": 8443}])
    pending = ("no node can serve this load balancer: node n0: port 80/TCP is held by pod kube-system/svclb-traefik-x; "
               "node n1: port 80/TCP is held by pod kube-system/svclb-traefik-y")
    traefik_svc = packaged_traefik("Service")[0]
    traefik_svc["status"] = {"loadBalancer": {"ingress": [{"ip": "172.31.9.1"}, {"ip": "172.31.9.2"}]},
                             "conditions": [{"type": "pyk3s.io/LoadBalancerReady", "status": "True",
                                             "reason": "Serving", "message": "served by nodes 172.31.9.1, 172.31.9.2"}]}
    return [
        *packaged_traefik("CustomResourceDefinition", "IngressClass", "Deployment"), traefik_svc,
        node("n0", "172.31.9.1", "10.42.0.0/24"), node("n1", "172.31.9.2", "10.42.1.0/24"),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"team": "demo"}}},
        *web, traefik, pod("demo", "client-1", {"app": "client"}, "n1", "10.42.1.20"),
        slice_of("demo", "web-lb", 80, web),  # the same pods behind another Service: listed first on purpose
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo"},
         "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        slice_of("demo", "web", 80, web),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-lb", "namespace": "demo"},
         "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
         "status": {"conditions": [{"type": "pyk3s.io/LoadBalancerReady", "status": "False",
                                    "reason": "NoNodeAvailable", "message": pending}]}},
        slice_of("kube-system", "traefik", 8000, [traefik]),
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "demo"},
         "spec": {"rules": [{"host": "web.example", "http": {"paths": [
             {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
        {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {"name": "strip", "namespace": "demo"},
         "spec": {"stripPrefix": {"prefixes": ["/api"]}}},
        {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute", "metadata": {"name": "api", "namespace": "demo"},
         "spec": {"entryPoints": ["web"], "routes": [{"match": "Host(`api.example`) && PathPrefix(`/api`)", "kind": "Rule",
                                                      "middlewares": [{"name": "strip"}],
                                                      "services": [{"name": "web", "port": 80}]}]}},
        {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute", "metadata": {"name": "admin", "namespace": "demo"},
         "spec": {"entryPoints": ["web"], "routes": [{"match": "Host(`admin.example`)", "kind": "Rule",
                                                      "middlewares": [{"name": "admin-auth"}],
                                                      "services": [{"name": "web", "port": 80}]}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": "demo"},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "web-from-client", "namespace": "demo"},
         "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"port": "http"}]}]}},
    ]


class Cluster:
    def __init__(self, store: MemoryStore, api: ApiServer, client: Client) -> None:
        self.store, self.api, self.client = store, api, client

    def resource(self, kind: str) -> Any:
        api, plural = PLURALS[kind]
        return self.client.resource(api, plural)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        res = self.resource(obj["kind"])
        ns = obj["metadata"].get("namespace")
        status = obj.get("status")
        made = await res.create(obj, namespace=ns)
        if status is not None and obj["kind"] in ("Pod", "Service", "Node"):
            made = await res.update_status({**made, "status": status})
        return made  # type: ignore[no-any-return]

    async def apply_all(self, objs: list[dict[str, Any]]) -> None:
        crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
        for o in crds:
            await self.create(o)
        if crds:
            await asyncio.sleep(0.3)  # CRDs become served
        for o in objs:
            if o["kind"] != "CustomResourceDefinition":
                await self.create(o)


async def started() -> AsyncIterator[Cluster]:
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, ApiConfig(bookmark_interval=0.2))
    await api.start()
    client = Client.in_process(api)
    try:
        yield Cluster(store, api, client)
    finally:
        await client.close()
        await api.stop()
        await store.close()
