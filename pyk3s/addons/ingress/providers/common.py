"""Helpers shared by the Kubernetes providers: watched kinds, names, object index, servers from EndpointSlices.

Providers read an :class:`ObjectIndex` built from plain lists of objects (exactly as the API returns them,
grouped by ``kind``), so they are pure functions that tests feed from YAML fixtures.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.dynamic import Certificate, Server
from ..config.static import ProviderOptions

__all__ = [
    "KubeObject", "Watched", "BACKEND_KINDS", "normalize", "rule_hash", "ObjectIndex", "ServiceLookupError",
    "servers_for", "secret_data", "certificate_from_secret",
]

KubeObject = dict[str, Any]
"""A Kubernetes object as the API returns it (decoded JSON)."""


@dataclass(frozen=True, slots=True)
class Watched:
    """A kind a provider reads, as the API serves it."""

    api_version: str
    plural: str
    kind: str


# what every Kubernetes provider reads: Services and their endpoints, and Secrets (certificates, users)
BACKEND_KINDS = (
    Watched("v1", "services", "Service"),
    Watched("v1", "secrets", "Secret"),
    Watched("discovery.k8s.io/v1", "endpointslices", "EndpointSlice"),
)

_NON_ALNUM = re.compile(r"[^\w]+|_+", re.UNICODE)


def normalize(name: str) -> str:
    """Traefik's provider.Normalize: runs of non-letter/non-digit characters become one '-'."""
    return "-".join(p for p in _NON_ALNUM.split(name) if p)


def rule_hash(rule: str) -> str:
    return hashlib.sha256(rule.encode()).hexdigest()[:20]


class ServiceLookupError(Exception):
    """A Kubernetes Service, its port or its endpoints cannot be resolved."""


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
            idx.by_kind.setdefault(obj["kind"], {})[key] = obj
            if obj["kind"] == "EndpointSlice":
                svc = (md.get("labels") or {}).get("kubernetes.io/service-name", "")
                idx.slices.setdefault(f"{md.get('namespace', '')}/{svc}", []).append(obj)
        return idx

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        return self.by_kind.get(kind, {}).get(f"{namespace}/{name}" if namespace else name)

    def all(self, kind: str) -> list[KubeObject]:
        return [self.by_kind[kind][k] for k in sorted(self.by_kind.get(kind, {}))]


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


def certificate_from_secret(idx: ObjectIndex, namespace: str, name: str) -> Certificate:
    secret = idx.get("Secret", namespace, name)
    if secret is None:
        raise ServiceLookupError(f"secret {namespace}/{name} does not exist")
    data = secret_data(secret)
    crt, key = data.get("tls.crt", b""), data.get("tls.key", b"")
    if not crt or not key:
        raise ServiceLookupError(f"secret {namespace}/{name} has no tls.crt / tls.key")
    return Certificate(crt.decode(), key.decode(), ("default",), f"{namespace}/{name}")


def _service_port(svc: KubeObject, port: int | str) -> dict[str, Any]:
    for p in (svc.get("spec") or {}).get("ports") or []:
        if (isinstance(port, int) or str(port).isdigit()) and p.get("port") == int(port):
            return p
        if isinstance(port, str) and p.get("name") == port:
            return p
    md = svc.get("metadata") or {}
    raise ServiceLookupError(f"service port {port} not found in service {md.get('namespace')}/{md.get('name')}")


def default_scheme(svc_port: dict[str, Any]) -> str:
    if svc_port.get("port") == 443 or str(svc_port.get("name", "")).startswith("https"):
        return "https"
    return "http"


def servers_for(idx: ObjectIndex, namespace: str, name: str, port: int | str, scheme: str,
                opts: ProviderOptions, native_lb: bool = False) -> tuple[tuple[Server, ...], str]:
    """Servers (and the scheme used) for a Kubernetes Service port, from its ready EndpointSlices."""
    svc = idx.get("Service", namespace, name)
    if svc is None:
        raise ServiceLookupError(f"kubernetes service not found: {namespace}/{name}")
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        if not opts.allow_external_name_services:
            raise ServiceLookupError(f"externalName services not allowed: {namespace}/{name}")
        scheme = scheme or ("https" if str(port) == "443" else "http")
        return (Server(f"{scheme}://{spec.get('externalName')}:{port}"),), scheme
    sport = _service_port(svc, port)
    scheme = scheme or default_scheme(sport)
    if scheme not in ("http", "https", "h2c"):
        raise ServiceLookupError(f"invalid scheme {scheme!r} specified for service {namespace}/{name}")
    if native_lb:
        ip = spec.get("clusterIP", "")
        return ((Server(f"{scheme}://{_host(ip)}:{sport.get('port')}"),) if ip and ip != "None" else ()), scheme
    seen: set[str] = set()
    servers: list[Server] = []
    for sl in idx.slices.get(f"{namespace}/{name}", []):
        slice_port = next((p.get("port") for p in sl.get("ports") or []
                           if (p.get("name") or "") == (sport.get("name") or "")), None)
        if slice_port is None:
            continue
        for ep in sl.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False
            serving = cond.get("serving", cond.get("ready")) is not False
            if not (ready or serving):
                continue
            for addr in ep.get("addresses") or []:
                url = f"{scheme}://{_host(addr)}:{slice_port}"
                if url not in seen:
                    seen.add(url)
                    servers.append(Server(url, fenced=not ready))
    return tuple(servers), scheme


def _host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr
