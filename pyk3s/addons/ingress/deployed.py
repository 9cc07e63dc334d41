"""The ingress controller as the cluster runs it: its static configuration, read from the arguments of
its Deployment, and the entry point that each port of its published Service reaches.

K3s's packaged Traefik listens on :8000 (``web``) and :8443 (``websecure``) behind a LoadBalancer
Service that publishes ports 80 and 443. ``pyk3s ingress explain`` and the network map (``pyk3s map``)
judge a request with the flags the running Traefik has, and send ``http://host/`` to the entry point
behind the Service's port 80, as a client going through the load balancer would. When the cluster
runs no Traefik Deployment (a standalone ``pyk3s traefik``), they fall back to ``DEFAULT_FLAGS``.

Pure functions of API objects, plus :func:`load` that lists those objects once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .config.errors import ConfigError
from .config.static import StaticConfig, static_from_flags

if TYPE_CHECKING:
    from pyk3s.client import Client

__all__ = ["DEFAULT_FLAGS", "SELECTOR", "Deployed", "deployed", "load", "traefik_deployment"]

# Without a Traefik Deployment in the cluster: plain ports 80 and 443, both providers.
DEFAULT_FLAGS = ("--entrypoints.web.address=:80", "--entrypoints.websecure.address=:443",
                 "--entrypoints.websecure.http.tls=true", "--providers.kubernetescrd",
                 "--providers.kubernetesingress")
SELECTOR = "app.kubernetes.io/name=traefik"
# the container of the Traefik chart and of K3s's packaged manifest
CONTAINER = "traefik"


@dataclass(frozen=True, slots=True)
class Deployed:
    """The static configuration in use, where it came from, and the published ports."""

    static: StaticConfig
    source: str                     # "kube-system/traefik" or "default flags"
    flags: tuple[str, ...]
    service: str = ""               # "ns/name" of the published Service, "" when there is none
    ports: Mapping[int, str] = field(default_factory=dict)  # published TCP port -> entry point
    problem: str = ""               # why the Deployment's arguments were not used
    udp_ports: Mapping[int, str] = field(default_factory=dict)  # published UDP port -> entry point

    def entrypoint_for(self, url: str) -> str:
        """The entry point a request to ``url`` reaches through the published Service; "" when the
        URL's port is not one it publishes (explain then matches the port against the entry points)."""
        parts = urlsplit(url if "://" in url else "http://" + url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return ""
        if any(ep.port == port for ep in self.static.entrypoints.values()):
            return ""
        return self.ports.get(port, "")


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def traefik_deployment(deployments: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The Traefik Deployment (label app.kubernetes.io/name=traefik), kube-system/traefik first."""
    found = [d for d in deployments if _labels(d).get("app.kubernetes.io/name") == "traefik"]
    found.sort(key=lambda d: (d["metadata"].get("namespace") != "kube-system", d["metadata"].get("name") != "traefik",
                              d["metadata"].get("namespace", ""), d["metadata"].get("name", "")))
    return found[0] if found else None


def _container(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = ((((deployment.get("spec") or {}).get("template") or {}).get("spec") or {})
                  .get("containers") or [])
    for c in containers:
        if c.get("name") == CONTAINER:
            return c  # type: ignore[no-any-return]
    return containers[0] if containers else {}


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _entrypoint_ports(static: StaticConfig, service: Mapping[str, Any] | None, container: Mapping[str, Any],
                      protocol: str = "TCP") -> dict[int, str]:
    """Published port -> the entry point listening on the container port it targets (UDP ports reach
    entry points declared ``/udp``)."""
    if service is None:
        return {}
    named = {p.get("name"): p.get("containerPort") for p in container.get("ports") or [] if p.get("name")}
    by_port = {ep.port: name for name, ep in static.entrypoints.items()
               if ep.port and getattr(ep, "protocol", "tcp") == protocol.lower()}
    out: dict[int, str] = {}
    for sp in (service.get("spec") or {}).get("ports") or []:
        if (sp.get("protocol") or "TCP") != protocol or not sp.get("port"):
            continue
        target = sp.get("targetPort", sp["port"])
        number = named.get(target) if isinstance(target, str) else target
        if isinstance(number, int) and number in by_port:
            out[int(sp["port"])] = by_port[number]
    return out


def deployed(deployments: Iterable[Mapping[str, Any]], services: Iterable[Mapping[str, Any]],
             flags: Iterable[str] | None = None) -> Deployed:
    """The configuration explain and the map use: ``flags`` when given, else the Traefik Deployment's
    arguments, else ``DEFAULT_FLAGS``; the published Service is the provider's
    ``ingressendpoint.publishedservice``, else the Service of the Deployment's name and namespace."""
    dep = traefik_deployment(deployments)
    problem = ""
    if flags is not None:
        argv, source = tuple(flags), "--flag"
    elif dep is not None:
        argv, source = tuple(str(a) for a in _container(dep).get("args") or ()), _key(dep)
    else:
        argv, source = DEFAULT_FLAGS, "default flags"
    try:
        static = static_from_flags(list(argv))
    except (ConfigError, ValueError) as err:
        problem = f"the arguments of {source} do not parse ({err}); judged with the default flags"
        argv, source = DEFAULT_FLAGS, "default flags"
        static = static_from_flags(list(argv))
    published = ""
    if static.ingress is not None and static.ingress.published_service:
        published = static.ingress.published_service
    elif dep is not None and source != "default flags":
        published = _key(dep)
    by_key = {_key(s): s for s in services}
    container = _container(dep) if dep is not None else {}
    ports = _entrypoint_ports(static, by_key.get(published), container)
    udp = _entrypoint_ports(static, by_key.get(published), container, "UDP")
    return Deployed(static, source, argv, published if published in by_key else "", ports, problem, udp)


async def load(client: Client, flags: Iterable[str] | None = None) -> Deployed:
    """List the Traefik Deployments and their Services once and read them with :func:`deployed`."""
    from pyk3s.client import ApiError

    try:
        deps = (await client.resource("apps/v1", "deployments").list(label_selector=SELECTOR)).get("items") or []
    except ApiError:
        deps = []
    namespaces = {d["metadata"].get("namespace", "") for d in deps}
    services: list[dict[str, Any]] = []
    for ns in sorted(namespaces):
        services += (await client.resource("v1", "services").list(ns)).get("items") or []
    first = deployed(deps, services, flags)
    if first.service and first.service.split("/", 1)[0] not in namespaces:
        ns, _, name = first.service.partition("/")
        svc = await client.resource("v1", "services").get_or_none(name, ns)
        return deployed(deps, [*services, *([svc] if svc else [])], flags)
    return first
