"""Helpers shared by the Kubernetes providers: watched kinds, names, object index, servers of a Service.

Providers read an :class:`ObjectIndex` built from plain lists of objects (exactly as the API returns them,
grouped by ``kind``), so they are pure functions that tests feed from YAML fixtures.

Servers of a Service port (Traefik's loadServers / loadService): from its EndpointSlices (the slice port
whose name equals the Service port's name; endpoints whose ``serving`` condition is not false; each
address once; ``terminating`` ones fenced), from its ClusterIP (``nativeLB``), from every node's
InternalIP and the node port (``nodePortLB`` on a NodePort Service), or ``externalName:port`` for an
ExternalName Service.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.dynamic import Certificate, Server

__all__ = [
    "KubeObject", "Watched", "BACKEND_KINDS", "normalize", "rule_hash", "ObjectIndex", "ServiceLookupError",
    "secret_data", "certificate_blocks", "certificate_from_secret", "join_host_port", "endpoint_servers",
    "native_servers", "node_port_servers", "ca_from_secret", "ca_from_config_map", "annotation_bool",
]

KubeObject = dict[str, Any]
"""A Kubernetes object as the API returns it (decoded JSON)."""


@dataclass(frozen=True, slots=True)
class Watched:
    """A kind a provider reads, as the API serves it."""

    api_version: str
    plural: str
    kind: str


# what every Kubernetes provider reads: Services and their endpoints, Secrets (certificates, users) and
# Nodes (nodePortLB)
BACKEND_KINDS = (
    Watched("v1", "services", "Service"),
    Watched("v1", "secrets", "Secret"),
    Watched("discovery.k8s.io/v1", "endpointslices", "EndpointSlice"),
    Watched("v1", "nodes", "Node"),
)

_NON_ALNUM = re.compile(r"[^\w]+|_+", re.UNICODE)


def normalize(name: str) -> str:
    """Traefik's provider.Normalize: runs of non-letter/non-digit characters become one '-'."""
    return "-".join(p for p in _NON_ALNUM.split(name) if p)


def rule_hash(rule: str) -> str:
    return hashlib.sha256(rule.encode()).hexdigest()[:20]


class ServiceLookupError(Exception):
    """A Kubernetes Service, its port, its endpoints or a Secret cannot be resolved."""


@dataclass(slots=True)
class ObjectIndex:
    """Objects by kind, then by "namespace/name"; EndpointSlices by "namespace/service"."""

    by_kind: dict[str, dict[str, KubeObject]] = field(default_factory=dict)
    slices: dict[str, list[KubeObject]] = field(default_factory=dict)

    @classmethod
    def build(cls, objects: Mapping[str, Iterable[KubeObject]] | Iterable[KubeObject]) -> ObjectIndex:
        idx = cls()
        items: Iterable[KubeObject]
        if isinstance(objects, Mapping):
            items = (o for objs in objects.values() for o in objs)
        else:
            items = objects
        for obj in items:
            if not isinstance(obj, dict) or "kind" not in obj:
                continue
            md = obj.get("metadata") or {}
            key = f"{md.get('namespace', '')}/{md.get('name', '')}" if md.get("namespace") else md.get("name", "")
            table = idx.by_kind.setdefault(obj["kind"], {})
            if not md.get("name"):
                key += f"#{len(table)}"  # unnamed objects (test fixtures, generateName) never collide
            table[key] = obj
            if obj["kind"] == "EndpointSlice":
                svc = (md.get("labels") or {}).get("kubernetes.io/service-name", "")
                idx.slices.setdefault(f"{md.get('namespace', '')}/{svc}", []).append(obj)
        return idx

    def within(self, namespaces: tuple[str, ...]) -> ObjectIndex:
        """The objects a provider watching only ``namespaces`` sees (all of them when empty)."""
        if not namespaces:
            return self
        idx = ObjectIndex()
        for kind, table in self.by_kind.items():
            idx.by_kind[kind] = {k: o for k, o in table.items()
                                 if "/" not in k or k.split("/", 1)[0] in namespaces}
        idx.slices = {k: v for k, v in self.slices.items() if k.split("/", 1)[0] in namespaces}
        return idx

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        return self.by_kind.get(kind, {}).get(f"{namespace}/{name}" if namespace else name)

    def all(self, kind: str) -> list[KubeObject]:
        return [self.by_kind[kind][k] for k in sorted(self.by_kind.get(kind, {}))]


def annotation_bool(value: str | None, default: bool) -> bool:
    """A boolean annotation as Go's strconv.ParseBool reads it (other values keep the default)."""
    if value is None:
        return default
    v = value.strip().lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    return default


def secret_data(secret: KubeObject) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(v or "")
        except ValueError:
            out[k] = b""
    for k, v in (secret.get("stringData") or {}).items():
        out[k] = str(v).encode()
    return out


def certificate_blocks(secret: KubeObject, namespace: str, name: str) -> tuple[str, str]:
    """tls.crt and tls.key of a Secret (Traefik getCertificateBlocks and its messages)."""
    data = secret_data(secret)
    missing = [k for k in ("tls.crt", "tls.key") if k not in data]
    if missing:
        raise ServiceLookupError(f"secret {namespace}/{name} is missing the following TLS data entries: "
                                 + ", ".join(missing))
    empty = [k for k in ("tls.crt", "tls.key") if not data[k]]
    if empty:
        raise ServiceLookupError(f"secret {namespace}/{name} contains the following empty TLS data entries: "
                                 + ", ".join(empty))
    return data["tls.crt"].decode(), data["tls.key"].decode()


def certificate_from_secret(idx: ObjectIndex, namespace: str, name: str, stores: tuple[str, ...] = ()) -> Certificate:
    secret = idx.get("Secret", namespace, name)
    if secret is None:
        raise ServiceLookupError(f"secret {namespace}/{name} does not exist")
    crt, key = certificate_blocks(secret, namespace, name)
    return Certificate(crt, key, stores, f"{namespace}/{name}")


def ca_from_secret(idx: ObjectIndex, namespace: str, name: str) -> str:
    """A CA bundle from a Secret: ``tls.ca``, else ``ca.crt``, else its only key (Traefik loadCASecret)."""
    secret = idx.get("Secret", namespace, name)
    if secret is None:
        raise ServiceLookupError(f"secret '{namespace}/{name}' not found")
    data = secret_data(secret)
    for key in ("tls.ca", "ca.crt"):
        if key in data:
            return data[key].decode()
    if len(data) == 1:
        return next(iter(data.values())).decode()
    raise ServiceLookupError(f"secret '{namespace}/{name}' has no CA block: secret {namespace}/{name} contains "
                             "neither tls.ca nor ca.crt")


def ca_from_config_map(idx: ObjectIndex, namespace: str, name: str) -> str:
    cm = idx.get("ConfigMap", namespace, name)
    if cm is None:
        raise ServiceLookupError(f"configMap '{namespace}/{name}' not found")
    data = cm.get("data") or {}
    for key in ("tls.ca", "ca.crt"):
        if key in data:
            return str(data[key])
    raise ServiceLookupError(f"configMap '{namespace}/{name}' has no CA block: config map {namespace}/{name} "
                             "contains neither tls.ca nor ca.crt")


def join_host_port(host: str, port: int | str) -> str:
    """Go's net.JoinHostPort."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoint_servers(idx: ObjectIndex, namespace: str, name: str, port_name: str, scheme: str) -> list[Server]:
    """Servers from the Service's EndpointSlices for the Service port named ``port_name``."""
    seen: set[str] = set()
    servers: list[Server] = []
    for sl in idx.slices.get(f"{namespace}/{name}", []):
        port = 0
        for p in sl.get("ports") or ():
            if p.get("name") is not None and p.get("name") == port_name:
                port = int(p.get("port") or 0)
                break
        if not port:
            continue
        for ep in sl.get("endpoints") or ():
            cond = ep.get("conditions") or {}
            if cond.get("serving") is False:
                continue
            for addr in ep.get("addresses") or ():
                if addr in seen:
                    continue
                seen.add(addr)
                servers.append(Server(f"{scheme}://{join_host_port(addr, port)}", fenced=cond.get("terminating") is True))
    return servers


def native_servers(svc: KubeObject, port: int, scheme: str) -> list[Server]:
    """The Service's ClusterIP (Traefik getNativeServiceAddress)."""
    md = svc.get("metadata") or {}
    ip = (svc.get("spec") or {}).get("clusterIP") or ""
    if ip == "None":
        raise ServiceLookupError("getting native Kubernetes Service address: no clusterIP on headless service: "
                                 f"{md.get('namespace')}/{md.get('name')}")
    if not ip:
        raise ServiceLookupError("getting native Kubernetes Service address: no clusterIP found for service: "
                                 f"{md.get('namespace')}/{md.get('name')}")
    return [Server(f"{scheme}://{join_host_port(ip, port)}")]


def node_port_servers(idx: ObjectIndex, node_port: int, scheme: str) -> list[Server]:
    """Every node's InternalIP with the node port."""
    servers = []
    for node in idx.all("Node"):
        for addr in (node.get("status") or {}).get("addresses") or ():
            if addr.get("type") == "InternalIP":
                servers.append(Server(f"{scheme}://{join_host_port(addr.get('address', ''), node_port)}"))
    return servers
